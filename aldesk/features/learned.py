"""The ``learned`` extractor: the ``handcrafted`` features plus a patch dictionary learned, without labels,
from the project's own previews (Coates & Ng 2011, "An analysis of single-layer networks in
unsupervised feature learning").

fit : random 6 x 6 patches of the 32 x 32 grey working images, each brightness/contrast
    normalised, ZCA-whitened, clustered into K centroids with MiniBatchKMeans (seeded).
transform : every 6 x 6 patch (stride 1) -> triangle activation max(0, mean_k(z) - z_k) with
    z_k = ||patch - centroid_k||, sum-pooled over a pool x pool grid -> K * pool^2 values,
    appended to the ``handcrafted`` vector.
Why this and not PCA: the caller standardises every feature per project, which turns PCA scores into
whitened scores; on PneumoniaMNIST that lost 2-10 points of accuracy at 20-300 labels, while the
pooled dictionary responses added 1-2 points over ``handcrafted`` (tests/benchmarks/bench_features.py;
it was named ``default`` then).
The fitted state is three small float32 arrays (about 6 kB for K=32). ``version`` depends on the
algorithm and the options (seed included), not on the fitted state: the caller looks vectors up by
(name, version) before fitting and stores the state beside them, so refitting on a grown pool is a
deliberate new set (change ``random_state`` or ``n_patches``), never a silent one. Never imports
Qt, sqlite or the store.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aldesk.errors import ExtractorNotFittedError, FeatureError
from .handcrafted import HandcraftedExtractor
from .preview import check_images, working_image

_ALGORITHM = "1"
_PATCH_EPS = 10.0 / 255.0 ** 2   # contrast normalisation floor (Coates & Ng's 10 on a 0..255 scale)
_ZCA_EPS = 0.1                   # whitening regulariser, as in Coates & Ng
_CHUNK = 128                     # images per vectorised step in transform (~30 MB of temporaries)
_STATE_KEYS = ("patch_mean", "whitening", "centroids")


def _patch_normalise(p: np.ndarray) -> np.ndarray:
    """(..., d) patches -> zero mean, unit contrast per patch (flat patches stay zero)."""
    p = p - p.mean(axis=-1, keepdims=True)
    return p / np.sqrt(p.var(axis=-1, keepdims=True) + _PATCH_EPS)


class PatchDictionaryExtractor:
    """``handcrafted`` features plus pooled responses to a k-means dictionary of whitened patches.

    Parameters
    ----------
    n_centroids : K, dictionary size.
    patch : patch side in pixels (of the size x size working image).
    size : side of the square grey working image the dictionary sees.
    pool : responses are sum-pooled over a pool x pool grid of the image.
    n_patches : patches sampled for fitting.
    random_state : seed for patch sampling and k-means; same images + seed -> same state.
    """

    name = "learned"
    needs_fit = True

    def __init__(self, n_centroids: int = 32, patch: int = 6, size: int = 32, pool: int = 3,
                 n_patches: int = 100_000, random_state: int = 0):
        self.n_centroids = n_centroids
        self.patch = patch
        self.size = size
        self.pool = pool
        self.n_patches = n_patches
        self.random_state = random_state
        self._validate()
        self._default = HandcraftedExtractor()
        self._state: dict[str, np.ndarray] | None = None

    def _validate(self) -> None:
        for key in ("n_centroids", "patch", "size", "pool", "n_patches"):
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{key} == {value!r}, must be an int >= 1")
        if self.patch < 2 or self.patch > self.size:
            raise ValueError(f"patch == {self.patch}, must be in 2..size ({self.size})")
        if self.pool > self.size - self.patch + 1:
            raise ValueError(f"pool == {self.pool}, must be <= size - patch + 1 "
                             f"({self.size - self.patch + 1})")
        if self.n_patches < self.n_centroids:
            raise ValueError(f"n_patches == {self.n_patches}, must be >= n_centroids "
                             f"({self.n_centroids})")

    @property
    def version(self) -> str:
        return (f"{_ALGORITHM}:K={self.n_centroids},patch={self.patch},size={self.size},"
                f"pool={self.pool},n_patches={self.n_patches},seed={self.random_state};"
                f"default={self._default.version}")  # "default=": the handcrafted part's old name, kept so cached vectors stay valid

    @property
    def n_features(self) -> int:
        return self._default.n_features + self.n_centroids * self.pool * self.pool

    @property
    def is_fitted(self) -> bool:
        return self._state is not None

    # --- fitting -------------------------------------------------------------------------------

    def fit(self, images) -> "PatchDictionaryExtractor":
        """Learn the dictionary from unlabelled previews (any number >= 1; a few thousand is plenty)."""
        from sklearn.cluster import MiniBatchKMeans  # heavy import, only when fitting

        images = check_images(images)
        if not images:
            raise FeatureError("cannot fit the 'learned' extractor on 0 images; "
                               "import some scans first")
        rng = np.random.default_rng(self.random_state)
        work = self._working(images)
        n, g = len(work), self.size - self.patch + 1
        ii = rng.integers(0, n, self.n_patches)
        yy = rng.integers(0, g, self.n_patches)
        xx = rng.integers(0, g, self.n_patches)
        windows = sliding_window_view(work, (self.patch, self.patch), axis=(1, 2))
        patches = windows[ii, yy, xx].reshape(self.n_patches, -1).astype(np.float64)
        patches = _patch_normalise(patches)

        mean = patches.mean(axis=0)
        patches -= mean
        eigval, eigvec = np.linalg.eigh(patches.T @ patches / len(patches))
        whitening = (eigvec / np.sqrt(np.clip(eigval, 0.0, None) + _ZCA_EPS)) @ eigvec.T
        patches = patches @ whitening

        kmeans = MiniBatchKMeans(n_clusters=self.n_centroids, batch_size=4096, n_init=3,
                                 max_iter=100, random_state=self.random_state)
        kmeans.fit(patches)
        return self.set_state({
            "patch_mean": mean.astype(np.float32),
            "whitening": whitening.astype(np.float32),
            "centroids": kmeans.cluster_centers_.astype(np.float32),
        })

    def get_state(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise ExtractorNotFittedError(self._not_fitted_message())
        return {k: v.copy() for k, v in self._state.items()}

    def set_state(self, state: dict[str, np.ndarray]) -> "PatchDictionaryExtractor":
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise FeatureError(f"state of the 'learned' extractor lacks {', '.join(missing)}; "
                               "refit it on the project's previews")
        d = self.patch * self.patch
        want = {"patch_mean": (d,), "whitening": (d, d), "centroids": (self.n_centroids, d)}
        new = {}
        for key, shape in want.items():
            arr = np.ascontiguousarray(state[key], dtype=np.float32)
            if arr.shape != shape:
                raise FeatureError(f"state['{key}'].shape == {arr.shape}, expected {shape} for "
                                   f"{self!r}; it was fitted with other options, so refit")
            if not np.isfinite(arr).all():
                raise FeatureError(f"state['{key}'] holds non-finite values; refit the extractor")
            arr.setflags(write=False)
            new[key] = arr
        self._state = new
        return self

    # --- transforming --------------------------------------------------------------------------

    def transform(self, images) -> np.ndarray:
        """images : list of (h, w) or (h, w, 3) uint8 -> (n_images, n_features) float32."""
        if self._state is None:
            raise ExtractorNotFittedError(self._not_fitted_message())
        images = check_images(images)
        out = np.empty((len(images), self.n_features), dtype=np.float32)
        n_default = self._default.n_features
        out[:, :n_default] = self._default.transform(images)
        for start in range(0, len(images), _CHUNK):
            chunk = images[start:start + _CHUNK]
            out[start:start + len(chunk), n_default:] = self._dictionary_features(
                self._working(chunk))
        return out

    def _working(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, size, size) float32 grey working images in [0, 1]."""
        return np.stack([working_image(im, self.size) for im in images])

    def _dictionary_features(self, work: np.ndarray) -> np.ndarray:
        """(n, size, size) -> (n, K * pool^2) pooled triangle activations."""
        st = self._state
        n = len(work)
        g = self.size - self.patch + 1
        windows = sliding_window_view(work, (self.patch, self.patch), axis=(1, 2))
        p = _patch_normalise(windows.reshape(n, g, g, -1))
        p = (p - st["patch_mean"]) @ st["whitening"]
        c = st["centroids"]
        d2 = np.einsum("nyxd,nyxd->nyx", p, p)[..., None] - 2.0 * (p @ c.T) + (c * c).sum(axis=1)
        z = np.sqrt(np.maximum(d2, 0.0))
        act = np.maximum(z.mean(axis=-1, keepdims=True) - z, 0.0)  # (n, g, g, K)
        edges = np.linspace(0, g, self.pool + 1).round().astype(int)
        pooled = [act[:, edges[i]:edges[i + 1], edges[j]:edges[j + 1]].sum(axis=(1, 2))
                  for i in range(self.pool) for j in range(self.pool)]
        return np.concatenate(pooled, axis=1)

    def _not_fitted_message(self) -> str:
        return ("the 'learned' extractor is not fitted: call fit(previews) on the project's "
                "previews, or set_state() with a saved state, before transform()")

    def __repr__(self) -> str:
        return (f"PatchDictionaryExtractor(n_centroids={self.n_centroids}, patch={self.patch}, "
                f"size={self.size}, pool={self.pool}, n_patches={self.n_patches}, "
                f"random_state={self.random_state})")
