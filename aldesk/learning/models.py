"""Classifiers on scan features: fit, calibrate, evaluate, and store as plain arrays.

``fit_model`` turns the labelled rows into a ``TrainedModel`` whose ``predict_proba`` always has one
column per class and is calibrated out of fold. The logistic model (the default) predicts with plain
numpy from its coefficients, so a project stores it as arrays (``to_arrays``) and rebuilds it without
scikit-learn or pickles (``from_arrays``); other estimators are retrained from the labels when needed.

Pure: numpy, scipy, scikit-learn. Never Qt, sqlite or the project store. Every fit runs with one BLAS
thread (``threadpool_limits(1, "blas")``): on two cores spinning OpenBLAS threads make it 10x slower.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from numbers import Integral

import numpy as np
from threadpoolctl import threadpool_limits

from aldesk.errors import LearningError, NotEnoughLabelsError
from aldesk.learning.base import _CHUNK, check_features, class_label, column_moments
from aldesk.learning.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    TemperatureScaler,
    cross_fitted_ece,
    expected_calibration_error,
    log_softmax,
    make_calibrator,
    softmax,
)

MODEL_NAMES = ("logistic", "random_forest", "hist_gradient_boosting", "mlp", "ordinal_logistic")
ORDINAL_MODEL = "ordinal_logistic"  # for graded classes (learning.ordinal); retrained from labels, not stored
_C_MODELS = ("logistic", "ordinal_logistic")  # models whose C is chosen out of fold


def default_model(ordered: bool = False) -> str:
    """The model a project trains unless told otherwise: the ordinal one for graded classes."""
    return ORDINAL_MODEL if ordered else DEFAULT_MODEL
DEFAULT_MODEL = "logistic"
ISOTONIC_MIN_LABELS = 1000
CALIBRATION_FOLDS = 5
MIN_CALIBRATION_LABELS = 20  # below this a temperature fitted out of fold is mostly noise: leave T = 1
LOGISTIC_C_GRID = (0.01, 0.1, 1.0)  # inverse L2 strength, chosen per fit by out-of-fold log-loss
LOGISTIC_C = 0.1  # used when a class has too few labels to cross-validate
LOGISTIC_TOL = 1e-4  # L-BFGS stops when no gradient component exceeds this (scikit-learn's default)
ARRAYS_FORMAT = 1


def _seed(random_state) -> int | None:
    """An int seed for scikit-learn from None / int / Generator (drawing from the Generator)."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, Integral):
        raise LearningError(f"random_state must be None, an int or a numpy Generator, got {random_state!r}")
    return int(random_state)


def make_estimator(name: str = DEFAULT_MODEL, random_state=None, *, C: float = LOGISTIC_C,
                   class_weight: str | None = "balanced", tol: float = LOGISTIC_TOL):
    """A fresh, unfitted scikit-learn estimator for ``name`` (one of ``MODEL_NAMES``).

    C is the logistic model's inverse regularisation strength (on standardised features); class_weight
    "balanced" weighs every class equally, None weighs scans as they come (see learning.objectives).
    """
    if class_weight not in ("balanced", None):
        raise LearningError(f"class_weight == {class_weight!r}; choose 'balanced' or None")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    seed = _seed(random_state)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return Pipeline([("scale", StandardScaler()),
                         ("clf", LogisticRegression(C=C, class_weight=class_weight, max_iter=1000, tol=tol))])
    if name == "ordinal_logistic":
        from aldesk.learning.ordinal import CumulativeLogit

        return Pipeline([("scale", StandardScaler()), ("clf", CumulativeLogit(C=C, class_weight=class_weight))])
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, min_samples_leaf=1, class_weight=class_weight and "balanced_subsample",
                                      max_features="sqrt", n_jobs=1, random_state=seed)
    if name == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=60, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=5,
                                              class_weight=class_weight, early_stopping=False, random_state=seed)
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        return Pipeline([("scale", StandardScaler()),
                         ("clf", MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=300,
                                               early_stopping=False, random_state=seed))])
    raise LearningError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")


