"""From several readers' labels to one training label per scan."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def majority_labels(reads: Iterable[tuple[int, str]], classes: list[str]) -> dict[int, str]:
    """scan id -> the class most readers chose. 'unsure'/'skip' reads do not vote; ties give no label,
    so a disputed scan never trains the model until someone settles it."""
    votes: dict[int, Counter] = {}
    valid = set(classes)
    for scan_id, value in reads:
        if value in valid:
            votes.setdefault(scan_id, Counter())[value] += 1
    final = {}
    for scan_id, counter in votes.items():
        (top, n), *rest = counter.most_common(2) + [(None, 0)]
        if rest[0][1] < n:
            final[scan_id] = top
    return final
