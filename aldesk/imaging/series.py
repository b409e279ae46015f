"""Series geometry: which files of a DICOM series form one stack, in what order, and what is wrong with it.

A radiologist scrolls a *stack*: images of one orientation, one echo, one time point, ordered along
the slice normal. One Series Instance UID often holds several (a 3-plane localizer; fMRI volumes
repeating the same positions; dual-echo magnitude and phase). This module splits a series into its
stacks and orders each one, and reports missing slices, duplicate positions and uneven spacing so the
viewer can show them instead of hiding them.

Pure: plain numbers in, plain data out. Never reads files, never imports Qt or the store.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# Orientations closer than this (direction cosines) are the same plane.
ORIENTATION_DECIMALS = 2
# Two slices nearer than this (mm) along the normal sit at the same position.
SAME_POSITION_MM = 0.01
# A gap this much larger than the typical step is uneven; a multiple of it means missing slices.
UNEVEN_TOLERANCE = 0.1

# Attributes that tell repeated positions apart, in the order a reader expects stacks split.
REPEAT_KEYS = ("echo", "temporal", "image_type", "acquisition")


@dataclass(frozen=True)
class SliceRef:
    """What layout needs to know about one image (a file, or one frame of a multi-frame file)."""

    id: int
    position: tuple[float, float, float] | None = None       # Image Position (Patient), mm
    orientation: tuple[float, ...] | None = None              # Image Orientation (Patient), 6 cosines
    instance_number: int | None = None
    echo: int | None = None
    temporal: int | None = None
    acquisition: int | None = None
    image_type: str | None = None                              # e.g. "M", "P" (magnitude / phase)


@dataclass
class Stack:
    """One scrollable stack: ``ids`` in reading order, ``positions`` along the normal (mm or None)."""

    label: str
    ids: list[int]
    positions: list[float | None]
    spacing: float | None = None                               # typical step between slices, mm
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def plane_name(orientation: Sequence[float] | None) -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique' from the direction cosines (None -> 'unknown')."""
    normal = slice_normal(orientation)
    if normal is None:
        return "unknown"
    axis = max(range(3), key=lambda i: abs(normal[i]))
    if abs(normal[axis]) < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def slice_normal(orientation: Sequence[float] | None) -> tuple[float, float, float] | None:
    """Row cosines x column cosines: the direction slices are stacked along."""
    if orientation is None or len(orientation) != 6:
        return None
    r, c = orientation[:3], orientation[3:]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    norm = math.sqrt(sum(v * v for v in n))
    if not norm > 1e-6:
        return None
    return (n[0] / norm, n[1] / norm, n[2] / norm)


def _orientation_key(orientation: Sequence[float] | None) -> tuple | None:
    if orientation is None:
        return None
    return tuple(round(float(v), ORIENTATION_DECIMALS) + 0.0 for v in orientation)


def _along_normal(ref: SliceRef, normal) -> float | None:
    if ref.position is None or normal is None:
        return None
    return sum(p * n for p, n in zip(ref.position, normal))


def _has_repeats(refs: list[SliceRef], normal) -> bool:
    seen = Counter(_position_key(_along_normal(r, normal)) for r in refs)
    seen.pop(None, None)
    return any(n > 1 for n in seen.values())


def _position_key(z: float | None):
    return None if z is None else round(z / SAME_POSITION_MM)


def layout_series(refs: Iterable[SliceRef]) -> list[Stack]:
    """Split one series into stacks and order each; stacks are returned largest plane first.

    Split by orientation always; then, only where positions repeat within a plane, by echo, temporal
    position, image type and acquisition number (the first ones that vary); repeats that remain are
    split by their order of acquisition (instance number). Each stack is ordered by position along
    the slice normal, or by instance number when positions are absent.
    """
    refs = list(refs)
    planes: dict[tuple | None, list[SliceRef]] = defaultdict(list)
    for r in refs:
        planes[_orientation_key(r.orientation)].append(r)
    stacks: list[Stack] = []
    multi_plane = len(planes) > 1
    for key, members in planes.items():
        normal = slice_normal(members[0].orientation)
        plane = plane_name(members[0].orientation)
        groups = _split_repeats(members, normal)
        for suffix, group in groups:
            label = " ".join(x for x in ((plane if multi_plane or plane != "unknown" else ""), suffix) if x)
            stacks.append(_ordered_stack(label or "images", group, normal))
    stacks.sort(key=lambda s: (-len(s), s.label))
    return stacks