def missing_labels_message(counts: np.ndarray, class_names=None, minimum: int = 1) -> str | None:
    """The user-facing reason a model cannot be trained yet, or None when every class has enough."""
    short = [k for k, c in enumerate(counts) if c < minimum]
    if not short:
        return None
    if minimum == 1:
        names = ", ".join(class_label(k, class_names) for k in short)
        what = f"class {names} has" if len(short) == 1 else f"classes {names} have"
        return (f"{what} no label yet; label at least one scan of every class — until then aldesk ranks "
                f"with the cold-start strategy")
    parts = ", ".join(f"{class_label(k, class_names)} has {int(counts[k])}" for k in short)
    return f"every class needs at least {minimum} labels, but {parts}"


def _check_training(X, y, n_classes, sample_weight, class_names):
    X = check_features(X)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise LearningError(f"X has {len(X)} rows but y has shape {y.shape}; give one class index per labelled scan")
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise LearningError(f"n_classes == {n_classes!r}, must be an int >= 2")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise LearningError(f"y must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        bad = int(y[(y < 0) | (y >= n_classes)][0])
        raise LearningError(f"y contains {bad}; only labelled rows with classes 0..{n_classes - 1} can be fitted")
    counts = np.bincount(y, minlength=n_classes)
    message = missing_labels_message(counts, class_names)
    if message:
        raise NotEnoughLabelsError(message)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (len(y),):
            raise LearningError(f"sample_weight has shape {sample_weight.shape}, expected ({len(y)},)")
        if not np.all(np.isfinite(sample_weight)) or sample_weight.min() < 0:
            raise LearningError("sample_weight must be finite and >= 0")
    return X, y, counts, sample_weight


def _balanced_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    return len(y) / (n_classes * counts[y])


@contextmanager
def single_threaded():
    """One BLAS thread (and one OpenMP thread, for the tree ensembles) while fitting; silence convergence
    chatter (the MLP stops at its iteration cap on purpose: ranking needs a good model now, not the best)."""
    with threadpool_limits(1, "blas"), threadpool_limits(1, "openmp"), warnings.catch_warnings():
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _fit_scaler(scaler, X: np.ndarray):
    """``scaler.fit(X)`` for a StandardScaler, in two numpy passes: its own incremental float64 pass took
    0.3 s per fit at 16,000 labels x 1,129 features, a quarter of a warm-started retrain."""
    X = np.asarray(X)
    if X.dtype != np.float32 or X.ndim != 2 or len(X) == 0:
        return scaler.fit(X)
    mean, var = column_moments(X)
    scale = np.sqrt(var)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0  # as StandardScaler: constant columns stay unscaled
    scaler.mean_, scaler.var_, scaler.scale_ = mean, var, scale
    scaler.n_samples_seen_, scaler.n_features_in_ = len(X), X.shape[1]
    return scaler


def _start_from(clf, start: "LinearModel", scaler) -> None:
    """Make ``clf`` (a LogisticRegression about to be fitted on ``scaler``'s units) start from ``start``'s
    solution: the same raw-feature weights expressed in this scaler's units, so L-BFGS begins next to the
    optimum instead of at zero (the same optimum, reached in a fraction of the iterations)."""
    w = start._w.astype(np.float64)  # (d, K): logits = X @ w + b in raw feature units
    clf.set_params(warm_start=True)
    clf.coef_ = np.ascontiguousarray((w * scaler.scale_[:, None]).T)
    clf.intercept_ = start._b.astype(np.float64) + scaler.mean_ @ w


def _can_start_from(start, name: str, n_classes: int, n_features: int) -> bool:
    return (start is not None and name == "logistic" and isinstance(start, LinearModel)
            and start.n_classes_ == n_classes and start.n_features_ == n_features)


def _fit_estimator(name, X, y, n_classes, sample_weight, seed, C=LOGISTIC_C, class_weight="balanced", start=None,
                   tol=LOGISTIC_TOL):
    """A fitted ``make_estimator(name)``; a logistic one starts from ``start``'s solution when it fits."""
    est = make_estimator(name, seed, C=C, class_weight=class_weight, tol=tol)
    if name == "mlp" and class_weight:  # MLPClassifier has no class_weight: balance through the sample weights
        w = _balanced_weights(y, n_classes)
        sample_weight = w if sample_weight is None else w * sample_weight
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    steps = getattr(est, "named_steps", {})
    if "scale" not in steps:
        est.fit(X, y, **kwargs)
        return est
    scaler, clf = steps["scale"], steps["clf"]  # every pipeline of make_estimator: scaler, then classifier
    _fit_scaler(scaler, X)
    if _can_start_from(start, name, n_classes, X.shape[1]):
        _start_from(clf, start, scaler)
    clf.fit(scaler.transform(X), y, **kwargs)
    return est


class TrainedModel:
    """A fitted, calibrated classifier.

    predict_proba(X) : (n, n_classes) float64, rows sum to 1, calibrated.
    Fitted attributes: ``n_classes_``, ``n_labels_``, ``class_counts_``, ``calibration_`` ("temperature",
    "isotonic" or "none"), ``temperature_``, ``ece_`` (held-out ECE of the calibrated probabilities,
    nan when a class has fewer than 2 labels), ``ece_uncalibrated_``.
    """

    name = ""

    def __init__(self, n_classes: int, calibrator=None):
        self.n_classes_ = int(n_classes)
        self.calibrator_ = calibrator if calibrator is not None else IdentityCalibrator()
        self.ece_ = float("nan")
        self.ece_uncalibrated_ = float("nan")
        self.n_labels_ = 0
        self.class_counts_ = np.zeros(self.n_classes_, dtype=np.int64)
        self.cv_log_loss_: dict = {}
        self.fold_models_: list = []  # the out-of-fold models of stable folds (fit_model's groups), for warm starts

    @property
    def calibration_(self) -> str:
        return self.calibrator_.kind

    @property
    def temperature_(self) -> float:
        return float(getattr(self.calibrator_, "temperature_", 1.0))

    def decision_logits(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes) float64 uncalibrated logits (log-probabilities up to a row constant)."""
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise LearningError(f"X must be 2-D (n_scans, n_features), got shape {X.shape}")
        out = np.empty((len(X), self.n_classes_), dtype=np.float64)
        for start in range(0, len(X), _CHUNK):
            out[start:start + _CHUNK] = self.calibrator_.transform(self.decision_logits(X[start:start + _CHUNK]))
        return out

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, n_classes={self.n_classes_}, n_labels={self.n_labels_}, "
                f"calibration={self.calibration_!r}, ece={self.ece_:.3f})")


class LinearModel(TrainedModel):
    """Multinomial (or binary) logistic regression on standardised features, predicted with numpy.

    coef_ : (K, d) float32 in standardised units, K = 1 for two classes else n_classes
    intercept_ : (K,) float32;  mean_, scale_ : (d,) float32 of the scaler
    The scaler is folded into the weights once, so predicting never copies X.
    """

    name = "logistic"

    def __init__(self, coef, intercept, mean, scale, n_classes: int, calibrator=None, C: float = LOGISTIC_C):
        super().__init__(n_classes, calibrator)
        self.coef_ = np.asarray(coef, dtype=np.float32)
        self.intercept_ = np.asarray(intercept, dtype=np.float32).reshape(-1)
        self.mean_ = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.scale_ = np.asarray(scale, dtype=np.float32).reshape(-1)
        self.C_ = float(C)
        expected_k = 1 if self.n_classes_ == 2 else self.n_classes_
        if self.coef_.ndim != 2 or self.coef_.shape[0] != expected_k or self.coef_.shape[1] != len(self.mean_):
            raise LearningError(f"coef has shape {self.coef_.shape}; expected ({expected_k}, {len(self.mean_)}) "
                                f"for {self.n_classes_} classes")
        w = self.coef_.astype(np.float64) / self.scale_.astype(np.float64)
        self._w = np.ascontiguousarray(w.T.astype(np.float32))  # (d, K)
        self._b = (self.intercept_.astype(np.float64) - w @ self.mean_.astype(np.float64)).astype(np.float32)

    @property
    def n_features_(self) -> int:
        return len(self.mean_)

    def decision_logits(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_features_:
            raise LearningError(f"X has {X.shape[1]} features but the model was trained on {self.n_features_}; "
                                f"retrain after changing the feature extractor")
        z = (X @ self._w + self._b).astype(np.float64)
        if self.n_classes_ == 2:
            return np.concatenate([np.zeros_like(z), z], axis=1)
        return z

    def standardise(self, X: np.ndarray) -> np.ndarray:
        """(n, d) float64 features in the units the coefficients are in."""
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to predict, as plain numeric arrays (``np.savez``-able, no pickles)."""
        arrays = {
            "format": np.array([ARRAYS_FORMAT]),
            "n_classes": np.array([self.n_classes_]),
            "coef": self.coef_,
            "intercept": self.intercept_,
            "scaler_mean": self.mean_,
            "scaler_scale": self.scale_,
            "C": np.array([self.C_]),
            "calibration": np.array([{"none": 0, "temperature": 1, "isotonic": 2}[self.calibration_]]),
            "temperature": np.array([self.temperature_]),
            "ece": np.array([self.ece_, self.ece_uncalibrated_]),
            "n_labels": np.array([self.n_labels_]),
            "class_counts": self.class_counts_,
        }
        if self.calibration_ == "isotonic":
            arrays.update(self.calibrator_.to_arrays())
        if self.fold_models_:  # raw-unit weights of the stable folds' models: the next retrain's warm starts
            arrays["fold_w"] = np.stack([m._w for m in self.fold_models_])
            arrays["fold_b"] = np.stack([m._b for m in self.fold_models_])
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict) -> "LinearModel":
        try:
            version = int(np.asarray(arrays["format"]).reshape(-1)[0])
            if version > ARRAYS_FORMAT:
                raise LearningError(f"the stored model uses format {version}; this aldesk reads up to "
                                    f"{ARRAYS_FORMAT}: update aldesk or retrain")
            n_classes = int(np.asarray(arrays["n_classes"]).reshape(-1)[0])
            kind = int(np.asarray(arrays["calibration"]).reshape(-1)[0])
            if kind == 1:
                calibrator = TemperatureScaler()
                calibrator.temperature_ = float(np.asarray(arrays["temperature"]).reshape(-1)[0])
            elif kind == 2:
                calibrator = IsotonicCalibrator.from_arrays(arrays, n_classes)
            else:
                calibrator = IdentityCalibrator()
            model = cls(arrays["coef"], arrays["intercept"], arrays["scaler_mean"], arrays["scaler_scale"],
                        n_classes, calibrator, C=float(np.asarray(arrays.get("C", [LOGISTIC_C])).reshape(-1)[0]))
        except KeyError as exc:
            raise LearningError(f"stored model lacks array {exc.args[0]!r}; retrain the model") from exc
        ece = np.asarray(arrays.get("ece", [np.nan, np.nan]), dtype=np.float64).reshape(-1)
        model.ece_, model.ece_uncalibrated_ = float(ece[0]), float(ece[1])
        model.n_labels_ = int(np.asarray(arrays.get("n_labels", [0])).reshape(-1)[0])
        model.class_counts_ = np.asarray(arrays.get("class_counts", np.zeros(n_classes)), dtype=np.int64)
        if "fold_w" in arrays and "fold_b" in arrays:
            fw, fb = np.asarray(arrays["fold_w"]), np.asarray(arrays["fold_b"])
            d = model.n_features_
            if fw.ndim == 3 and fw.shape[1] == d and fb.shape == (fw.shape[0], fw.shape[2]):
                model.fold_models_ = [cls(w.T, b, np.zeros(d), np.ones(d), n_classes) for w, b in zip(fw, fb)]
        return model


