"""Defaults a newcomer meets: `adapt` needs no --steps (run's 600), every command's device is auto."""

from __future__ import annotations

from dubstudio.app.adapt import RUN_STEPS
from dubstudio.cli import build_parser


def test_adapt_defaults_to_runs_steps_and_every_device_to_auto():
    p = build_parser()
    adapt = p.parse_args(["adapt", "--project", "P"])
    assert adapt.steps == RUN_STEPS == 600 and adapt.device == "auto"
    assert p.parse_args(["prior", "train", "--projects", "P", "--steps", "5"]).device == "auto"
    for argv in (["run"], ["export", "--project", "P", "-o", "x.mp4"], ["render", "--project", "P", "-o", "x.mp4"],
                 ["eval", "--project", "P", "--train-frames", "0:5", "--test-frames", "5:9"], ["batch", "l.csv"]):
        assert p.parse_args(argv).device == "auto", argv
