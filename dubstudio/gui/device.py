"""Which torch device jobs will use, found without stalling the GUI.

Importing torch holds the GIL for 0.4-0.6 s while its extension initialises, which would freeze
the window if done in a thread of this process. So unless torch is already imported, a short
child process answers (``cuda`` when ``torch.cuda.is_available()``, else ``cpu``).
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QObject, QProcess, Signal

PROBE = (
    "import json, torch\n"
    "cuda = torch.cuda.is_available()\n"
    "print(json.dumps({'device': 'cuda' if cuda else 'cpu', 'torch': torch.__version__,\n"
    "                  'name': torch.cuda.get_device_name(0) if cuda else ''}))\n"
)


def describe(info: dict) -> str:
    if not info:
        return "Device: unknown"
    if "error" in info:
        return f"Device: none ({info['error']})"
    name = f" ({info['name']})" if info.get("name") else ""
    return f"Device: {info['device']}{name} · torch {info.get('torch', '?')}"


class DeviceProbe(QObject):
    """``found(dict)`` with keys device, torch, name (or error) once known."""

    found = Signal(dict)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.info: dict = {}
        self._proc: QProcess | None = None

    def start(self) -> None:
        torch = sys.modules.get("torch")
        if torch is not None:
            cuda = bool(torch.cuda.is_available())
            self._done({"device": "cuda" if cuda else "cpu", "torch": torch.__version__,
                        "name": torch.cuda.get_device_name(0) if cuda else ""})
            return
        self._proc = QProcess(self)
        self._proc.finished.connect(self._on_finished)
        self._proc.errorOccurred.connect(lambda _e: self._done({"error": "could not run the device check"}))
        self._proc.start(sys.executable, ["-c", PROBE])

    def stop(self) -> None:
        if self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning:
            self._proc.kill()
            self._proc.waitForFinished(2000)

    def _on_finished(self, code: int, _status) -> None:
        out = bytes(self._proc.readAllStandardOutput()).decode(errors="replace").strip().splitlines()
        try:
            info = json.loads(out[-1]) if code == 0 and out else {"error": "torch is not installed"}
        except ValueError:
            info = {"error": "unexpected answer from the device check"}
        self._done(info)

    def _done(self, info: dict) -> None:
        if self.info:
            return
        self.info = info
        self.found.emit(info)