def _split_repeats(members: list[SliceRef], normal) -> list[tuple[str, list[SliceRef]]]:
    if not _has_repeats(members, normal):
        return [("", members)]
    varying = [k for k in REPEAT_KEYS if len({getattr(r, k) for r in members}) > 1]
    groups: dict[tuple, list[SliceRef]] = defaultdict(list)
    used: list[str] = []
    for k in varying:
        used.append(k)
        groups = defaultdict(list)
        for r in members:
            groups[tuple(getattr(r, u) for u in used)].append(r)
        if not any(_has_repeats(g, normal) for g in groups.values()):
            break
    if not used:
        groups = {(): members}
    out: list[tuple[str, list[SliceRef]]] = []
    for values, group in sorted(groups.items(), key=lambda kv: tuple(_sortable(v) for v in kv[0])):
        name = " ".join(_describe(k, v) for k, v in zip(used, values))
        if _has_repeats(group, normal):
            for i, part in enumerate(_by_occurrence(group, normal), start=1):
                out.append(((name + " " if name else "") + f"repeat {i}", part))
        else:
            out.append((name, group))
    return out


def _sortable(v):
    return (0, v) if isinstance(v, int) else (1, str(v))


def _image_kind(value) -> str:
    parts = {p.strip().upper() for p in str(value).split("\\")}
    if parts & {"P", "PHASE", "PHASE MAP"}:
        return "phase"
    if parts & {"M", "MAG", "MAGNITUDE"}:
        return "magnitude"
    return str(value).replace("\\", " ")


def _describe(key: str, value) -> str:
    if key == "image_type":
        return _image_kind(value)
    return {"echo": "echo {}", "temporal": "t{}", "image_type": "{}", "acquisition": "acq {}"}[key].format(value)


def _by_occurrence(group: list[SliceRef], normal) -> list[list[SliceRef]]:
    """The n-th image at each position (in instance-number order) goes to the n-th stack."""
    parts: list[list[SliceRef]] = []
    count: Counter = Counter()
    for r in sorted(group, key=lambda r: (r.instance_number is None, r.instance_number or 0, r.id)):
        k = _position_key(_along_normal(r, normal))
        i = count[k]
        count[k] += 1
        while len(parts) <= i:
            parts.append([])
        parts[i].append(r)
    return parts


def _ordered_stack(label: str, group: list[SliceRef], normal) -> Stack:
    zs = {r.id: _along_normal(r, normal) for r in group}
    if all(z is not None for z in zs.values()):
        ordered = sorted(group, key=lambda r: (zs[r.id], r.instance_number or 0, r.id))
    else:
        ordered = sorted(group, key=lambda r: (r.instance_number is None, r.instance_number or 0, r.id))
    positions = [zs[r.id] for r in ordered]
    spacing, problems = spacing_problems(positions)
    if any(z is None for z in positions):
        if any(z is not None for z in positions):   # projection images (X-rays) have none: nothing to report
            problems.insert(0, "some slices lack a position (Image Position Patient): ordered by instance number")
        problems += _instance_gaps([r.instance_number for r in ordered])
    return Stack(label, [r.id for r in ordered], positions, spacing, problems)


def spacing_problems(positions: Sequence[float | None]) -> tuple[float | None, list[str]]:
    """(typical step in mm, problems) for positions sorted along the normal.

    Reports duplicate positions, gaps that are a whole multiple of the step (missing slices) and
    steps that differ from the typical one by more than ``UNEVEN_TOLERANCE``.
    """
    zs = [z for z in positions if z is not None]
    if len(zs) < 2:
        return None, []
    steps = [b - a for a, b in zip(zs, zs[1:])]
    dups = sum(1 for s in steps if abs(s) < SAME_POSITION_MM)
    real = sorted(abs(s) for s in steps if abs(s) >= SAME_POSITION_MM)
    problems: list[str] = []
    if dups:
        problems.append(f"{dups} duplicate slice position{'s' if dups > 1 else ''}")
    if not real:
        return None, problems
    step = real[len(real) // 2]
    missing, uneven = 0, 0
    for s in real:
        ratio = s / step
        if abs(ratio - 1) <= UNEVEN_TOLERANCE:
            continue
        whole = round(ratio)
        if whole >= 2 and abs(ratio - whole) <= UNEVEN_TOLERANCE * whole:
            missing += whole - 1
        else:
            uneven += 1
    if missing:
        problems.append(f"{missing} missing slice{'s' if missing > 1 else ''} (gaps of {step:g} mm steps)")
    if uneven:
        problems.append(f"uneven spacing: {uneven} step{'s' if uneven > 1 else ''} differ from {step:g} mm")
    return step, problems


def _instance_gaps(numbers: Sequence[int | None]) -> list[str]:
    ns = sorted(n for n in numbers if n is not None)
    if len(ns) < 2:
        return []
    missing = sum(max(0, b - a - 1) for a, b in zip(ns, ns[1:]))
    return [f"{missing} missing instance number{'s' if missing > 1 else ''}"] if missing else []


def evenly_spaced(n: int, k: int) -> list[int]:
    """At most ``k`` indices of range(n), evenly spaced and including both ends (for pooling)."""
    if n <= 0 or k <= 0:
        return []
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})
