"""Anamorphic footage: the face detector sees the picture unsqueezed, the tracking stays in the
stored pixels the rest of the pipeline works in."""

from fractions import Fraction

import av
import numpy as np

from dubstudio.project.store import Project
from dubstudio.io.video import VideoReader
from dubstudio.tracking.track import track


def squeezed(src, dst, frames: int = 30):
    """``src`` squeezed to half its width and flagged 2:1 (pixels shown twice as wide as tall)."""
    with av.open(str(src)) as s, av.open(str(dst), "w") as d:
        vin = s.streams.video[0]
        vs = d.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = vin.width // 2, vin.height, "yuv420p"
        vs.codec_context.sample_aspect_ratio = Fraction(2)
        for i, f in enumerate(s.decode(vin)):
            if i >= frames:
                break
            rgb = np.ascontiguousarray(f.to_ndarray(format="rgb24")[:, ::2])
            for p in vs.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                d.mux(p)
        for p in vs.encode():
            d.mux(p)
    return dst


def test_a_2x_anamorphic_shot_is_tracked_on_every_frame(tmp_path):
    from dubstudio.app.sample import build_sample

    clip = squeezed(build_sample(tmp_path / "sample", seconds=2), tmp_path / "anamorphic.mp4")
    with VideoReader(clip) as r:
        assert r.sar == 2 and r.width == 256
    t, metrics = track(clip, Project.create(tmp_path / "p", clip))
    # on the squeezed pixels the detector lost the face on 11 of these 30 frames
    assert t.has_face.all() and metrics["landmark_rms_iod"] < 0.01, metrics
    # the tracking is in stored pixels: the face is half as wide as it is tall, as stored
    lm = t.landmarks[t.has_face]
    width = np.ptp(lm[..., 0], axis=1).mean()
    height = np.ptp(lm[..., 1], axis=1).mean()
    assert 0.3 < width / height < 0.55 and t.width == 256
