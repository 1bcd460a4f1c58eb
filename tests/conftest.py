"""Shared fixtures: where the real CT scans are, and how tests that need them behave.

Real scans live outside the repository in ``../shared/data`` (or ``$NEEDLEPLAN_SHARED/data``).
A test that needs them uses the ``shared_data`` fixture: it skips when they are missing on a
developer machine, and **fails** when ``CI`` is set, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("NEEDLEPLAN_SHARED")
    if env:
        p = Path(env)
        return p / "data" if (p / "data").is_dir() else p
    return REPO.parent / "shared" / "data"


def require_shared(*parts: str) -> Path:
    """Path to a file or folder under the shared data; skip (or fail under CI) if missing."""
    p = shared_data_dir().joinpath(*parts)
    if not p.exists():
        msg = f"shared test data missing: {p} (set NEEDLEPLAN_SHARED)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared()
