"""Exception classes shared by the whole package.

Every error a user can cause by bad input is a :class:`NeedlePlanError`; the CLI turns
it into a one-line message and exit status 2, the GUI into a message box.  Messages
name the file or parameter, the problem and, where there is one, the fix.
"""

from __future__ import annotations

__all__ = [
    "NeedlePlanError",
    "InputError",
    "DicomSeriesError",
    "GeometryError",
    "SegmentationError",
    "PlanningError",
    "PlanFileError",
    "OutputError",
]


class NeedlePlanError(Exception):
    """Base class of every error needleplan raises on purpose."""


class InputError(NeedlePlanError, ValueError):
    """An input file or folder cannot be used (missing, empty, unknown format).

    Parameters
    ----------
    message : str
        One line naming the path and the problem.
    path : str or None
        The offending file or folder.
    """

    def __init__(self, message: str, *, path: object = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class DicomSeriesError(InputError):
    """A DICOM file or series cannot be turned into one CT volume."""

    def __init__(self, message: str, *, path: object = None, series_uid: str | None = None):
        super().__init__(message, path=path)
        self.series_uid = series_uid


class GeometryError(InputError):
    """Image geometry is unusable: non-orthogonal axes, uneven or zero spacing, tilt."""

    def __init__(self, message: str, *, path: object = None, series_uid: str | None = None):
        super().__init__(message, path=path)
        self.series_uid = series_uid


class SegmentationError(NeedlePlanError, RuntimeError):
    """The input is valid but no spine (or not enough of it) was found."""


class PlanningError(NeedlePlanError, RuntimeError):
    """The input is valid but no safe trajectory exists (e.g. the corridor is blocked)."""


class PlanFileError(InputError):
    """A plan file is corrupt, of a foreign schema or of an unsupported version."""


class OutputError(NeedlePlanError, OSError):
    """An output file or folder cannot be written."""

    def __init__(self, message: str, *, path: object = None):
        super().__init__(message)
        self.path = None if path is None else str(path)
