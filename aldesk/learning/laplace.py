"""The Laplace approximation of the logistic model's posterior: N(θ̂, H⁻¹) around the fitted weights.

Used by EER (one Newton step Δθ = -H⁻¹∇ℓ stands in for retraining) and by BALD (posterior samples stand
in for a committee, so BALD measures genuine Bayesian disagreement rather than repeating QBC-KL, which
for any committee equals the same mutual information). Plain numpy on the labelled rows only.
"""

from __future__ import annotations

import numpy as np

from aldesk.learning.calibration import softmax
from aldesk.learning.models import LinearModel


def with_bias(Z: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d+1) with a trailing column of ones."""
    return np.concatenate([Z, np.ones((len(Z), 1))], axis=1)


def weight_matrix(model: LinearModel) -> np.ndarray:
    """(K, d+1) float64 coefficients and intercept in standardised units (K = 1 for two classes)."""
    return np.concatenate([model.coef_.astype(np.float64), model.intercept_[:, None].astype(np.float64)], axis=1)


def logits_from(Z1: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(n, n_classes) logits of standardised features with bias under (K, d+1) weights."""
    z = Z1 @ W.T
    return np.concatenate([np.zeros_like(z), z], axis=1) if W.shape[0] == 1 else z


def raw_proba(model: LinearModel, Z1: np.ndarray) -> np.ndarray:
    """Uncalibrated probabilities from standardised features with a bias column."""
    return softmax(logits_from(Z1, weight_matrix(model)))


def class_weights(counts: np.ndarray) -> np.ndarray:
    """(C,) scikit-learn's class_weight="balanced": n / (C · n_k)."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    return counts.sum() / (len(counts) * counts)


def logistic_hessian(Z1: np.ndarray, P: np.ndarray, s: np.ndarray, C: float) -> np.ndarray:
    """Hessian of sum_i s_i ℓ_i + ||W||²/(2C) at the fitted weights (bias unpenalised, tiny ridge).

    Z1 : (L, d+1) standardised labelled features with bias; P : (L, n_classes) uncalibrated
    probabilities; s : (L,) sample weights. Binary problems use scikit-learn's single weight vector
    (size d+1); otherwise the full softmax parameterisation (n_classes · (d+1), class-major).
    """
    L, D1 = Z1.shape
    n_classes = P.shape[1]
    penalty = np.full(D1, 1.0 / C)
    penalty[-1] = 0.0
    if n_classes == 2:
        w = s * P[:, 1] * P[:, 0]
        H = Z1.T @ (Z1 * w[:, None])
        H[np.diag_indices(D1)] += penalty + 1e-6
        return H
    H = np.empty((n_classes * D1, n_classes * D1))
    for k in range(n_classes):
        for j in range(k, n_classes):
            w = s * P[:, k] * ((1.0 if j == k else 0.0) - P[:, j])
            block = Z1.T @ (Z1 * w[:, None])
            H[k * D1:(k + 1) * D1, j * D1:(j + 1) * D1] = block
            H[j * D1:(j + 1) * D1, k * D1:(k + 1) * D1] = block.T
    H[np.diag_indices(n_classes * D1)] += np.tile(penalty, n_classes) + 1e-6
    return H


def model_hessian(model: LinearModel, X_labelled: np.ndarray, y_labelled: np.ndarray) -> np.ndarray:
    Z1 = with_bias(model.standardise(X_labelled))
    counts = np.bincount(y_labelled, minlength=model.n_classes_)
    s = class_weights(counts)[y_labelled]
    return logistic_hessian(Z1, raw_proba(model, Z1), s, model.C_)


class LaplaceCommittee:
    """``n_samples`` weight vectors drawn from N(θ̂, H⁻¹); quacks like ``Committee``.

    member_proba(X) : (K, n, n_classes) uncalibrated probabilities under each sampled weight vector.
    """

    def __init__(self, model: LinearModel, X_labelled: np.ndarray, y_labelled: np.ndarray, *, n_samples: int = 20,
                 rng: np.random.Generator):
        self.model = model
        self.n_classes_ = model.n_classes_
        self.name = "logistic (Laplace posterior)"
        W = weight_matrix(model)
        H = model_hessian(model, X_labelled, y_labelled)
        try:
            chol = np.linalg.cholesky(H)  # H = L Lᵀ, so θ = θ̂ + L⁻ᵀ ε has covariance H⁻¹
        except np.linalg.LinAlgError:  # numerically indefinite (near-separable data): add a little ridge
            chol = np.linalg.cholesky(H + np.eye(len(H)) * (1e-6 + 1e-8 * np.trace(H)))
        eps = rng.standard_normal((len(H), n_samples))
        from scipy.linalg import solve_triangular

        draws = solve_triangular(chol, eps, lower=True, trans="T").T  # (K, D)
        self.samples_ = W[None] + draws.reshape(n_samples, *W.shape)

    @property
    def n_members_(self) -> int:
        return len(self.samples_)

    def member_proba(self, X) -> np.ndarray:
        Z1 = with_bias(self.model.standardise(X))
        return np.stack([softmax(logits_from(Z1, W)) for W in self.samples_])

    def predict_proba(self, X) -> np.ndarray:
        return self.member_proba(X).mean(axis=0)