class EstimatorModel(TrainedModel):
    """Any scikit-learn classifier with predict_proba; retrained from labels, never stored."""

    def __init__(self, estimator, name: str, n_classes: int, calibrator=None):
        super().__init__(n_classes, calibrator)
        self.estimator_ = estimator
        self.name = name
        self._columns = np.asarray(estimator.classes_, dtype=np.int64)

    def decision_logits(self, X: np.ndarray) -> np.ndarray:
        p = np.zeros((len(X), self.n_classes_))
        p[:, self._columns] = self.estimator_.predict_proba(X)
        return np.log(np.clip(p, 1e-6, 1.0))


def _wrap(estimator, name: str, n_classes: int) -> TrainedModel:
    if name == "logistic":
        scaler, clf = estimator.named_steps["scale"], estimator.named_steps["clf"]
        return LinearModel(clf.coef_, clf.intercept_, scaler.mean_, scaler.scale_, n_classes, C=clf.C)
    return EstimatorModel(estimator, name, n_classes)


def stable_folds(keys, folds: int) -> np.ndarray:
    """(n,) fold index in 0..folds-1 per row from a per-row integer key (a scan id): the same scan falls
    in the same fold at every retrain, so a fold's previous model (which never saw that fold's scans) is
    a fair warm start for its next fit. A multiplicative hash, so consecutive ids spread over the folds."""
    keys = np.asarray(keys, dtype=np.uint64)
    return (((keys * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) % np.uint64(folds)).astype(np.int64)


def _splits(y: np.ndarray, folds: int, seed, groups=None) -> tuple[list, bool]:
    """((train rows, test rows) per fold, whether they are ``groups``' folds): by ``groups`` (fold index
    per row) when every fold's training rows hold every class, else stratified k-fold."""
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise LearningError(f"groups has shape {groups.shape}, expected {y.shape}")
        n_classes = int(y.max()) + 1
        splits = [(np.flatnonzero(groups != k), np.flatnonzero(groups == k)) for k in range(folds)]
        if all(len(te) and (np.bincount(y[tr], minlength=n_classes) > 0).all() for tr, te in splits):
            return splits, True
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y)), False


