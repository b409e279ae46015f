"""The ``onnx`` extractor: a site's own pretrained network (an .onnx file) as feature encoder.

onnxruntime (a dependency of aldesk, which the default ``imagenet`` extractor runs on too) is imported
only when an OnnxExtractor is built, so commands that extract nothing start fast. The network's first
input must be NCHW with 1 or 3 channels; fixed H/W are used as they are, dynamic ones default to
224. Each preview is centre-cropped to the input's aspect ratio, resized (anti-aliased), scaled to
[0, 1] and optionally normalised with per-channel ``mean``/``std``; the first output, flattened, is
the vector. ``version`` starts with a digest of the model file's bytes, so a changed model
recomputes cached vectors. Never imports Qt, sqlite or the store; never downloads anything.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from aldesk.errors import FeatureError
from .base import NoFitting
from .preview import centre_crop, check_images, resize_matrix, to_grey

DEFAULT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # for networks trained on ImageNet: mean=IMAGENET_MEAN,
IMAGENET_STD = (0.229, 0.224, 0.225)   # std=IMAGENET_STD
_ORT_MISSING = "onnxruntime is not installed: pip install 'aldesk[onnx]'"
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
           "tensor(double)": np.float64}


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise FeatureError(_ORT_MISSING) from exc
    return onnxruntime


def _load_errors() -> tuple[type[BaseException], ...]:
    """The exceptions onnxruntime raises for a bad model (its pybind classes, plus the usual)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as pybind

    found = [getattr(pybind, n) for n in ("InvalidProtobuf", "InvalidGraph", "Fail", "NoModel",
                                          "NotImplemented", "InvalidArgument", "RuntimeException")
             if isinstance(getattr(pybind, n, None), type)]
    return (*found, RuntimeError, ValueError)


