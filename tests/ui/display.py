"""Whether an X server is there for VTK (Qt's offscreen platform draws widgets but not VTK)."""

import os


def has_real_display() -> bool:
    return bool(os.environ.get("DISPLAY")) and os.environ.get("QT_QPA_PLATFORM", "") not in ("offscreen", "minimal")