def _oof_logits(name, X, y, n_classes, sample_weight, seed, folds, C=LOGISTIC_C, class_weight="balanced",
                start=None, groups=None, fold_starts=None):
    """((n, C) out-of-fold logits, the fold models) from ``folds`` folds (see ``_splits``). A logistic
    fold starts from its own previous model in ``fold_starts`` (stable ``groups`` only), else from
    ``start`` (the model fitted on all rows: each fold's optimum is near it)."""
    logits = np.empty((len(y), n_classes))
    splits, stable = _splits(y, folds, seed, groups)
    fold_models = []
    for k, (train, test) in enumerate(splits):
        sw = None if sample_weight is None else sample_weight[train]
        first = fold_starts[k] if stable and fold_starts is not None and k < len(fold_starts) else start
        fitted = _wrap(_fit_estimator(name, X[train], y[train], n_classes, sw, seed, C, class_weight, first),
                       name, n_classes)
        logits[test] = fitted.decision_logits(X[test])
        fold_models.append(fitted)
    return logits, (fold_models if stable else [])


def _balanced_log_loss(logits: np.ndarray, y: np.ndarray, n_classes: int, sample_weight=None,
                       class_weight="balanced") -> float:
    w = _balanced_weights(y, n_classes) if class_weight else np.ones(len(y))
    if sample_weight is not None:
        w = w * sample_weight
    return float(-(w * log_softmax(logits)[np.arange(len(y)), y]).sum() / w.sum())


