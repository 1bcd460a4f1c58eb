"""The warning category of needleplan's readers and the strict/tolerant defect policy."""

from __future__ import annotations

import warnings

from needleplan.errors import DicomSeriesError

__all__ = ["NeedlePlanWarning", "DefectLog"]


class NeedlePlanWarning(UserWarning):
    """An input defect that needleplan repaired or worked around (e.g. a dropped localizer).

    Every such warning is also recorded in ``Volume.meta["warnings"]``; pass
    ``strict=True`` to the loader to turn these defects into errors instead.
    """


class DefectLog:
    """Collect fixable defects: warn (and remember) or, when strict, raise.

    Parameters
    ----------
    strict : bool
        Raise ``error_cls(message)`` instead of warning.
    path : str
        Path named in raised errors.
    series_uid : str, optional
    quiet : bool
        Only record the messages (no ``warnings.warn``), e.g. for ``needleplan info``.
    """

    def __init__(self, *, strict: bool, path: str, series_uid: str | None = None,
                 quiet: bool = False):
        self.strict = strict
        self.quiet = quiet
        self.path = path
        self.series_uid = series_uid
        self.messages: list[str] = []

    def fixable(self, message: str, *, error_cls=DicomSeriesError, fix: str = "") -> None:
        """Report a defect that was repaired; ``message`` must name the path already."""
        if self.strict:
            hint = f" ({fix})" if fix else " (strict mode; load without strict to repair it)"
            raise error_cls(message + hint, path=self.path, series_uid=self.series_uid)
        self.messages.append(message)
        if not self.quiet:
            warnings.warn(message, NeedlePlanWarning, stacklevel=3)
