"""The desktop application (PyQt6 + VTK).  Only this package imports Qt or VTK.

Use :func:`run_gui`; the widgets live in submodules imported lazily so that
``import needleplan.ui`` itself stays cheap and works without a display.
"""

from __future__ import annotations

import os
import sys

__all__ = ["run_gui", "display_problem"]


def display_problem() -> str | None:
    """A one-line reason why no window can be shown here, or None when one can.

    Qt aborts the whole process when it finds no display, so check first.
    """
    if os.environ.get("QT_QPA_PLATFORM"):
        return None
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return ("no display found (DISPLAY and WAYLAND_DISPLAY are unset): run it on a desktop, "
                    "under xvfb-run, or set QT_QPA_PLATFORM=offscreen")
    return None


def _missing_toolkit() -> str | None:
    try:
        import PyQt6.QtWidgets  # noqa: F401
    except ImportError as exc:
        return f"PyQt6 is not installed ({exc}); install the GUI extra: pip install 'needleplan[gui]'"
    return None


def run_gui(path=None, plan_path=None, *, series_uid: str | None = None, auto_plan: bool = False,
            labels=None) -> int:
    """Open the main window (optionally a study and a plan) and run until it closes.

    ``labels``: a TotalSegmentator / VerSe vertebra label map used instead of segmenting.

    Returns the exit status: 0 after a normal close, 2 when no window can be shown (the
    reason is printed as one line on stderr).
    """
    problem = display_problem() or _missing_toolkit()
    if problem:
        print(f"needleplan gui: error: {problem}", file=sys.stderr)
        return 2
    from needleplan.ui.app import main_window_app

    return main_window_app(path, plan_path, series_uid=series_uid, auto_plan=auto_plan, labels=labels)