def select_C(X, y, *, n_classes: int, folds: int, sample_weight=None, random_state=None,
             grid=LOGISTIC_C_GRID, class_weight="balanced", name: str = "logistic") -> tuple[float, np.ndarray, dict]:
    """The logistic C with the lowest out-of-fold log-loss (class-balanced when the classes are weighed
    equally, so model selection follows the objective), its OOF logits, and the losses it computed.

    The same folds serve every C (paired), and the winner's OOF logits are reused for calibration. For
    the logistic model the Cs are tried from the smallest up, each fold starting from its solution at the
    previous C (a warm start: the same optimum in ~40 % fewer iterations), and the search stops at the
    first C whose loss is higher than the one before: the loss over this grid was unimodal in all 178
    grids measured (5 benchmark sets, 30-4,000 labels), and the largest C, the slowest to fit, is then
    skipped whenever the smallest wins. Other models are fitted afresh for every C of the grid.
    """
    seed = _seed(random_state)
    losses, oof = {}, {}
    if name != "logistic":
        for c in grid:
            oof[c], _ = _oof_logits(name, X, y, n_classes, sample_weight, seed, folds, c, class_weight)
            losses[c] = _balanced_log_loss(oof[c], y, n_classes, sample_weight, class_weight)
        best = min(grid, key=lambda c: (losses[c], c))
        return best, oof[best], losses
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_fits = []  # (train rows, test rows, fitted scaler, warm-started classifier) per fold
    for train, test in splitter.split(np.zeros(len(y)), y):
        est = make_estimator(name, seed, class_weight=class_weight)
        scaler, clf = est.named_steps["scale"], est.named_steps["clf"]
        fold_fits.append((train, test, _fit_scaler(scaler, X[train]), clf.set_params(warm_start=True)))
    for c in sorted(grid):
        logits = np.empty((len(y), n_classes))
        for train, test, scaler, clf in fold_fits:
            kwargs = {} if sample_weight is None else {"sample_weight": sample_weight[train]}
            clf.set_params(C=c).fit(scaler.transform(X[train]), y[train], **kwargs)
            logits[test] = LinearModel(clf.coef_, clf.intercept_, scaler.mean_, scaler.scale_, n_classes,
                                       C=c).decision_logits(X[test])
        oof[c], losses[c] = logits, _balanced_log_loss(logits, y, n_classes, sample_weight, class_weight)
        if len(losses) >= 2 and losses[c] > min(losses.values()):
            break
    best = min(losses, key=lambda c: (losses[c], c))
    return best, oof[best], losses


