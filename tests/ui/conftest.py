"""GUI tests: PyQt6 (+ VTK for the 3-D view), headless under Xvfb or Qt's offscreen platform."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no X server: Qt widgets still draw
os.environ.setdefault("NEEDLEPLAN_NO_CONFIRM", "1")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/ui/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def themed_app(qapp):
    from needleplan.ui.theme import apply_theme

    apply_theme(qapp)
    return qapp
