"""Calibration of predicted probabilities and how to measure it.

A radiologist reads "pneumonia 80%" as a promise; these calibrators make it one. Temperature scaling (one
parameter, safe on tens of labels) or per-class isotonic regression (needs about a thousand labels),
both fitted on out-of-fold predictions by ``aldesk.learning.models``. Everything here is plain numpy /
scipy so a calibrator can be stored as arrays and rebuilt without scikit-learn or pickles.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError

EPS = 1e-7


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, C) logits, float64."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def expected_calibration_error(proba, y, n_bins: int = 10) -> float:
    """Top-label ECE: the mean gap between confidence and accuracy over equal-width confidence bins.

    proba : (n, C) predicted probabilities; y : (n,) true class indices. Returns a float in [0, 1]
    (nan for n == 0).
    """
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if proba.ndim != 2:
        raise LearningError(f"proba must be 2-D (n, n_classes), got shape {proba.shape}")
    if len(proba) != len(y):
        raise LearningError(f"proba has {len(proba)} rows but y has {len(y)}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise LearningError(f"n_bins == {n_bins!r}, must be an int >= 1")
    if len(y) == 0:
        return float("nan")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=conf, minlength=n_bins))
    return float(gap.sum() / len(y))


class TemperatureScaler:
    """p = softmax(z / T) with one T fitted by minimising the log-loss (Guo et al. 2017).

    Keeps the predicted class; only sharpens (T < 1) or softens (T > 1) the probabilities.
    """

    kind = "temperature"

    def __init__(self, bounds: tuple[float, float] = (0.1, 10.0)):
        self.bounds = bounds

    def fit(self, logits: np.ndarray, y: np.ndarray) -> "TemperatureScaler":
        from scipy.optimize import minimize_scalar

        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        rows = np.arange(len(y))

        def nll(log_t: float) -> float:
            zt = z / np.exp(log_t)
            m = zt.max(axis=1)
            return float(np.mean(m + np.log(np.exp(zt - m[:, None]).sum(axis=1)) - zt[rows, y]))

        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
        self.temperature_ = float(np.exp(res.x)) if nll(res.x) < nll(0.0) else 1.0
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature_)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"temperature": np.array([self.temperature_], dtype=np.float64)}


class IsotonicCalibrator:
    """Per-class isotonic regression of the softmax probabilities, renormalised (one-vs-rest).

    Binary problems calibrate only the positive class (p0 = 1 - p1), as scikit-learn does. The fitted
    step functions are kept as (x, y) threshold arrays and applied with ``np.interp``.
    """

    kind = "isotonic"

    def fit(self, logits: np.ndarray, y: np.ndarray) -> "IsotonicCalibrator":
        from sklearn.isotonic import IsotonicRegression

        p = softmax(logits)
        y = np.asarray(y, dtype=np.int64)
        n_classes = p.shape[1]
        classes = [1] if n_classes == 2 else list(range(n_classes))
        self.n_classes_ = n_classes
        self.x_thresholds_, self.y_thresholds_ = [], []
        for k in classes:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[:, k], (y == k).astype(float))
            self.x_thresholds_.append(np.asarray(iso.X_thresholds_, dtype=np.float64))
            self.y_thresholds_.append(np.asarray(iso.y_thresholds_, dtype=np.float64))
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        p = softmax(logits)
        if self.n_classes_ == 2:
            p1 = np.interp(p[:, 1], self.x_thresholds_[0], self.y_thresholds_[0])
            return np.stack([1.0 - p1, p1], axis=1)
        out = np.empty_like(p)
        for k in range(self.n_classes_):
            out[:, k] = np.interp(p[:, k], self.x_thresholds_[k], self.y_thresholds_[k])
        out += EPS
        out /= out.sum(axis=1, keepdims=True)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        n = max(len(x) for x in self.x_thresholds_)
        xs = np.full((len(self.x_thresholds_), n), np.nan)
        ys = np.full_like(xs, np.nan)
        for k, (x, yv) in enumerate(zip(self.x_thresholds_, self.y_thresholds_)):
            xs[k, : len(x)], ys[k, : len(yv)] = x, yv
        return {"isotonic_x": xs, "isotonic_y": ys, "isotonic_n": np.array([len(x) for x in self.x_thresholds_])}

    @classmethod
    def from_arrays(cls, arrays: dict, n_classes: int) -> "IsotonicCalibrator":
        self = cls()
        self.n_classes_ = n_classes
        lengths = np.asarray(arrays["isotonic_n"], dtype=np.int64)
        self.x_thresholds_ = [np.asarray(arrays["isotonic_x"][k, :n], dtype=np.float64) for k, n in enumerate(lengths)]
        self.y_thresholds_ = [np.asarray(arrays["isotonic_y"][k, :n], dtype=np.float64) for k, n in enumerate(lengths)]
        return self


class IdentityCalibrator:
    """No calibration (too few labels to estimate one out of fold)."""

    kind = "none"
    temperature_ = 1.0

    def fit(self, logits, y) -> "IdentityCalibrator":
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"temperature": np.array([1.0])}


def make_calibrator(n_labels: int, isotonic_min_labels: int = 1000):
    """Temperature scaling for small labelled sets, isotonic from ``isotonic_min_labels`` labels on."""
    return IsotonicCalibrator() if n_labels >= isotonic_min_labels else TemperatureScaler()


def cross_fitted_ece(calibrator_factory, logits: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                     n_bins: int = 10) -> float:
    """ECE of a calibrator judged on data it was not fitted on: fit on one half, score the other, swap."""
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    order = rng.permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2:])]
    proba = np.empty((n, logits.shape[1]))
    for fit_idx, eval_idx in (halves, halves[::-1]):
        cal = calibrator_factory().fit(logits[fit_idx], y[fit_idx])
        proba[eval_idx] = cal.transform(logits[eval_idx])
    return expected_calibration_error(proba, y, n_bins)
