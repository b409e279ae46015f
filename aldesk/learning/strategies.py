"""The registry of query strategies by name (the names are a contract: the CLI and projects use them).

``get_strategy(name, **params)`` builds one; every strategy has the same ``query`` signature
(aldesk.learning.base.QueryStrategy). A new strategy is a new module plus one row here and one row in
tests/learning/test_strategy_conformance.py.
"""

from __future__ import annotations

import inspect

from aldesk.errors import LearningError
from aldesk.learning.badge import BadgeStrategy
from aldesk.learning.baseline import RandomStrategy
from aldesk.learning.coldstart import ColdStartStrategy
from aldesk.learning.committee_strategies import BALDStrategy, QBCStrategy
from aldesk.learning.coreset import CoresetStrategy
from aldesk.learning.expected import ExpectedErrorReduction, ExpectedModelChange
from aldesk.learning.hybrid import HybridStrategy
from aldesk.learning.uncertainty import UncertaintyStrategy

DEFAULT_STRATEGY = "hybrid"  # with its own defaults for every kind of label set, graded ones too (ordinal model)

_REGISTRY: dict[str, tuple[type, dict]] = {
    "random": (RandomStrategy, {}),
    "least_confidence": (UncertaintyStrategy, {"measure": "least_confidence"}),
    "margin": (UncertaintyStrategy, {"measure": "margin"}),
    "entropy": (UncertaintyStrategy, {"measure": "entropy"}),
    "qbc_vote_entropy": (QBCStrategy, {"measure": "vote_entropy"}),
    "qbc_kl": (QBCStrategy, {"measure": "kl"}),
    "bald": (BALDStrategy, {}),
    "coreset": (CoresetStrategy, {}),
    "badge": (BadgeStrategy, {}),
    "eer": (ExpectedErrorReduction, {}),
    "emc": (ExpectedModelChange, {}),
    "hybrid": (HybridStrategy, {}),
    "cold_start": (ColdStartStrategy, {}),
}

STRATEGY_NAMES: tuple[str, ...] = tuple(_REGISTRY)

DESCRIPTIONS = {
    "random": "uniform random sampling (the baseline)",
    "least_confidence": "lowest top-class probability",
    "margin": "smallest gap between the two likeliest classes",
    "entropy": "highest predictive entropy",
    "qbc_vote_entropy": "bootstrap committee: most split hard votes",
    "qbc_kl": "bootstrap committee: members farthest from the consensus (KL)",
    "bald": "bootstrap committee: mutual information (BALD)",
    "coreset": "greedy k-center: farthest from labelled scans",
    "badge": "k-means++ on gradient embeddings (BADGE)",
    "eer": "expected error reduction (one-Newton-step retraining, sampled)",
    "emc": "expected model change (expected gradient length)",
    "hybrid": "typical scans while labels are few, then the most uncertain 10 % (margin), one typical scan per "
              "weighted k-means group (default)",
    "cold_start": "typical and diverse scans; no model needed",
}


def strategy_params(name: str) -> list[str]:
    """The keyword parameters ``get_strategy(name, ...)`` accepts."""
    cls, fixed = _lookup(name)
    names: list[str] = []
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != "self"
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return [p for p in dict.fromkeys(names) if p not in fixed]


def _lookup(name: str):
    if name not in _REGISTRY:
        raise LearningError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGY_NAMES)}")
    return _REGISTRY[name]


def get_strategy(name: str = DEFAULT_STRATEGY, **params):
    """A new strategy object for ``name`` with ``params`` (e.g. ``favour_rare=True``)."""
    cls, fixed = _lookup(name)
    allowed = strategy_params(name)
    unknown = [p for p in params if p not in allowed]
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise LearningError(f"strategy {name!r} takes no parameter {unknown[0]!r}; it takes {takes}")
    return cls(**fixed, **params)
