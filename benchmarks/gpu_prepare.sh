#!/usr/bin/env bash
# Prepares .gpu/ for benchmarks/gpu_check.sh on a machine that holds torch (Python 3.12) but
# neither our media packages nor the network (the lent device machine): wheels for what is
# missing there, the clip, and the clip's tracking done here (so mediapipe need not travel).
# .gpu/ is listed in .git/info/exclude: test footage and its tracking are never committed.
#
#   bash benchmarks/gpu_prepare.sh [CLIP]        then carry .gpu with the device call
#
# Size (measured 2026-12-06): .gpu is 44 MB (PyAV's wheel alone 36 MB), the repo 6 MB: one call
# may carry 64 MiB. The perceptual weights (stlpips_pytorch: VGG 57 MB, AlexNet 9.5 MB, both needed:
# the cuda preset's perceptual loss and the LPIPS measure) do not fit beside them. On the lent device
# machine, plan three calls on one warm machine (files outside the repo stay while it is warm, 30 s
# idle): 1) carry .gpu, install the wheels into /tmp/site and copy .gpu/media and .gpu/work to /tmp;
# 2) carry the VGG weights (copied from .venv's site-packages into an excluded folder) to
# /tmp/site/stlpips_pytorch/weights/vST0.0/; 3) the same with AlexNet's and the package's .py files,
# then run gpu_check.sh. Without them the cuda preset's adaptation stops with the "perceptual
# weights missing" message (a user's install has them: stlpips-pytorch is a dependency). Not yet
# tried on a GPU.
set -euo pipefail
CLIP=${1:-talk_c}
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p .gpu/wheels .gpu/media
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
for pkg in av==18.1.0 msgspec==0.23.0 psygnal==0.16.1 soundfile==0.14.0 librosa==0.11.0 audioread soxr pooch \
           decorator platformdirs; do
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLAT[@]}" -d .gpu/wheels "$pkg" || .venv/bin/python -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 -d .gpu/wheels "$pkg"
done
MEDIA=$(.venv/bin/python -c "from dubstudio.core.paths import media_dir; print(media_dir())")
cp "$MEDIA/$CLIP.mp4" .gpu/media/
# tracked here, into the work folder gpu_check.sh uses, with the video path relative to the repo
.venv/bin/python - "$CLIP" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from mouth_detail_bench import tracked
clip = sys.argv[1]
p = tracked(Path(".gpu/work"), clip)
p.relink(Path(".gpu/media") / f"{clip}.mp4")
print("tracked", p.root)
PY
du -sh .gpu
