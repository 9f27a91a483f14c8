"""``dubstudio gui [PROJECT]``: start the editor window.

``PROJECT`` may be a project folder or a video (its project is created or reopened next to it,
as the CLI does). Without a display the function says so and returns 2 instead of crashing in
Qt's platform plugin.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def display_problem() -> str | None:
    """Why no window can open here, or None when one can."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "wayland", "xcb"):
        return None  # chosen explicitly (tests, screenshots, a specific backend)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (
            "no display found (DISPLAY and WAYLAND_DISPLAY are not set); run the editor on a desktop, "
            "through `xvfb-run -a dubstudio gui`, or use the headless pipeline: `dubstudio run`."
        )
    return None


def main(project: str | None = None) -> int:
    problem = display_problem()
    if problem:
        print(f"dubstudio: {problem}", file=sys.stderr)
        return 2
    if project is not None and not Path(project).expanduser().exists():
        print(f"dubstudio: {project} does not exist; give a project folder or a video file.", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("DUBSTUDIO_LOG", "WARNING").upper(), format="%(levelname)s %(name)s: %(message)s")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from dubstudio import __version__
    from dubstudio.gui.main_window import MainWindow
    from dubstudio.gui.theme import apply_dark_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("DubStudio")
    app.setApplicationName("DubStudio")
    app.setApplicationVersion(__version__)
    apply_dark_theme(app)
    window = MainWindow()
    window.show()
    if project is not None:
        QTimer.singleShot(0, lambda: window.open_path(project))
    app.aboutToQuit.connect(window.shutdown)
    return int(app.exec())
