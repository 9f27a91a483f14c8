#!/usr/bin/env bash
# Set DubStudio up on a Debian/Ubuntu machine: system packages, .venv (Python 3.11), pinned
# Python packages, an editable install of this repo, and a smoke import.
#
#   bash installer/install.sh          # to run DubStudio
#   bash installer/install.sh --dev    # plus test tools and what a real Qt window needs under Xvfb
#
# Idempotent: a second run with nothing changed only checks and exits (a few seconds).
# Environment: PYTHON=/path/to/python3.11 picks the interpreter.
set -euo pipefail

DEV=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (use --dev or --help)" >&2; exit 2 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
STAMP="$VENV/.dubstudio-install-stamp"
cd "$REPO"

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- system (Debian) packages
# Required: the install stops without them. Optional: a warning, and DubStudio runs without the feature.
APT_BASE_REQUIRED=(
    espeak-ng        # speech for the built-in sample clip; its library makes the built-in audio model's training speech
    libgl1           # libGL.so.1, linked by OpenCV (imported by mediapipe)
    libglib2.0-0     # libglib/libgthread, linked by OpenCV
)
APT_BASE_OPTIONAL=(
    libportaudio2    # sound playback in the editor (sounddevice)
    ffmpeg           # ffprobe: handy for inspecting exports; required with --dev (tests use it)
    # what PySide6's xcb platform plugin loads to open the editor's window on an X11 desktop
    # (a headless server can do without: `dubstudio` then runs the headless pipeline)
    libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
    libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libegl1 libfontconfig1 libdbus-1-3
)
APT_DEV_REQUIRED=(
    ffmpeg           # ffprobe: tests check exported files independently of PyAV
    # what PySide6 needs to show a real window under a virtual X server (Xvfb)
    xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
    libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libegl1 libfontconfig1 libdbus-1-3
)
if [[ $DEV == 1 ]]; then
    APT_REQUIRED=("${APT_BASE_REQUIRED[@]}" "${APT_DEV_REQUIRED[@]}")
    APT_OPTIONAL=(libportaudio2)
else
    APT_REQUIRED=("${APT_BASE_REQUIRED[@]}")
    APT_OPTIONAL=("${APT_BASE_OPTIONAL[@]}")
fi

is_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

missing_of() {
    local p out=()
    for p in "$@"; do is_installed "$p" || out+=("$p"); done
    echo "${out[*]:-}"
}

ensure_apt_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        say "not a Debian/Ubuntu system (no dpkg): make sure these are installed with your package manager:"
        say "  required: ${APT_REQUIRED[*]}"
        say "  optional: ${APT_OPTIONAL[*]}"
        return 0
    fi
    local missing_req missing_opt
    missing_req="$(missing_of "${APT_REQUIRED[@]}")"
    missing_opt="$(missing_of "${APT_OPTIONAL[@]}")"
    if [[ -z "$missing_req$missing_opt" ]]; then
        say "system packages: all present"
        return 0
    fi

    local -a SUDO=()
    local can_install=1
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else can_install=0; fi
    fi
    command -v apt-get >/dev/null 2>&1 || can_install=0

    if [[ $can_install == 1 ]]; then
        say "installing system packages: ${missing_req:+$missing_req }$missing_opt"
        local -a APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
        if "${APT[@]}" update -qq; then
            # shellcheck disable=SC2086
            "${APT[@]}" install -y -qq --no-install-recommends $missing_req $missing_opt >/dev/null \
                || say "apt-get install failed (see above)"
        else
            say "apt-get update failed (see above)"
        fi
        missing_req="$(missing_of "${APT_REQUIRED[@]}")"
        missing_opt="$(missing_of "${APT_OPTIONAL[@]}")"
    fi

    if [[ -n "$missing_opt" ]]; then
        say "WARNING: optional system packages missing: $missing_opt"
        say "  install them with: sudo apt-get install $missing_opt"
        say "  (libportaudio2: sound playback; ffmpeg: ffprobe). DubStudio runs without them."
    fi
    if [[ -n "$missing_req" ]]; then
        die "required system packages missing: $missing_req
  install them with:  sudo apt-get update && sudo apt-get install $missing_req
  then run this script again."
    fi
    say "system packages: ok"
}

