"""The one place the command line opens the editor (``dubstudio``, ``dubstudio gui``)."""

from __future__ import annotations

import sys


def open_editor(path: str | None = None) -> int:
    from dubstudio.gui.app import main as gui_main

    return gui_main(path)


def open_editor_or_run(run) -> int:
    """``dubstudio`` with no arguments: the editor on the built-in sample; where no window can
    open (no display), say so and ``run()`` the headless pipeline on the sample instead."""
    from dubstudio.gui.app import display_problem

    problem = display_problem()
    if problem is None:
        from dubstudio.app.sample import ensure_sample

        return open_editor(str(ensure_sample()))
    print(f"dubstudio: cannot open the editor: {problem}", file=sys.stderr)
    print("dubstudio: running the headless pipeline on the built-in sample instead (`dubstudio run`; "
          "`dubstudio --help` lists every command)", file=sys.stderr)
    return run()
