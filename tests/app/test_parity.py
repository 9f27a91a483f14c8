"""Every user option of dub / adapt / export can be set from the command line: argv sets each field
of the request (``parity_fields.user_fields``) to a value other than its default, and an export's
``command_line()`` parses back to the same request. tests/gui/test_gui_parity.py checks the editor
against the same field list."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from parity_fields import NOT_OPTIONS, check_carries, user_fields

from dubstudio.app.adapt import AdaptRequest
from dubstudio.app.dub import DubRequest
from dubstudio.app.export import ExportRequest
from dubstudio.app.renderer import CompositeChoice, RendererChoice
from dubstudio.cli import build_parser
from dubstudio.cli.dub import dub_request
from dubstudio.cli.export import export_request
from dubstudio.cli.train import adapt_request


def parse(argv: list) -> object:
    return build_parser().parse_args([str(a) for a in argv])


def files(tmp_path: Path, *names: str) -> list[Path]:
    """Files where a request would look (a prior is resolved, a config read, when built)."""
    out = []
    for n in names:
        p = tmp_path / n
        if n.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.write_text(json.dumps({"lr_d": 1e-4}) if n.endswith(".json") else "x")
        out.append(p)
    return out


def test_the_field_lists():
    assert "overrides.lr_g" in user_fields(AdaptRequest) and "keep_longer" not in user_fields(AdaptRequest)
    assert "renderer.checkpoint" in user_fields(ExportRequest) and "composite.detail" in user_fields(ExportRequest)
    assert "placement" not in user_fields(DubRequest) and "adapt_config" not in user_fields(DubRequest)
    assert set(NOT_OPTIONS[AdaptRequest]) == {"keep_longer"}


def test_every_adapt_option_is_reachable_from_the_cli(tmp_path):
    project = tmp_path / "shot.dubstudio"
    prior, cfg, other, a, b = files(tmp_path, "prior.pt", "cfg.json", "other.dubstudio/", "a/", "b/")
    req = adapt_request(parse([
        "adapt", "--project", project, "--steps", 123, "--mode", "mixed", "--prior", prior, "--prior-projects", a, b,
        "--from-shot", other, "--frames", "0:40", "--val-frames", "40:50", "--val-every", 25, "--tex-init", "random",
        "--config", cfg, "--device", "cpu", "--threads", 3, "--restart", "--no-detail-check", "--resolution", 64, "--width", 8,
        "--batch-size", 4, "--lr-g", "1e-4", "--lr-tex", "2e-3", "--w-vgg", 0.3, "--vgg-region", "mouth", "--w-adv", 0.1,
        "--seed", 7,
    ]))
    expected = {
        "project": project, "steps": 123, "mode": "mixed", "prior": prior, "prior_projects": (a, b), "from_shot": other,
        "frames": "0:40", "val_frames": "40:50", "config_file": cfg, "device": "cpu", "threads": 3, "restart": True,
        "detail_check": False, "overrides.resolution": 64, "overrides.width": 8, "overrides.batch_size": 4, "overrides.lr_g": 1e-4,
        "overrides.lr_tex": 2e-3, "overrides.w_vgg": 0.3, "overrides.vgg_region": "mouth", "overrides.w_adv": 0.1,
        "overrides.seed": 7, "overrides.tex_init": "random", "overrides.val_every": 25,
    }
    assert set(expected) == set(user_fields(AdaptRequest))  # a new field needs a flag (and a value here)
    check_carries(req, expected)
    assert not req.keep_longer  # `dubstudio adapt` trains to --steps


def test_every_export_option_is_reachable_from_the_cli(tmp_path):
    project, out = tmp_path / "shot.dubstudio", tmp_path / "out.mov"
    actor, wav = files(tmp_path, "actor.pt", "line.wav")
    req = export_request(parse([
        "export", "--project", project, "-o", out, "--format", "mov",
        "--renderer", "copy", "--train-frames", "5:30", "--mode", "full", "--renderer-checkpoint", actor,
        "--resolution", 128, "--device", "cpu", "--mouth-detail", "off", "--region", "mouth", "--colour", "meanstd", "--detail", 0.5,
        "--no-postprocess", "--batch-size", 4, "--tracked-curves", "--threads", 2,
        "--audio", wav, "--audio-offset", "-0.5", "--audio-policy", "trim", "--guide-track",
        "--side-by-side", "--review-scale", 0.5, "--no-labels", "--no-burn-in",
        "--crf", 20, "--preset", "slow", "--prores", "lt", "--dnxhr", "hqx", "--no-watermark", "--watermark-amplitude", 3,
        "--verify", "--restart", "--overwrite",
    ]))
    expected = {
        "project": project, "output": out, "format": "mov",
        "renderer.kind": "copy", "renderer.mode": "full", "renderer.checkpoint": actor, "renderer.train_frames": "5:30",
        "renderer.resolution": 128, "renderer.device": "cpu", "renderer.mouth_detail": False,
        "composite.region": "mouth", "composite.colour": "meanstd", "composite.detail": 0.5, "composite.postprocess": False,
        "composite.batch_size": 4, "tracked_curves": True, "threads": 2,
        "audio": "file", "audio_file": wav, "audio_offset": -0.5, "audio_policy": "trim", "guide_track": True,
        "side_by_side": True, "review_scale": 0.5, "labels": False, "burn_in": False,
        "crf": 20, "preset": "slow", "prores": "lt", "dnxhr": "hqx", "watermark": False, "watermark_amplitude": 3.0,
        "verify": True, "restart": True, "overwrite": True,
    }
    assert set(expected) == set(user_fields(ExportRequest))
    check_carries(req, expected)
    # the other audio sources
    base = ["export", "--project", project, "-o", out]
    assert export_request(parse([*base, "--original-audio"])).audio == "original"
    assert export_request(parse([*base, "--no-audio"])).audio == "none"


def test_every_dub_option_is_reachable_from_the_cli(tmp_path):
    project = tmp_path / "shot.dubstudio"
    wav, clip, model = files(tmp_path, "line.wav", "dubber.mp4", "a2e.pt")
    # --audio and --dubber exclude each other: two command lines cover the fields
    by_audio = dub_request(parse(["dub", "--project", project, "--audio", wav, "--offset", 1.5, "--audio-model", "shot",
                                  "--text", "Bonjour.", "--language", "fr", "--key-visemes"]))
    by_dubber = dub_request(parse(["dub", "--project", project, "--dubber", clip, "--offset", "tc", "--dubber-sync", 0.12]))
    checked = check_carries(by_audio, {"project": project, "audio": wav, "offset": 1.5, "audio_model": "shot",
                                       "text": "Bonjour.", "language": "fr", "key_visemes": True})
    checked |= check_carries(by_dubber, {"dubber": clip, "offset": "tc", "dubber_sync": 0.12})
    assert checked == set(user_fields(DubRequest))
    assert dub_request(parse(["dub", "--project", project, "--dubber", clip, "--dubber-sync", "off"])).dubber_sync == "off"
    assert dub_request(parse(["dub", "--project", project, "--audio", wav, "--audio-model", model])).audio_model == str(model)
    script = tmp_path / "line.txt"
    script.write_text("Guten Morgen,\nAnna.\n", encoding="utf-8")
    assert dub_request(parse(["dub", "--project", project, "--audio", wav, "--text-file", script])).text == "Guten Morgen,\nAnna.\n"


def round_trip(req: ExportRequest) -> ExportRequest:
    argv = shlex.split(req.command_line())
    assert argv[:2] == ["dubstudio", "export"]
    return export_request(build_parser().parse_args(argv[1:]))  # "export ..."


def test_an_export_command_line_parses_back_to_its_request(tmp_path):
    project = tmp_path / "my shot.dubstudio"  # a space: the command line quotes it
    actor, wav = files(tmp_path, "actor.pt", "line one.wav")
    neural = ExportRequest(
        project, tmp_path / "out.mp4", format="mp4",
        renderer=RendererChoice(mode="full", checkpoint=actor, device="cpu"),
        composite=CompositeChoice(region="mouth", colour="none", detail=0.25, postprocess=False, batch_size=4),
        tracked_curves=True, threads=2, audio="file", audio_file=wav, audio_offset=-0.5, audio_policy="trim",
        guide_track=True, side_by_side=True, review_scale=0.5, labels=False, burn_in=False, crf=20, preset="slow",
        watermark=False, watermark_amplitude=3.0, verify=True, restart=True,
    )
    copy = ExportRequest(
        project, tmp_path / "review.mov", renderer=RendererChoice(kind="copy", train_frames="5:30", resolution=128),
        audio="original", audio_policy="fit", prores="lt", side_by_side=True,
    )
    requests = [
        neural,
        copy,
        ExportRequest(project, tmp_path / "avid.mxf", format="mxf", dnxhr="hqx", audio="none", composite=CompositeChoice(detail=0.0)),
        ExportRequest(project, tmp_path / "frames", format="png", audio_offset=1.25, audio_policy="pad", threads=1),
        ExportRequest(project, tmp_path / "plain.mp4"),
    ]
    for req in requests:
        assert round_trip(req) == req, req.command_line()


def test_a_reel_offset_survives_the_command_line(tmp_path):
    """Seconds far into a reel come back exactly (not to 6 significant digits)."""
    req = ExportRequest(tmp_path / "shot.dubstudio", tmp_path / "out.mp4", audio_offset=3723.125)
    assert round_trip(req) == req


def test_a_dub_request_from_the_cli_equals_the_editors(tmp_path):
    """The editor's dialog passes seconds as numbers; the CLI's request is the same once parsed."""
    project = tmp_path / "shot.dubstudio"
    (clip,) = files(tmp_path, "dubber.mp4")
    cli = dub_request(parse(["dub", "--project", project, "--dubber", clip, "--offset", 2, "--dubber-sync", 0.12]))
    editor = DubRequest(project, dubber=clip, offset=2.0, dubber_sync=0.12)
    assert cli == editor  # --dubber-sync parsed to seconds, as the dialog gives them


def test_the_cuda_preset_is_the_default_on_a_gpu_from_scratch():
    import pytest

    from dubstudio.app.adapt import train_config
    from dubstudio.core.errors import DubStudioError

    cpu, gpu = train_config(device="cpu"), train_config(device="cuda:0")
    assert cpu.resolution == 128 and cpu.w_vgg == 0.0
    assert gpu.resolution == 256 and gpu.w_vgg > 0 and gpu.vgg_region == "mouth" and gpu.w_adv > 0
    assert gpu.generator.width > cpu.generator.width
    assert train_config(config_file="cuda") == gpu  # by name on any device
    assert train_config({"w_vgg": 0.3}, device="cuda").resolution == 128  # a user's own settings win
    with pytest.raises(DubStudioError, match="presets: cuda"):
        train_config(config_file="fast")
