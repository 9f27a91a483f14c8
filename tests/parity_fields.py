"""The user options of the app's requests, field by field: what both faces must be able to set.

Shared by tests/app/test_parity.py (the CLI) and tests/gui/test_gui_parity.py (the editor);
importable as ``parity_fields`` (tests/conftest.py puts this folder on ``sys.path``).

A field is named by its path: ``renderer.checkpoint`` (ExportRequest's RendererChoice),
``composite.detail`` (its CompositeChoice), ``overrides.lr_g`` (an AdaptRequest override, one per
``TRAIN_FIELDS``). A new request field is a new user option unless it is listed in
``NOT_OPTIONS`` with the reason, so both tests fail until each face can set it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dubstudio.app.adapt import TRAIN_FIELDS, AdaptRequest
from dubstudio.app.dub import DubRequest
from dubstudio.app.export import ExportRequest
from dubstudio.app.renderer import CompositeChoice, RendererChoice

# fields that are not user options, and why
NOT_OPTIONS: dict[type, dict[str, str]] = {
    AdaptRequest: {
        # `dubstudio adapt` trains to --steps; the editor and `run` keep an adaptation already trained
        # past them (a policy of the face, not a choice)
        "keep_longer": "set by the face: the editor and `run` keep a longer adaptation",
    },
    ExportRequest: {
        "protect": "the files a batch must never write over (its shot list's inputs): set by `batch`, not by a user",
    },
    DubRequest: {
        "adapt_config": "the per-shot audio model's training settings: a test-only knob (tests make it tiny)",
        # found, not chosen: From timecode in the editor, `--offset tc` on the command line
        "placement": "how the offset was placed by timecode (From timecode / --offset tc)",
    },
}
# fields the editor takes from its Settings (Edit ▸ Settings…), not from the dialog: the editor's
# face of --device / --threads
EDITOR_SETTINGS = {"device", "threads", "renderer.device"}
NESTED = {"renderer": RendererChoice, "composite": CompositeChoice}
REQUIRED = object()  # a field without a default (project, output)


def user_fields(request_class: type) -> list[str]:
    """Every user option of ``request_class``, as field paths."""
    out: list[str] = []
    skip = NOT_OPTIONS.get(request_class, {})
    for f in dataclasses.fields(request_class):
        if f.name in skip:
            continue
        if request_class is AdaptRequest and f.name == "overrides":
            out += [f"overrides.{k}" for k in TRAIN_FIELDS]
        elif f.name in NESTED and request_class is ExportRequest:
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(NESTED[f.name])]
        else:
            out.append(f.name)
    return out


def value_of(request: Any, name: str) -> Any:
    """The value of field path ``name`` in ``request`` (None: an override not passed)."""
    head, _, rest = name.partition(".")
    if head == "overrides":
        return request.overrides.get(rest)
    v = getattr(request, head)
    return value_of(v, rest) if rest else v


def default_of(request_class: type, name: str) -> Any:
    """The default of field path ``name`` (``REQUIRED`` for a field without one)."""
    head, _, rest = name.partition(".")
    if head == "overrides":
        return None  # not passed: TrainConfig's own default
    f = {f.name: f for f in dataclasses.fields(request_class)}[head]
    if rest:
        return default_of(NESTED[head], rest)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return REQUIRED


def same(a: Any, b: Any) -> bool:
    """Equal, a path and its text alike (a request may carry either)."""
    if isinstance(a, Path) or isinstance(b, Path):
        return a is not None and b is not None and Path(a) == Path(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def check_carries(request: Any, expected: dict[str, Any]) -> set[str]:
    """Assert that ``request`` carries each expected value, and that each differs from the
    request's default (a field the face cannot set fails here); the checked field paths."""
    cls = type(request)
    for name, want in expected.items():
        got = value_of(request, name)
        assert same(got, want), f"{cls.__name__}.{name} is {got!r}, expected {want!r}"
        default = default_of(cls, name)
        if default is not REQUIRED:
            assert not same(got, default), f"{cls.__name__}.{name}: {got!r} is the default; pick another value"
    return set(expected)
