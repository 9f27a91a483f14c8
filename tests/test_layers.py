"""The layer order holds (docs/architecture.md): import-linter checks the contracts written in
pyproject.toml, so a new upward import (core importing tracking, rendering importing training,
the editor calling the CLI, Qt below the editor) fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_import_contracts_are_kept():
    r = _lint(ROOT / "pyproject.toml")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_a_broken_contract_is_caught(tmp_path):
    """The check can fail: the same layers upside down are broken by today's imports."""
    cfg = tmp_path / "upside_down.toml"
    cfg.write_text(
        '[tool.importlinter]\nroot_package = "dubstudio"\n\n'
        '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
        'layers = ["dubstudio.core", "dubstudio.shot"]\n',
        encoding="utf-8",
    )
    r = _lint(cfg)
    assert r.returncode == 1 and "BROKEN" in r.stdout.upper(), r.stdout[-2000:]
    assert "dubstudio.shot" in r.stdout and "dubstudio.core" in r.stdout
