"""Commands of the learning engine: features, label, train, rank, simulate."""

from __future__ import annotations


def register(add) -> None:
    """Filled in as the learning engine lands."""