def fit_model(X, y, *, n_classes: int, name: str = DEFAULT_MODEL, sample_weight=None, random_state=None,
              calibrate: bool = True, class_names=None, C: float | None = None,
              class_weight: str | None = "balanced", folds: int = CALIBRATION_FOLDS,
              start: "TrainedModel | None" = None, groups=None, tol: float = LOGISTIC_TOL) -> TrainedModel:
    """Fit ``name`` on the labelled rows, choose its regularisation and calibrate it, all out of fold.

    X : (n_labels, d) float32 features of labelled scans only; y : (n_labels,) class indices.
    Raises NotEnoughLabelsError (naming the class) when some class has no label. With at least 2 labels
    in every class the logistic C is chosen from ``LOGISTIC_C_GRID`` by out-of-fold log-loss (unless
    ``C`` is given) and, from ``MIN_CALIBRATION_LABELS`` labels on, the probabilities are calibrated on the
    same out-of-fold predictions; otherwise C = ``LOGISTIC_C`` and/or the model is returned uncalibrated
    (``calibration_ == "none"``). class_weight: "balanced" (every class counts equally) or None (scans
    as they come); ``learning.objectives.class_weighting`` picks it from the project's objective.
    start: a logistic model fitted earlier on (nearly) the same labels and features, e.g. the project's
    previous model: the final fit starts from its solution and the out-of-fold fits from the final one's
    (warm starts: the same optimum in a fraction of the L-BFGS iterations; ignored when it does not fit
    the classes or features, or for other models).
    groups: (n_labels,) stable fold index per row (``stable_folds`` of the scan ids): the out-of-fold
    passes use these folds (when each trains on every class), and each fold then starts from ``start``'s
    model of the same fold (``fold_models_``), which never saw that fold's scans. Without groups the
    folds are stratified and shuffled by ``random_state``.
    tol: the logistic model's L-BFGS tolerance for the final fit (the audit's cross-fits, which need only
    predicted classes and start next to their optimum, use a looser one).
    """
    if name not in MODEL_NAMES:
        raise LearningError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    X, y, counts, sample_weight = _check_training(X, y, n_classes, sample_weight, class_names)
    rng = np.random.default_rng(_seed(random_state))
    seed = int(rng.integers(2**31 - 1))
    folds = min(int(folds), int(counts.min()))  # out-of-fold passes for choosing C and calibrating
    logits = None
    losses = {}
    with single_threaded():
        if name in _C_MODELS and C is None:
            C = LOGISTIC_C
            if folds >= 2:
                C, logits, losses = select_C(X, y, n_classes=n_classes, folds=folds, sample_weight=sample_weight,
                                             random_state=seed, class_weight=class_weight, name=name)
        C = LOGISTIC_C if C is None else float(C)
        model = _wrap(_fit_estimator(name, X, y, n_classes, sample_weight, seed, C, class_weight, start, tol),
                      name, n_classes)
        if calibrate and folds >= 2 and len(y) >= MIN_CALIBRATION_LABELS:
            if logits is None:
                usable = _can_start_from(start, name, n_classes, X.shape[1])
                logits, model.fold_models_ = _oof_logits(
                    name, X, y, n_classes, sample_weight, seed, folds, C, class_weight,
                    model if usable else None, groups, getattr(start, "fold_models_", None) if usable and len(getattr(start, "fold_models_", [])) == folds else None)
            factory = (IsotonicCalibrator if len(y) >= ISOTONIC_MIN_LABELS else TemperatureScaler)
            model.calibrator_ = make_calibrator(len(y), ISOTONIC_MIN_LABELS).fit(logits, y)
            model.ece_uncalibrated_ = expected_calibration_error(softmax(logits), y)
            model.ece_ = cross_fitted_ece(factory, logits, y, rng)
    model.n_labels_ = len(y)
    model.class_counts_ = counts
    model.cv_log_loss_ = {float(c): v for c, v in losses.items()}
    model.oof_logits_ = logits  # (n_labels, C) out-of-fold logits it was calibrated on, or None
    model.cv_folds_ = folds
    return model


