"""Labelling units: file each imported DICOM under its series and unit, lay series out, describe a unit.

In a 'series' or 'study' project, the importer hands every DICOM file with a Series Instance UID to
:func:`file_slice` instead of making it a scan of its own; :func:`finalise_units` then splits each
changed series into stacks and orders them (``aldesk.imaging.series``) and points the unit at a
representative slice (its queue thumbnail). Both are idempotent: an import stopped half-way is
finished by the next one. PNG/JPEG/TIFF and DICOM without UIDs stay single-image units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from aldesk.app.callbacks import Progress, ShouldStop, never_stop, no_progress
from aldesk.errors import InvalidScanError
from aldesk.imaging.series import SliceRef, layout_series
from aldesk.store import Project

PREVIEW_SIZE = 128


def unit_uids(kind: str, info) -> tuple[str, str] | None:
    """(unit uid, series key) for a DICOM file in a series/study project, or None: it stays one image.

    A multi-frame file is a series of its own (its SOP Instance UID is the series key); in a series
    project it is also its own unit.
    """
    if kind == "image" or info.format != "dicom" or not info.series_uid or not info.sop_instance_uid:
        return None
    series_key = info.sop_instance_uid if info.frames > 1 else info.series_uid
    if kind == "study" and info.study_uid:
        return info.study_uid, series_key
    return series_key, series_key


def file_slice(project: Project, kind: str, info, unit_values: dict, slice_values: dict) -> tuple[int, bool] | None:
    """Store one file as a slice of its unit (inside the importer's transaction). None: not a series file."""
    uids = unit_uids(kind, info)
    if uids is None:
        return None
    unit_uid, series_key = uids
    unit = dict(unit_values, uid=unit_uid, pixel_hash=f"unit:{unit_uid}")
    if kind == "study" and unit_uid == info.study_uid:
        unit["series_uid"] = None
    series = {"uid": series_key, "study_uid": info.study_uid, "number": info.series_number,
              "description": info.series_description, "modality": info.modality}
    values = dict(slice_values, uid=info.sop_instance_uid, position=info.image_position,
                  orientation=info.image_orientation, instance_number=info.instance_number,
                  echo=info.echo_number, temporal=info.temporal_position, acquisition=info.acquisition_number,
                  image_type=info.image_type, frames=info.frames, rows=info.rows, columns=info.columns)
    return project.units.add_slice(unit, series, values, info.preview)


def _refs(slices) -> list[SliceRef]:
    return [SliceRef(s.id, s.position, s.orientation, s.instance_number, s.echo, s.temporal, s.acquisition,
                     s.image_type) for s in slices]


def finalise_units(project: Project, *, progress: Progress = no_progress,
                   should_stop: ShouldStop = never_stop) -> list[dict]:
    """Lay out every series changed since its last layout. Returns, for those with missing slices,
    duplicate positions or uneven spacing, {"scan_id", "series", "problems"} (series = "S3 Ax fMRI")."""
    store = project.units
    dirty = store.dirty_series()
    units: set[int] = set()
    problems: list[dict] = []
    for i, series_id in enumerate(dirty):
        if should_stop():
            break
        slices = store.slices(series_id)
        stacks = layout_series(_refs(slices))
        by_id = {s.id: s for s in slices}
        placement, described = [], []
        for k, stack in enumerate(stacks):
            placement += [(sid, k, j, z) for j, (sid, z) in enumerate(zip(stack.ids, stack.positions))]
            described.append({"label": stack.label, "n": sum(by_id[sid].frames for sid in stack.ids),
                              "spacing": stack.spacing, "problems": stack.problems})
        with project.transaction():
            store.save_layout(series_id, described, placement)
        row = store.series(series_ids=[series_id])[0]
        units.add(row.scan_id)
        found = [f"{d['label']}: {q}" if len(described) > 1 else q for d in described for q in d["problems"]]
        if found:
            title = f"S{row.number if row.number is not None else '?'} {row.description or ''}".strip()
            problems.append({"scan_id": row.scan_id, "series": title, "problems": found})
        progress(i + 1, len(dirty), "arranging series")
    for scan_id in sorted(units):
        point_unit(project, scan_id)
    return problems


def point_unit(project: Project, scan_id: int) -> None:
    """Make the middle slice of the unit's largest stack its thumbnail and default image."""
    from aldesk.imaging import read_scan_info

    series = project.units.series(scan_id)
    if not series:
        return
    main = max(series, key=lambda s: (s.layout[0]["n"] if s.layout else 0, -(s.number or 0)))
    slices = [s for s in project.units.slices(main.id) if s.stack == 0]
    if not slices:
        return
    middle = slices[len(slices) // 2]
    try:
        info = read_scan_info(middle.path, preview_size=PREVIEW_SIZE)
        preview, windows = info.preview, json.dumps([[w.center, w.width, w.name] for w in info.windows])
    except InvalidScanError:
        preview, windows = None, "[]"   # the file vanished since import: keep the old thumbnail
    root_id, relpath = _root_and_relpath(project, middle.path)
    total = sum(s.images for s in series)
    with project.transaction():
        project.units.update_unit(scan_id, root_id=root_id, relpath=relpath, rows=middle.rows, columns=middle.columns,
                                  frames=total, windows=windows, preview=preview)


def _root_and_relpath(project: Project, path: Path) -> tuple[int, str]:
    for rid, root in project.scans.roots().items():
        try:
            return rid, path.relative_to(root).as_posix()
        except ValueError:
            continue
    raise ValueError(f"{path} is under no imported folder")


# --------------------------------------------------------------------------- describing a unit
@dataclass
class StackView:
    """One scrollable stack: images as (path, frame) in reading order, positions along the normal."""

    label: str
    images: list[tuple[str, int]]
    positions: list[float | None]
    spacing: float | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class SeriesView:
    uid: str
    number: int | None
    description: str
    modality: str | None
    stacks: list[StackView]

    @property
    def title(self) -> str:
        head = f"S{self.number}" if self.number is not None else "S?"
        return f"{head} {self.description}".strip()

    @property
    def problems(self) -> list[str]:
        return [f"{s.label}: {p}" if len(self.stacks) > 1 else p for s in self.stacks for p in s.problems]


@dataclass
class UnitView:
    """What the viewer needs to read a unit: its series, each split into stacks (plain data)."""

    scan_id: int
    kind: str
    series: list[SeriesView]

    @property
    def images(self) -> int:
        return sum(len(st.images) for s in self.series for st in s.stacks)


def unit_view(project: Project, scan_id: int) -> UnitView | None:
    """The series and stacks of a unit, or None when the scan is a single image."""
    scan_id = int(scan_id)
    rows = project.units.series(scan_id)
    if not rows:
        return None
    out = []
    for row in rows:
        slices = project.units.slices(row.id)
        stacks: list[StackView] = []
        for k, meta in enumerate(row.layout or [{"label": "images", "spacing": None, "problems": []}]):
            members = [s for s in slices if s.stack == k]
            images, positions = [], []
            for s in members:
                for f in range(s.frames):
                    images.append((str(s.path), f))
                    positions.append(s.z if s.frames == 1 else None)
            if images:
                stacks.append(StackView(meta["label"], images, positions, meta.get("spacing"), list(meta.get("problems", []))))
        out.append(SeriesView(row.uid, row.number, row.description or "", row.modality, stacks))
    return UnitView(scan_id, project.units.kind(), out)

