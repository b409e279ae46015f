"""Expected error reduction (EER, Roy & McCallum 2001) and expected model change (EMC, expected gradient
length, Settles & Craven 2008), for the logistic model.

EER asks, for each candidate and each label it could get, how the model's expected error on the
unlabelled pool would change. Retraining for every (candidate, label) pair is what makes textbook EER
slow; here the retrained model is one Newton step from the current one (the influence-function
approximation, exact to second order): Δθ = -H⁻¹ ∇ℓ(x, k), H the Hessian of the training objective.
H is inverted once per query; the pairs are then a few matrix products. Candidates and evaluation scans
are random subsamples (``n_candidates``, ``n_evaluation``), so a query stays well under a second.

EMC scores every candidate in closed form: E_k[ ||∇θ ℓ(x, k)|| ] = sum_k p_k ||p - e_k|| · ||x̃||.

Both work in the logistic model's standardised feature space. Given another model (a forest, an MLP),
they fit a logistic surrogate from (X, y) and say so in ``details``.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import BaseStrategy, QueryInput, make_result, ordinal, top_k
from aldesk.learning.calibration import softmax
from aldesk.learning.models import LinearModel
from aldesk.learning.laplace import class_weights as _class_weights
from aldesk.learning.laplace import logistic_hessian, raw_proba as _raw_proba, with_bias as _with_bias
from aldesk.learning.querymodel import candidate_proba, check_model, cold_start_fallback, resolve_model, rows_of


def _linear_model(data: QueryInput, model, calibrate: bool, class_names, min_labels: int):
    """(LinearModel, None, note) or (None, reason, note)."""
    note = None
    if model is not None and not isinstance(model, LinearModel):
        check_model(model, data)
        note = f"{getattr(model, 'name', type(model).__name__)} model given; scored with a logistic surrogate"
        model = None
    fitted, why = resolve_model(data, model, estimator="logistic", calibrate=calibrate, class_names=class_names,
                                min_labels_per_class=min_labels)
    return fitted, why, note


class ExpectedErrorReduction(BaseStrategy):
    """EER with one-Newton-step retraining on ``n_candidates`` sampled candidates.

    loss : "zero_one" (expected misclassification, 1 - max p) or "log" (expected entropy) on
    ``n_evaluation`` sampled unlabelled scans.
    """

    name = "eer"

    def __init__(self, *, n_candidates: int = 300, n_evaluation: int = 500, loss: str = "zero_one",
                 calibrate: bool = True, min_labels_per_class: int = 1, class_names=None):
        self.n_candidates = n_candidates
        self.n_evaluation = n_evaluation
        self.loss = loss
        self.calibrate = calibrate
        self.min_labels_per_class = min_labels_per_class
        self.class_names = class_names

    def _check_params(self) -> None:
        for p in ("n_candidates", "n_evaluation", "min_labels_per_class"):
            v = getattr(self, p)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LearningError(f"{p} == {v!r}, must be an int >= 1")
        if self.loss not in ("zero_one", "log"):
            raise LearningError(f"loss == {self.loss!r}; choose 'zero_one' or 'log'")

    def _loss(self, P: np.ndarray) -> np.ndarray:
        """Per-row loss of (..., n_classes) probabilities."""
        if self.loss == "zero_one":
            return 1.0 - P.max(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return -(P * np.where(P > 0, np.log(np.where(P > 0, P, 1.0)), 0.0)).sum(axis=-1)

    def _query(self, data: QueryInput, model):
        fitted, why, note = _linear_model(data, model, self.calibrate, self.class_names, self.min_labels_per_class)
        if fitted is None:
            return cold_start_fallback(data, why, self.name)
        rng, cand = data.rng, data.candidates
        S = np.sort(rng.choice(cand, min(max(self.n_candidates, data.batch_size), len(cand)), replace=False))
        U = np.sort(rng.choice(cand, min(self.n_evaluation, len(cand)), replace=False))
        n_classes, T = fitted.n_classes_, fitted.temperature_
        ZL = _with_bias(fitted.standardise(data.X[data.labelled]))
        ZS = _with_bias(fitted.standardise(data.X[S]))
        ZU = _with_bias(fitted.standardise(data.X[U]))
        s_class = _class_weights(data.class_counts)
        s = s_class[data.y[data.labelled]]
        H = logistic_hessian(ZL, _raw_proba(fitted, ZL), s, fitted.C_)
        Hinv = np.linalg.inv(H)
        PS_raw = _raw_proba(fitted, ZS)
        PS = fitted.predict_proba(data.X[S])  # calibrated: how likely each answer is
        zU = fitted.decision_logits(data.X[U].astype(np.float32))
        D1 = ZS.shape[1]
        nS = len(S)
        if n_classes == 2:
            # gradient of s_k ℓ(x, k) for sklearn's single weight vector: s_k (p1 - [k == 1]) x̃
            coef = (PS_raw[:, 1][:, None] - np.array([0.0, 1.0])[None, :]) * s_class[None, :]  # (nS, 2)
            G = (coef[:, :, None] * ZS[:, None, :]).reshape(nS * 2, D1)
            dz = -(G @ Hinv) @ ZU.T  # (nS*2, |U|) change of the positive logit
            z_new = zU[None, :, 1] + dz
            new = np.stack([np.zeros_like(z_new), z_new], axis=-1) / T
        else:
            A = PS_raw[:, None, :] - np.eye(n_classes)[None, :, :]  # (nS, k, c): p - e_k
            A *= s_class[None, :, None]
            G = (A[:, :, :, None] * ZS[:, None, None, :]).reshape(nS * n_classes, n_classes * D1)
            delta = -(G @ Hinv).reshape(nS * n_classes * n_classes, D1)
            dz = (delta @ ZU.T).reshape(nS * n_classes, n_classes, len(U)).transpose(0, 2, 1)
            new = (zU[None] + dz) / T
        new = softmax(new.reshape(-1, n_classes)).reshape(nS, n_classes, len(U), n_classes)
        expected_loss = (self._loss(new).mean(axis=2) * PS).sum(axis=1)  # (nS,)
        now = float(self._loss(fitted.predict_proba(data.X[U])).mean())
        gain = now - expected_loss
        best = top_k(gain, data.batch_size)
        unit = "points of expected error" if self.loss == "zero_one" else "nats of expected entropy"
        scale = 100.0 if self.loss == "zero_one" else 1.0
        reasons = [f"labelling it should cut {gain[i] * scale:.2f} {unit} on {len(U):,} unlabelled scans; "
                   f"{ordinal(r)} best of {nS:,} sampled" for r, i in enumerate(best, 1)]
        details = {"sampled_candidates": int(nS), "evaluation_scans": int(len(U)), "current_loss": now}
        if note:
            details["note"] = note
        return make_result(self.name, S[best], gain[best], reasons, **details)


class ExpectedModelChange(BaseStrategy):
    """Expected gradient length of the logistic model, on every candidate (closed form, cheap)."""

    name = "emc"

    def __init__(self, *, calibrate: bool = True, min_labels_per_class: int = 1, class_names=None):
        self.calibrate = calibrate
        self.min_labels_per_class = min_labels_per_class
        self.class_names = class_names

    def _check_params(self) -> None:
        v = self.min_labels_per_class
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise LearningError(f"min_labels_per_class == {v!r}, must be an int >= 1")

    def _query(self, data: QueryInput, model):
        fitted, why, note = _linear_model(data, model, self.calibrate, self.class_names, self.min_labels_per_class)
        if fitted is None:
            return cold_start_fallback(data, why, self.name)
        P = candidate_proba(fitted, data)  # calibrated: the expectation over answers

        def raw_and_norm(block):
            Z1 = _with_bias(fitted.standardise(block))
            return np.concatenate([_raw_proba(fitted, Z1), np.sqrt((Z1 * Z1).sum(axis=1))[:, None]], axis=1)

        out = rows_of(data.X, data.candidates, raw_and_norm)
        R, xnorm = out[:, :-1], out[:, -1]
        n_classes = R.shape[1]
        # ||p - e_k||² = ||p||² - 2 p_k + 1
        grad = np.sqrt(np.maximum((R * R).sum(axis=1)[:, None] - 2.0 * R + 1.0, 0.0)) * xnorm[:, None]
        score = (P * grad).sum(axis=1)
        best = top_k(score, data.batch_size)
        reasons = [f"expected gradient length {score[i]:.2f}, {ordinal(r)} largest of {len(score):,}: "
                   f"its label would move the model most" for r, i in enumerate(best, 1)]
        details = {"note": note} if note else {}
        return make_result(self.name, data.candidates[best], score[best], reasons, n_classes=int(n_classes), **details)
