"""ARCHITECTURE rule 1: the core never imports Qt. Import every module outside dubstudio.gui in a
fresh interpreter whose import system refuses Qt and Qt-based packages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCKED = ["PySide6", "PyQt5", "PyQt6", "pyqtgraph", "superqt", "shiboken6", "qtpy"]

SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    BLOCKED = set(json.loads(sys.argv[1]))

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the DubStudio core must not import Qt")
            return None

    sys.meta_path.insert(0, Blocker())

    # The blocker works (otherwise this test could never fail).
    try:
        import PySide6  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the Qt blocker did not block PySide6")

    import dubstudio

    imported, failed = [], {}

    def walk(path, prefix):
        # Not pkgutil.walk_packages: it imports every package it meets, dubstudio.gui included.
        for info in pkgutil.iter_modules(path, prefix):
            name = info.name
            if name == "dubstudio.gui" or name.startswith("dubstudio.gui."):
                continue
            try:
                mod = importlib.import_module(name)
            except BaseException as e:
                failed[name] = f"{type(e).__name__}: {e}"
                continue
            imported.append(name)
            if info.ispkg:
                walk(mod.__path__, name + ".")

    walk(dubstudio.__path__, "dubstudio.")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({"imported": imported, "failed": failed, "leaked": leaked,
                      "gui_loaded": "dubstudio.gui" in sys.modules}))
    """
)


def test_core_imports_without_qt():
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(BLOCKED)],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert not out["failed"], "core modules that fail to import with Qt blocked:\n" + "\n".join(
        f"  {k}: {v}" for k, v in out["failed"].items()
    )
    assert not out["leaked"], out["leaked"]
    assert not out["gui_loaded"], "some core module imports dubstudio.gui"
    # The walk really covered the core (a broken walk would pass vacuously).
    for name in ("dubstudio.cli", "dubstudio.core.jobs", "dubstudio.project.store", "dubstudio.io.video",
                 "dubstudio.tracking.track", "dubstudio.tracking.overlay"):
        assert name in out["imported"], name
