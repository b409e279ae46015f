"""Query by committee and BALD: scans on which a bootstrap committee of models disagrees.

Score functions take member probabilities (K, n, C) and return (n,) float64, higher = more useful:
``vote_entropy_scores`` (entropy of the members' hard votes), ``kl_consensus_scores`` (mean KL divergence
of each member from the consensus) and ``bald_scores`` (mutual information between the prediction and
the model: entropy of the mean minus mean entropy, Houlsby et al. 2011). Falls back to cold start when
no committee can be trained yet.
"""

from __future__ import annotations

import numpy as np

from aldesk.errors import LearningError
from aldesk.learning.base import BaseStrategy, QueryInput, class_label, make_result, ordinal
from aldesk.learning.committee import DEFAULT_MEMBERS
from aldesk.learning.models import DEFAULT_MODEL
from aldesk.learning.querymodel import check_model, cold_start_fallback, resolve_committee, resolve_model, rows_of
from aldesk.learning.uncertainty import check_model_params, entropy_scores


def _check_members(member_proba) -> np.ndarray:
    p = np.asarray(member_proba, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 1 or p.shape[2] < 2:
        raise LearningError(f"member_proba must be (n_members, n_scans, n_classes), got shape {p.shape}")
    return p


def _entropy_last(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.maximum(-(p * logs).sum(axis=-1), 0.0)


def vote_fractions(member_proba) -> np.ndarray:
    """(n, C) share of members whose most likely class is k."""
    p = _check_members(member_proba)
    K, n, C = p.shape
    votes = p.argmax(axis=2)
    frac = np.zeros((n, C))
    for k in range(K):
        frac[np.arange(n), votes[k]] += 1.0 / K
    return frac


def vote_entropy_scores(member_proba) -> np.ndarray:
    """Entropy (nats) of the hard-vote distribution: 0 when all members agree."""
    return _entropy_last(vote_fractions(member_proba))


def kl_consensus_scores(member_proba) -> np.ndarray:
    """Mean over members of KL(p_member || p_consensus), in nats: how far members stray from the mean."""
    p = _check_members(member_proba)
    mean = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(mean > 0, mean, 1.0))[None], 0.0)
    return np.maximum((p * ratio).sum(axis=2).mean(axis=0), 0.0)


def bald_scores(member_proba) -> np.ndarray:
    """Mutual information H(mean_k p_k) - mean_k H(p_k), in nats: disagreement not explained by noise."""
    p = _check_members(member_proba)
    return np.maximum(_entropy_last(p.mean(axis=0)) - _entropy_last(p).mean(axis=0), 0.0)


class _CommitteeStrategy(BaseStrategy):
    measure = ""

    def __init__(self, *, n_members: int = DEFAULT_MEMBERS, estimator: str = DEFAULT_MODEL,
                 min_labels_per_class: int = 1, class_names=None):
        self.n_members = n_members
        self.estimator = estimator
        self.min_labels_per_class = min_labels_per_class
        self.class_names = class_names

    def _check_params(self) -> None:
        if isinstance(self.n_members, bool) or not isinstance(self.n_members, int) or self.n_members < 2:
            raise LearningError(f"n_members == {self.n_members!r}, must be an int >= 2")
        check_model_params(self)

    def _scores(self, member_proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _reason(self, r: int, m: int, s: float, member_p: np.ndarray) -> str:
        raise NotImplementedError

    def _committee(self, data: QueryInput, model):
        return resolve_committee(data, model, estimator=self.estimator, n_members=self.n_members,
                                 class_names=self.class_names, min_labels_per_class=self.min_labels_per_class)

    def _query(self, data: QueryInput, model):
        committee, why = self._committee(data, model)
        if committee is None:
            return cold_start_fallback(data, why, self.name)

        def block_scores(block):
            members = committee.member_proba(block)
            return np.stack([self._scores(members), entropy_scores(members.mean(axis=0))], axis=1)

        out = rows_of(data.X, data.candidates, block_scores)
        score, tie = out[:, 0], out[:, 1]  # equal disagreement: the less certain consensus first
        order = np.lexsort((np.arange(len(score)), -tie, -score))[: data.batch_size]
        members = committee.member_proba(data.X[data.candidates[order]])  # (K, b, C)
        reasons = [self._reason(r, len(score), score[i], members[:, r - 1]) for r, i in enumerate(order, 1)]
        return make_result(self.name, data.candidates[order], score[order], reasons,
                           committee=getattr(committee, "name", ""), n_members=int(members.shape[0]))


class QBCStrategy(_CommitteeStrategy):
    """Query by committee: ``measure`` "vote_entropy" (hard votes) or "kl" (KL to consensus)."""

    def __init__(self, measure: str = "vote_entropy", **kwargs):
        super().__init__(**kwargs)
        self.measure = measure

    @property
    def name(self) -> str:  # type: ignore[override]
        return "qbc_kl" if self.measure == "kl" else "qbc_vote_entropy"

    def _check_params(self) -> None:
        if self.measure not in ("vote_entropy", "kl"):
            raise LearningError(f"measure == {self.measure!r}; choose 'vote_entropy' or 'kl'")
        super()._check_params()

    def _scores(self, member_proba):
        return vote_entropy_scores(member_proba) if self.measure == "vote_entropy" else kl_consensus_scores(member_proba)

    def _reason(self, r, m, s, member_p):
        K = member_p.shape[0]
        votes = np.bincount(member_p.argmax(axis=1), minlength=member_p.shape[1])
        k = int(np.argmax(votes))
        split = f"{votes[k]} of {K} members say {class_label(k, self.class_names)}"
        what = "vote entropy" if self.measure == "vote_entropy" else "KL to consensus"
        return f"{what} {s:.2f}, {ordinal(r)} most disputed of {m:,}: {split}"


class BALDStrategy(_CommitteeStrategy):
    """BALD. For the logistic model the members are ``n_samples`` draws from its Laplace posterior
    N(θ̂, H⁻¹); for other estimators (or a committee passed as ``model``) a bootstrap committee of
    ``n_members`` stands in for the posterior, and BALD then equals QBC-KL (mean KL to the consensus
    is the mutual information).
    """

    name = "bald"

    def __init__(self, *, n_samples: int = 20, **kwargs):
        super().__init__(**kwargs)
        self.n_samples = n_samples

    def _check_params(self) -> None:
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 2:
            raise LearningError(f"n_samples == {self.n_samples!r}, must be an int >= 2")
        super()._check_params()

    def _committee(self, data: QueryInput, model):
        from aldesk.learning.laplace import LaplaceCommittee
        from aldesk.learning.models import LinearModel

        if model is None and self.estimator == "logistic":
            model, why = resolve_model(data, None, estimator="logistic", calibrate=False,
                                       class_names=self.class_names, min_labels_per_class=self.min_labels_per_class)
            if model is None:
                return None, why
        if isinstance(model, LinearModel):
            check_model(model, data)
            lab = data.labelled
            return LaplaceCommittee(model, data.X[lab], data.y[lab], n_samples=self.n_samples, rng=data.rng), None
        return super()._committee(data, model)

    def _scores(self, member_proba):
        return bald_scores(member_proba)

    def _reason(self, r, m, s, member_p):
        conf = member_p.max(axis=1)
        return (f"mutual information {s:.2f}, {ordinal(r)} highest of {m:,}: the members disagree more than "
                f"each is unsure (member confidence {conf.min():.0%}-{conf.max():.0%})")
