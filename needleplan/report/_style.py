"""Fonts, colours and paragraph styles of the plan report (reportlab only)."""

from __future__ import annotations

import functools
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

__all__ = ["fonts", "STYLES", "INK", "MUTED", "RULE", "ACCENT", "PASS", "WARN", "FAIL",
           "status_colour", "esc"]

INK = colors.HexColor("#1a1f26")
MUTED = colors.HexColor("#5b6470")
RULE = colors.HexColor("#c9ced6")
SHADE = colors.HexColor("#eef1f5")
ACCENT = colors.HexColor("#1f4e79")
PASS = colors.HexColor("#1b7a3a")
WARN = colors.HexColor("#b06a00")
FAIL = colors.HexColor("#b3261e")
PASS_BG = colors.HexColor("#e3f2e7")
WARN_BG = colors.HexColor("#fdf0d8")
FAIL_BG = colors.HexColor("#f9dedc")

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)


def _font_file(name: str) -> Path | None:
    for d in _FONT_DIRS:
        if (d / name).is_file():
            return d / name
    try:  # matplotlib (a dependency) ships DejaVu Sans: works on any desktop
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
        return p if p.is_file() else None
    except ImportError:  # pragma: no cover
        return None


@functools.lru_cache(maxsize=1)
def fonts() -> tuple[str, str, str]:
    """Register DejaVu Sans (regular, bold, mono) once; return their reportlab names.

    Falls back to the Latin-1 base-14 fonts when no DejaVu file is found; text outside
    Latin-1 then prints as boxes but the report is still written.
    """
    wanted = (("NP-Sans", "DejaVuSans.ttf"), ("NP-Sans-Bold", "DejaVuSans-Bold.ttf"),
              ("NP-Mono", "DejaVuSansMono.ttf"))
    names = []
    for reg_name, file_name in wanted:
        path = _font_file(file_name)
        if path is None:
            return "Helvetica", "Helvetica-Bold", "Courier"
        if reg_name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(reg_name, str(path)))
        names.append(reg_name)
    from reportlab.lib.fonts import addMapping

    addMapping(names[0], 0, 0, names[0])
    addMapping(names[0], 1, 0, names[1])
    addMapping(names[0], 0, 1, names[0])
    addMapping(names[0], 1, 1, names[1])
    return names[0], names[1], names[2]


class _Styles(dict):
    def __missing__(self, key):
        self.update(_make_styles())
        return dict.__getitem__(self, key)


def _make_styles() -> dict[str, ParagraphStyle]:
    regular, bold, mono = fonts()
    base = ParagraphStyle("np-body", fontName=regular, fontSize=8.2, leading=10.4,
                          textColor=INK, alignment=TA_LEFT)
    return {
        "body": base,
        "small": ParagraphStyle("np-small", parent=base, fontSize=7.0, leading=8.8),
        "muted": ParagraphStyle("np-muted", parent=base, fontSize=7.0, leading=8.8, textColor=MUTED),
        "cell": ParagraphStyle("np-cell", parent=base, fontSize=7.6, leading=9.4),
        "cellb": ParagraphStyle("np-cellb", parent=base, fontName=bold, fontSize=7.6, leading=9.4),
        "head": ParagraphStyle("np-head", parent=base, fontName=bold, fontSize=7.2, leading=9.0,
                               textColor=colors.white),
        "h1": ParagraphStyle("np-h1", parent=base, fontName=bold, fontSize=15, leading=18,
                             textColor=ACCENT, spaceAfter=2),
        "h2": ParagraphStyle("np-h2", parent=base, fontName=bold, fontSize=10.5, leading=13,
                             textColor=ACCENT, spaceBefore=6, spaceAfter=3),
        "h3": ParagraphStyle("np-h3", parent=base, fontName=bold, fontSize=8.6, leading=11,
                             textColor=INK, spaceBefore=4, spaceAfter=2),
        "caption": ParagraphStyle("np-caption", parent=base, fontSize=6.8, leading=8.4,
                                  textColor=MUTED),
        "mono": ParagraphStyle("np-mono", parent=base, fontName=mono, fontSize=7.4, leading=9.2),
        "box": ParagraphStyle("np-box", parent=base, fontSize=7.6, leading=9.8, textColor=INK),
    }


STYLES: dict[str, ParagraphStyle] = _Styles()


def status_colour(status: str) -> tuple[colors.Color, colors.Color]:
    """(text, background) colours for ``ok``/``pass``, ``warning``/``warn``, ``unsafe``/``fail``."""
    s = (status or "").lower()
    if s in ("ok", "pass", "passed"):
        return PASS, PASS_BG
    if s.startswith("warn"):
        return WARN, WARN_BG
    if s in ("unsafe", "fail", "failed", "not advised"):
        return FAIL, FAIL_BG
    return MUTED, SHADE


def esc(text: object) -> str:
    """Escape text for a reportlab Paragraph (``&``, ``<``, ``>``)."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