def from_arrays(arrays: dict) -> LinearModel:
    """Rebuild a logistic model stored with ``TrainedModel.to_arrays()``."""
    return LinearModel.from_arrays(arrays)


def macro_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC AUC: binary -> of the positive class; else macro one-vs-rest over classes present in y."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    aucs = [roc_auc_score(y == k, proba[:, k]) for k in range(proba.shape[1]) if 0 < (y == k).sum() < len(y)]
    return float(np.mean(aucs)) if aucs else float("nan")


def evaluate(proba: np.ndarray, y: np.ndarray) -> dict:
    """accuracy, balanced_accuracy, auc and ece of (n, C) probabilities against true classes."""
    y = np.asarray(y, dtype=np.int64)
    pred = proba.argmax(axis=1)
    present = np.unique(y)
    recalls = [(pred[y == k] == k).mean() for k in present]
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "auc": macro_auc(y, proba),
        "ece": expected_calibration_error(proba, y),
    }


def oof_metrics(logits: np.ndarray, y: np.ndarray, *, random_state=None, ordered: bool = False) -> dict:
    """``cross_validate_model``'s figures from out-of-fold logits (``TrainedModel.oof_logits_``) after
    calibration cross-fitted on
    halves (a calibrator never scores the scans it was fitted on): the cross-validated figures of the
    fitted model without refitting it in every fold. (The fold models shared the chosen C; choosing among
    three Cs on the same folds makes the figures optimistic by a hair, not by a nested-CV's worth.)"""
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(_seed(random_state))
    n = len(y)
    order = rng.permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2:])]
    proba = np.empty((n, logits.shape[1]))
    for fit_idx, eval_idx in (halves, halves[::-1]):
        proba[eval_idx] = make_calibrator(n, ISOTONIC_MIN_LABELS).fit(logits[fit_idx], y[fit_idx]).transform(
            logits[eval_idx])
    from aldesk.learning.objectives import score_all

    return score_all(proba, y, ordered=ordered)


def cross_validate_model(X, y, n_classes: int, name: str = DEFAULT_MODEL, folds: int = 5, random_state=None,
                         class_names=None, calibrate: bool = True, class_weight: str | None = "balanced",
                         ordered: bool = False) -> dict:
    """Stratified k-fold estimate of how the model fitted on these labels will do on new scans.

    Returns {"accuracy", "balanced_accuracy", "auc" (binary: ROC AUC; else macro one-vs-rest), "ece",
    "n_labels", "folds"} (plus "quadratic_kappa" and "grade_mae" when ``ordered``, and
    "sensitivity_at_specificity" for two classes) from the pooled out-of-fold predictions of calibrated models.
    """
    from aldesk.learning.objectives import score_all

    from sklearn.model_selection import StratifiedKFold

    if isinstance(folds, bool) or not isinstance(folds, Integral) or folds < 2:
        raise LearningError(f"folds == {folds!r}, must be an int >= 2")
    X, y, counts, _ = _check_training(X, y, n_classes, None, class_names)
    if counts.min() < 2:
        k = int(np.argmin(counts))
        raise NotEnoughLabelsError(f"cross-validation needs at least 2 labels of every class, but class "
                                   f"{class_label(k, class_names)} has {int(counts[k])}; label a few more scans")
    folds = min(folds, int(counts.min()))
    seed = _seed(random_state)
    proba = np.empty((len(y), n_classes))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for i, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        model = fit_model(X[train], y[train], n_classes=n_classes, name=name, calibrate=calibrate,
                          random_state=None if seed is None else seed + i, class_names=class_names,
                          class_weight=class_weight)
        proba[test] = model.predict_proba(X[test])
    return {**score_all(proba, y, ordered=ordered), "n_labels": int(len(y)), "folds": int(folds)}
