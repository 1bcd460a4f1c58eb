"""QApplication set-up for :func:`needleplan.ui.run_gui`."""

from __future__ import annotations

import sys
from pathlib import Path

import PyQt6  # noqa: F401  (before any vtkmodules.qt import)
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from needleplan.errors import InputError
from needleplan.ui.theme import apply_theme

__all__ = ["get_app", "main_window_app"]


def get_app() -> QApplication:
    """The running QApplication, or a new one with the workstation theme."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("needleplan")
        app.setOrganizationName("needleplan")
    if not getattr(app, "_needleplan_themed", False):
        apply_theme(app)
        app._needleplan_themed = True
    return app


def _excepthook(exc_type, exc, tb):
    """Log an unexpected error in a Qt slot instead of letting PyQt abort the application."""
    import logging
    import traceback

    logging.getLogger("needleplan").error("internal error (please report it):\n%s",
                                          "".join(traceback.format_exception(exc_type, exc, tb)))
    app = QApplication.instance()
    for w in (app.topLevelWidgets() if app is not None else []):
        if hasattr(w, "show_status"):
            w.show_status(f"Internal error: {exc_type.__name__}: {exc} (details on the console)")


def main_window_app(path=None, plan_path=None, *, series_uid=None, auto_plan=False, labels=None) -> int:
    if path is not None and not Path(path).exists():
        raise InputError(f"'{path}' does not exist", path=path)
    if labels is not None and not Path(labels).exists():
        raise InputError(f"label file '{labels}' does not exist", path=labels)
    if labels is not None and path is None:
        raise InputError("--labels needs the CT it belongs to: needleplan gui CT --labels FILE")
    if plan_path is not None and not Path(plan_path).is_file():
        raise InputError(f"plan file '{plan_path}' does not exist", path=plan_path)
    app = get_app()
    sys.excepthook = _excepthook
    from needleplan.ui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if path is not None:
        QTimer.singleShot(0, lambda: win.open_study(path, series_uid=series_uid, plan_path=plan_path,
                                                    auto_plan=auto_plan, labels=labels))
    elif plan_path is not None:
        QTimer.singleShot(0, lambda: win.open_plan(plan_path))
    return int(app.exec())
