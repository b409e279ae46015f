"""One exception tree for aldesk, so the CLI and GUI can show any failure the same way.

Every message says what is wrong *and* what the user can do about it.
"""

from __future__ import annotations


class AldeskError(Exception):
    """Base of every error aldesk raises on purpose."""


class InvalidScanError(AldeskError):
    """A file cannot become a scan.

    ``kind`` is ``"skipped"`` when the file is deliberately not imported (not an image,
    non-image DICOM, over the pixel limit, unsupported syntax) and ``"failed"`` when it looked
    importable but could not be read (truncated, corrupt, unreadable).  ``code`` is a short
    stable token (``"no-pixel-data"``, ``"truncated"``, ...) for reports and tests.
    """

    def __init__(self, path: str, reason: str, *, kind: str = "failed", code: str = "unreadable"):
        if kind not in ("skipped", "failed"):
            raise ValueError(f"kind == {kind!r}, must be 'skipped' or 'failed'")
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        self.code = code
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # crosses process boundaries (import workers): rebuild with every field, not just the message
        return (_rebuild_invalid_scan_error, (self.path, self.reason, self.kind, self.code))


class ProjectError(AldeskError):
    """A project cannot be created, opened or changed as asked."""


class ProjectVersionError(ProjectError):
    """The project was written by a newer aldesk than this one."""


class NotAProjectError(ProjectError):
    """The path holds no aldesk project."""


class ProjectBusyError(ProjectError):
    """Another process holds the project; try again when it is done."""


class ProjectDamagedError(ProjectError):
    """The database is damaged or lost committed writes; the message names the way out (restore, doctor)."""


class FeatureError(AldeskError):
    """A feature extractor cannot be built or cannot turn these previews into vectors."""


class UnknownExtractorError(FeatureError):
    """No extractor is registered under the requested name."""


class ExtractorNotFittedError(FeatureError):
    """A learned extractor was asked to transform before it was fitted or given a state."""


class LearningError(AldeskError):
    """The model or a query strategy cannot run on the data as it is."""


class NotEnoughLabelsError(LearningError):
    """Training needs at least one label per class."""


class InputFileError(AldeskError):
    """A user-supplied file (CSV, answer key, package) is malformed; the message names the line."""


class CancelledError(AldeskError):
    """Work stopped because the user asked; everything finished so far is kept."""


def _rebuild_invalid_scan_error(path: str, reason: str, kind: str, code: str) -> InvalidScanError:
    return InvalidScanError(path, reason, kind=kind, code=code)
