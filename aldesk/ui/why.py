"""Why this scan, in words a radiologist uses: the strategy's reason and the model's probabilities turned
into one or two plain sentences for the label panel; the numbers stay one click away (``details``).

The model's leading class is never named here (the guess stays hidden unless asked for: no automation
bias); "torn between normal and pneumonia" names both. Pure text: no Qt, no store.
"""

from __future__ import annotations

import re

from aldesk.app.progress import AUDIT_REASON

TORN = 0.65        # top probability below this: the model is torn
UNSURE = 0.85      # below this: the model is unsure


def _model_part(prediction: tuple[str, float] | None, classes: list[str]) -> str | None:
    if prediction is None:
        return None
    _cls, p = prediction
    if p < TORN:
        if len(classes) == 2:
            return f"the model is torn between {classes[0]} and {classes[1]}"
        return "the model cannot tell which class it is"
    if p < UNSURE:
        return "the model is unsure about it"
    return "the model is fairly sure about it"


def _data_part(reason: str) -> str | None:
    r = reason.lower()
    group = re.search(r"typical of a group of (\d+) similar", r)
    if group and "labels are still few" in r:
        return f"it is typical of {group.group(1)} similar scans: while labels are few, typical scans teach the model most"
    if "far from labelled scans" in r or "far from those already chosen" in r or "far from labelled" in r:
        return "it is unlike the scans labelled so far"
    if "close to labelled scans" in r:
        return "it resembles scans already labelled"
    if group:
        return f"it stands for {group.group(1)} similar scans the model is unsure about"
    if "fills a gap" in r:
        return "it fills a gap between the scans labelled so far"
    if "disputed" in r or "disagree" in r:
        return "the models in the committee disagree about it"
    if "rare" in r or "rarer class" in r:
        return "it may belong to a class with few labels so far"
    return None


def plain_why(reason: str | None, prediction: tuple[str, float] | None, classes: list[str], *,
              ranked: bool) -> str:
    """One or two plain sentences for the scan on screen.

    reason : the strategy's text for this scan (Worklist.reasons), None when it was not among the picks
    prediction : (most likely class, its probability) from the current model, None without a model
    ranked : whether a ranking exists at all (False: the queue is in import order, ranking pending)
    """
    if reason is None:
        if not ranked:
            return "Not ranked yet: the queue is in import order until the model has ranked it."
        return "Not among the model's latest picks: you chose it, or the ranking changed while you read it."
    if reason == AUDIT_REASON:
        return ("Picked at random from the whole project (an audit scan): it lets aldesk measure the model "
                "fairly, on scans it did not choose.")
    r = reason.lower()
    if "typical and diverse" in r or ("cluster" in r and prediction is None):
        return ("No model yet: this scan is typical of one group of similar scans, so the first labels "
                "cover the variety in the data.")
    if "diverse scan" in r and prediction is None:
        return "No model yet: this scan differs most from those already chosen, to cover the variety in the data."
    parts = [p for p in (_model_part(prediction, classes), _data_part(reason)) if p]
    if not parts:
        return "The model learns most from this scan next."
    text = "; ".join(parts)
    return f"{text[0].upper()}{text[1:]}."


def details(reason: str | None, score: float | None, prediction: tuple[str, float] | None,
            classes: list[str], strategy: str | None) -> str:
    """The numbers behind ``plain_why``: probabilities, the strategy's own reason and score."""
    lines = []
    if prediction is not None:
        cls, p = prediction
        if len(classes) == 2:
            other = next(c for c in classes if c != cls)
            lines.append(f"Model: {cls} {p:.0%} / {other} {1 - p:.0%}")
        else:
            lines.append(f"Model: {cls} {p:.0%}")
    if reason:
        lines.append(f"{strategy or 'Ranking'}: {reason}")
    if score is not None:
        lines.append(f"Score {score:.3f}")
    return "\n".join(lines) or "No numbers yet: the queue is not ranked."
