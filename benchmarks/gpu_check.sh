#!/usr/bin/env bash
# The prepared GPU check (issue 21): on a machine with a CUDA GPU, adapt one real shot with the
# cuda preset, render its held-out frames with and without the mouth detail and the copy
# baseline, and print one JSON line per variant (steps/s, mouth LPIPS/PSNR, flicker, render
# frames/s, and the independent sharpness tool's numbers where mediapipe is installed).
#
#   bash benchmarks/gpu_check.sh [CLIP] [OUT_DIR]        (default talk_c, ./gpu_check_out)
#
# Within 8 minutes on one H100-class GPU: tracking ~1 min (mediapipe, CPU), 600 steps at 256 px,
# three 50-frame renders. Where the project is installed (`pip install -e .`) it runs as is. On a
# bare machine that holds torch but not our media packages (the lent device machine), first run
# here `bash benchmarks/gpu_prepare.sh`: it puts wheels for the missing packages and the clip under
# .gpu/ (git-ignored, never committed), which this script installs to /tmp/site and uses.
set -euo pipefail
CLIP=${1:-talk_c}
OUT=${2:-${OUT:-./gpu_check_out}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
if [ -d .gpu/wheels ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -d .gpu/media ] && export DUBSTUDIO_MEDIA="$PWD/.gpu/media"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'EOF'
import json, torch
ok = torch.cuda.is_available()
print(json.dumps({"cuda": ok, "device": torch.cuda.get_device_name(0) if ok else None, "torch": torch.__version__}))
raise SystemExit(0 if ok else 3)
EOF
if [ -d .gpu/work/projects/$CLIP ]; then  # tracked by gpu_prepare.sh elsewhere: point it at this copy of the clip
  "$PY" -c "import sys; from dubstudio.project.store import Project; Project.open(sys.argv[1]).relink(sys.argv[2])" \
    ".gpu/work/projects/$CLIP" ".gpu/media/$CLIP.mp4"
fi
TOOL=()
"$PY" -c "import mediapipe" 2>/dev/null || TOOL=(--no-tool)
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
timeout 470 "$PY" benchmarks/mouth_detail_bench.py --clips "$CLIP" --device cuda --threads 8 \
  --variants neural,detail,copy_warp --work "$([ -d .gpu/work ] && echo .gpu/work || echo /tmp/gpu_check)" --json "$OUT/gpu_check.json" --sheets "$OUT" ${TOOL[@]+"${TOOL[@]}"}