# ---------------------------------------------------------------- Python 3.11
find_python() {
    local cand
    for cand in "${PYTHON:-}" python3.11 python3 python; do
        [[ -n "$cand" ]] || continue
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

venv_ok() {
    [[ -x "$VENV/bin/python" ]] \
        && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1
}

# ---------------------------------------------------------------- stamps
# The Python step is skipped when this hash matches the one written after the last good install.
# "MODE:HASH"; the hash covers both modes' inputs, so a dev stamp also satisfies a plain run.
compute_hash() {
    {
        echo "repo=$REPO"
        cat "$REPO/installer/requirements.txt" "$REPO/installer/requirements-dev.txt" \
            "$REPO/pyproject.toml" "$REPO/installer/install.sh"
        echo "apt: ${APT_BASE_REQUIRED[*]} | ${APT_BASE_OPTIONAL[*]} | ${APT_DEV_REQUIRED[*]}"
    } | sha256sum | cut -d' ' -f1
}

main() {
    local t0=$SECONDS
    ensure_apt_packages

    local mode=base
    [[ $DEV == 1 ]] && mode=dev
    local want have=""
    want="$(compute_hash)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    # A dev install contains the plain one, so a plain run is satisfied by a dev stamp too.
    if venv_ok && { [[ "$have" == "$mode:$want" ]] || { [[ $mode == base ]] && [[ "$have" == "dev:$want" ]]; }; }; then
        say "Python environment up to date ($VENV); nothing to do ($((SECONDS - t0)) s)"
        return 0
    fi

    if ! venv_ok; then
        local py
        py="$(find_python)" || die "Python 3.11 was not found (DubStudio needs exactly 3.11).
  On Debian 12 / Ubuntu 22.04+:  sudo apt-get install python3.11 python3.11-venv
  or point PYTHON at one:        PYTHON=/path/to/python3.11 bash installer/install.sh"
        if [[ -e "$VENV" ]]; then
            say "existing $VENV is not a working Python 3.11 environment: recreating it"
            rm -rf "$VENV"
        fi
        say "creating $VENV with $py ($("$py" --version 2>&1))"
        "$py" -m venv "$VENV" || die "could not create the virtual environment with $py.
  On Debian/Ubuntu install the venv module:  sudo apt-get install python3.11-venv"
    fi
    rm -f "$STAMP"

    local PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
    local reqs=(-r "$REPO/installer/requirements.txt")
    [[ $DEV == 1 ]] && reqs+=(-r "$REPO/installer/requirements-dev.txt")
    say "installing Python packages into .venv (a new .venv takes a few minutes and ~2.5 GB)"
    "${PIP[@]}" install -q "${reqs[@]}" || die "pip could not install the requirements (see above)."
    say "installing DubStudio itself (editable)"
    "${PIP[@]}" install -q --no-deps -e "$REPO" || die "pip could not install DubStudio from $REPO (see above)."
    "${PIP[@]}" check >/dev/null 2>&1 || say "WARNING: 'pip check' reports conflicts: run $VENV/bin/pip check"

    say "smoke test: importing dubstudio, mediapipe, torch, av"
    local smoke="import dubstudio, mediapipe, torch, av"
    [[ $DEV == 1 ]] && smoke="$smoke, pytest, pytestqt, PySide6.QtWidgets"
    "$VENV/bin/python" -c "$smoke" || die "the installed environment does not import ($smoke); see the error above."

    echo "$mode:$want" > "$STAMP"
    say "done in $((SECONDS - t0)) s. Run:  $VENV/bin/dubstudio   (the editor; headless: $VENV/bin/dubstudio run)"
}

main