class OnnxExtractor(NoFitting):
    """Vectors from the first output of an ONNX network run on each preview.

    Parameters
    ----------
    path : the .onnx model file.
    size : input side (pixels) when the graph's H/W are dynamic; default 224. Must agree with fixed
        H/W if given.
    mean, std : per-channel (or one) normalisation applied after scaling to [0, 1]; ``None`` = none.
        For ImageNet-trained networks pass ``IMAGENET_MEAN`` and ``IMAGENET_STD``.
    batch_size : images per run when the graph's batch dimension is dynamic.
    threads : onnxruntime intra-op threads (1 suits a process pool with one worker per core).
    """

    name = "onnx"

    def __init__(self, path: str | os.PathLike, size: int | None = None,
                 mean: float | tuple[float, ...] | None = None,
                 std: float | tuple[float, ...] | None = None,
                 batch_size: int = 32, threads: int = 1):
        self.path = Path(path)
        self.size = size
        self.mean = mean
        self.std = std
        self.batch_size = batch_size
        self.threads = threads
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 8):
            raise ValueError(f"size == {size!r}, must be an int >= 8")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size == {batch_size!r}, must be an int >= 1")
        if not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"threads == {threads!r}, must be an int >= 0 (0 = onnxruntime's choice)")
        model = self._read_model()
        self.model_digest = hashlib.sha256(model).hexdigest()
        self._session = None
        self._open_session(model)

    # --- loading -------------------------------------------------------------------------------

    def _read_model(self) -> bytes:
        if not self.path.is_file():
            raise FeatureError(f"{self.path}: no such ONNX model file; check the path given for "
                               "the 'onnx' feature extractor")
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise FeatureError(f"{self.path}: cannot read the ONNX model ({exc.strerror})") from exc

    def _open_session(self, model: bytes) -> None:
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(self.threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except _load_errors() as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise FeatureError(f"{self.path}: not a usable ONNX model ({first}); export the "
                               "network with torch.onnx.export or tf2onnx and try again") from exc
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise FeatureError(f"{self.path}: the model has {len(inputs)} inputs; the 'onnx' "
                               "extractor needs exactly one image input (N, C, H, W)")
        inp = inputs[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise FeatureError(f"{self.path}: input {inp.name!r} has shape {shape}; expected 4 "
                               "dimensions (N, C, H, W)")
        n, c, h, w = shape
        if c not in (1, 3):
            raise FeatureError(f"{self.path}: input {inp.name!r} has {c} channels; expected 1 "
                               "(grey) or 3 (RGB) in NCHW order")
        if inp.type not in _DTYPES:
            raise FeatureError(f"{self.path}: input {inp.name!r} is {inp.type}; expected a float "
                               "tensor")
        fixed = [d for d in (h, w) if isinstance(d, int)]
        if self.size is not None and any(d != self.size for d in fixed):
            raise FeatureError(f"{self.path}: the model's input is fixed at {h} x {w}; "
                               f"size={self.size} does not fit it (leave size unset)")
        side = self.size or DEFAULT_SIZE
        self._input_name = inp.name
        self._output_name = session.get_outputs()[0].name
        self._channels = c
        self._height = h if isinstance(h, int) else side
        self._width = w if isinstance(w, int) else side
        self._fixed_batch = n if isinstance(n, int) and n > 0 else None
        self._dtype = _DTYPES[inp.type]
        self._mean = self._per_channel(self.mean, "mean", 0.0)
        self._std = self._per_channel(self.std, "std", 1.0)
        if np.any(self._std == 0):
            raise ValueError(f"std == {self.std!r}, must not contain 0")
        self._session = session

    def _per_channel(self, value, label: str, neutral: float) -> np.ndarray:
        arr = np.asarray(neutral if value is None else value, dtype=np.float32).reshape(-1)
        if arr.size == 1:
            arr = np.repeat(arr, self._channels)
        if arr.size != self._channels:
            raise ValueError(f"{label} has {arr.size} values, the model takes {self._channels} "
                             "channels")
        return arr.reshape(self._channels, 1, 1)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_session"] = None  # rebuilt from the file in the receiving process
        return state

    def _ensure_session(self) -> None:
        if self._session is not None:
            return
        model = self._read_model()
        if hashlib.sha256(model).hexdigest() != self.model_digest:
            raise FeatureError(f"{self.path}: the ONNX model file changed while features were "
                               "being extracted; extract again")
        self._open_session(model)

    # --- the contract --------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return (f"{self.model_digest[:16]}:in={self._channels}x{self._height}x{self._width},"
                f"mean={self._mean.ravel().tolist()},std={self._std.ravel().tolist()}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the previews are turned into."""
        return self._channels, self._height, self._width

    def transform(self, images) -> np.ndarray:
        """images : list of (h, w) or (h, w, 3) uint8 -> (n_images, n_outputs) float32."""
        images = check_images(images)
        self._ensure_session()
        if not images:
            probe = self._run(np.zeros((1, *self.input_shape), dtype=self._dtype))
            return np.empty((0, probe.shape[1]), dtype=np.float32)
        step = self._fixed_batch or self.batch_size
        parts = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            batch = np.stack([self._prepare(im) for im in chunk])
            if self._fixed_batch and len(chunk) < self._fixed_batch:  # pad a short last batch
                pad = np.zeros((self._fixed_batch - len(chunk), *batch.shape[1:]), batch.dtype)
                batch = np.concatenate([batch, pad])
            parts.append(self._run(batch)[:len(chunk)])
        out = np.concatenate(parts)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([self._output_name], {self._input_name: batch})
        out = np.asarray(out)
        if out.ndim == 0 or out.shape[0] != len(batch):
            raise FeatureError(f"{self.path}: the first output has shape {out.shape}, which does "
                               f"not have one row per image of a batch of {len(batch)}")
        return out.reshape(len(batch), -1).astype(np.float32, copy=False)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """(h, w[, 3]) uint8 -> (C, H, W) in the graph's float type."""
        if self._channels == 1:
            image = to_grey(image)[:, :, None]
        elif image.ndim == 2 or image.shape[2] == 1:
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
        image = centre_crop(image, self._height, self._width)
        ry = resize_matrix(image.shape[0], self._height)
        rx = resize_matrix(image.shape[1], self._width)
        chw = np.einsum("ih,hwc,jw->cij", ry, image.astype(np.float32), rx, optimize=True)
        chw *= np.float32(1.0 / 255.0)
        chw = (chw - self._mean) / self._std
        return chw.astype(self._dtype, copy=False)

    def __repr__(self) -> str:
        return f"OnnxExtractor(path={str(self.path)!r}, size={self.size}, mean={self.mean}, std={self.std})"
