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
"""


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
    app.setStyleSheet(_QSS.format(**COLORS))
