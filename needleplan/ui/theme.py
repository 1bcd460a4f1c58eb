"""Dark workstation theme (colours, palette, style sheet) shared by every widget."""

from __future__ import annotations

from PyQt6.QtGui import QColor, QFont, QPalette

__all__ = ["COLORS", "STATUS_COLORS", "apply_theme", "status_color", "mono_font"]

COLORS = {
    "bg": "#15171a",
    "panel": "#1f2226",
    "panel2": "#272b30",
    "border": "#353a41",
    "text": "#d7dbe0",
    "muted": "#8b939c",
    "accent": "#4aa3ff",
    "crosshair": "#e8c547",
    "selected": "#ffffff",
}

STATUS_COLORS = {
    "ok": "#3fb950",
    "warning": "#e3a21a",
    "unsafe": "#f85149",
    None: "#8b939c",
}


def status_color(status: str | None) -> QColor:
    return QColor(STATUS_COLORS.get(status, STATUS_COLORS[None]))


def mono_font(point_size: int = 9) -> QFont:
    f = QFont("DejaVu Sans Mono")
    f.setStyleHint(QFont.StyleHint.Monospace)
    f.setPointSize(point_size)
    return f


_QSS = """
QWidget {{ background: {bg}; color: {text}; font-size: 9pt; }}
QMainWindow::separator {{ background: {border}; width: 2px; height: 2px; }}
QDockWidget {{ titlebar-close-icon: none; }}
QDockWidget::title {{ background: {panel2}; padding: 4px 6px; font-weight: bold; }}
QToolBar {{ background: {panel}; border: 0; border-bottom: 1px solid {border}; spacing: 3px; padding: 2px; }}
QToolButton {{ background: transparent; border: 1px solid transparent; border-radius: 3px; padding: 3px 7px; }}
QToolButton:hover {{ background: {panel2}; border-color: {border}; }}
QToolButton:checked {{ background: #2d3b4d; border-color: {accent}; }}
QToolButton:disabled {{ color: #5a6068; }}
QPushButton {{ background: {panel2}; border: 1px solid {border}; border-radius: 3px; padding: 4px 10px; }}
QPushButton:hover {{ border-color: {accent}; }}
QPushButton:disabled {{ color: #5a6068; }}
QComboBox, QLineEdit, QSpinBox, QDoubleSpinBox {{ background: {panel2}; border: 1px solid {border};
    border-radius: 3px; padding: 2px 6px; }}
QComboBox QAbstractItemView {{ background: {panel2}; selection-background-color: #2d3b4d; }}
QTreeWidget, QTableWidget, QListWidget {{ background: {panel}; alternate-background-color: #23272c;
    border: 1px solid {border}; selection-background-color: #2d4a6b; }}
QHeaderView::section {{ background: {panel2}; color: {muted}; border: 0; border-right: 1px solid {border};
    padding: 3px 5px; }}
QStatusBar {{ background: {panel}; color: {muted}; border-top: 1px solid {border}; }}
QStatusBar QLabel {{ background: transparent; }}
QMenuBar {{ background: {panel}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: #2d4a6b; }}
QMenu {{ background: {panel2}; border: 1px solid {border}; }}
QLabel#sectionTitle {{ color: {muted}; font-weight: bold; text-transform: uppercase; padding-top: 6px; }}
QProgressBar {{ background: {panel2}; border: 1px solid {border}; border-radius: 3px; text-align: center; }}
QProgressBar::chunk {{ background: {accent}; }}
QSplitter::handle {{ background: {border}; }}
QTabWidget::pane {{ border: 1px solid {border}; }}
QTabBar::tab {{ background: {panel}; padding: 4px 10px; border: 1px solid {border}; }}
QTabBar::tab:selected {{ background: {panel2}; color: white; }}
QScrollBar:vertical {{ background: {panel}; width: 10px; }}
QScrollBar::handle:vertical {{ background: {border}; border-radius: 4px; min-height: 20px; }}
QScrollBar:horizontal {{ background: {panel}; height: 10px; }}
QScrollBar::handle:horizontal {{ background: {border}; border-radius: 4px; min-width: 20px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; border: 0; background: none; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}
QAbstractScrollArea::corner {{ background: {panel}; border: 0; }}
QCheckBox {{ spacing: 6px; background: transparent; }}
QCheckBox::indicator, QGroupBox::indicator {{ width: 13px; height: 13px; border: 1px solid #6b737c;
    border-radius: 2px; background: {panel2}; }}
QCheckBox::indicator:hover {{ border-color: {accent}; }}
QCheckBox::indicator:checked {{ background: {accent}; border-color: {accent}; image: url({check_svg}); }}
QCheckBox::indicator:disabled {{ background: {bg}; border-color: {border}; }}
QCheckBox:disabled {{ color: #5a6068; }}
QGroupBox {{ border: 1px solid {border}; border-radius: 3px; margin-top: 8px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {muted}; }}
"""

_CHECK_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="13" height="13" viewBox="0 0 13 13">'
              '<path d="M2.5 6.8 L5.3 9.5 L10.5 3.5" fill="none" stroke="#0d1117" stroke-width="2"/></svg>')


def _check_svg_path() -> str:
    """A tick mark for checked boxes (style sheets take images from files only)."""
    import os
    import tempfile
    from pathlib import Path

    d = Path(tempfile.gettempdir()) / f"needleplan-ui-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    f = d / "check.svg"
    try:
        if not f.is_file() or f.read_text() != _CHECK_SVG:
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f".check-{os.getpid()}.svg"
            tmp.write_text(_CHECK_SVG)
            os.replace(tmp, f)
    except OSError:  # read-only temp: a filled box still reads as checked
        return ""
    return f.as_posix()


def apply_theme(app) -> None:
    """Fusion style with a dark palette and the workstation style sheet."""
    app.setStyle("Fusion")
    pal = QPalette()
    c = {k: QColor(v) for k, v in COLORS.items()}
    pal.setColor(QPalette.ColorRole.Window, c["bg"])
    pal.setColor(QPalette.ColorRole.WindowText, c["text"])
    pal.setColor(QPalette.ColorRole.Base, c["panel"])
    pal.setColor(QPalette.ColorRole.AlternateBase, c["panel2"])
    pal.setColor(QPalette.ColorRole.Text, c["text"])
    pal.setColor(QPalette.ColorRole.Button, c["panel2"])
    pal.setColor(QPalette.ColorRole.ButtonText, c["text"])
    pal.setColor(QPalette.ColorRole.Highlight, QColor("#2d4a6b"))
    pal.setColor(QPalette.ColorRole.HighlightedText, QColor("white"))
    pal.setColor(QPalette.ColorRole.ToolTipBase, c["panel2"])
    pal.setColor(QPalette.ColorRole.ToolTipText, c["text"])
    app.setPalette(pal)
    app.setStyleSheet(_QSS.format(**COLORS, check_svg=_check_svg_path()))
