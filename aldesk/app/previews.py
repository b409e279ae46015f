"""Previews a project lacks, made again from the scans' files.

A restore puts every preview back from PROJECT/backups/previews.sqlite; one it cannot find there (the
side store was deleted, or a backup file was copied alone) is made again here from the scan's file when
the file is still where the project says and holds the same pixels (same pixel hash), exactly as import
made it. Scans whose file is gone keep no preview: the viewer says so. Never re-imports anything else.
"""

from __future__ import annotations

from aldesk.app.callbacks import Progress, ShouldStop, check_stop, never_stop, no_progress
from aldesk.errors import InvalidScanError
from aldesk.store import Project

PREVIEW_SIZE = 128   # as import makes them (aldesk.app.importer)
BATCH = 200          # previews per transaction


def rebuild_missing_previews(project: Project, *, progress: Progress = no_progress,
                             should_stop: ShouldStop = never_stop) -> tuple[int, int]:
    """Make the previews of scans that have none from their files. Returns (rebuilt, still missing)."""
    from aldesk.imaging import read_scan_info

    missing = project.scans.without_preview()
    if not missing:
        return 0, 0
    if project.units.kind() != "image":
        return _rebuild_units(project, [sid for sid, _ in missing], progress, should_stop)
    rebuilt, batch = 0, []
    for done, (scan_id, pixel_hash) in enumerate(missing, 1):
        check_stop(should_stop, "making previews")
        try:
            info = read_scan_info(project.scans.get(scan_id).path, preview_size=PREVIEW_SIZE)
        except InvalidScanError:
            info = None  # the file is gone or unreadable
        if info is not None and info.pixel_hash == pixel_hash:  # the same scan, not another file at that path
            batch.append((scan_id, info.preview))
        if len(batch) >= BATCH or done == len(missing):
            rebuilt += _put(project, batch)
        progress(done, len(missing), "making missing previews from the scans' files")
    return rebuilt, len(missing) - rebuilt


def _put(project: Project, batch: list) -> int:
    if batch:
        with project.transaction():
            for scan_id, preview in batch:
                project.scans.put_preview(scan_id, preview)
    n = len(batch)
    batch.clear()
    return n


def _rebuild_units(project: Project, scan_ids: list[int], progress: Progress, should_stop: ShouldStop) -> tuple[int, int]:
    """A series' or study's preview is its middle slice, as import makes it."""
    from aldesk.app.units import point_unit

    for done, scan_id in enumerate(scan_ids, 1):
        check_stop(should_stop, "making previews")
        point_unit(project, scan_id)
        progress(done, len(scan_ids), "making missing previews from the scans' files")
    still = len(project.scans.without_preview())
    return len(scan_ids) - still, still
