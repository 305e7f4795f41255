#!/usr/bin/env bash
# Set up reascribe in ./.venv: system packages, PyTorch (CPU), the transkun piano model, reascribe.
#   install/setup.sh          the product
#   install/setup.sh --dev    the product plus what the tests and benchmarks need
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

say() { printf '\033[1mreascribe setup:\033[0m %s\n' "$*"; }

# Debian/Ubuntu packages: ffmpeg decodes formats libsndfile cannot (m4a, aac...); fluidsynth and a
# General MIDI soundfont render the test and benchmark audio.
if command -v apt-get >/dev/null 2>&1; then
  PKGS="libsndfile1 ffmpeg"
  "$PYTHON" -c "import ensurepip" 2>/dev/null || PKGS="$PKGS python3-venv"  # Debian splits venv out
  # --dev: the soundfonts render test audio and the drum model's training data (training/synth.py).
  [ "$DEV" = 1 ] && PKGS="$PKGS fluidsynth libfluidsynth3 fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont avldrums.lv2-soundfont"
  missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    say "installing system packages: $missing"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null
  fi
else
  say "not a Debian system: install ffmpeg yourself for m4a/aac support (and fluidsynth for the tests)"
fi

"$PYTHON" - <<'PY' || { say "reascribe needs Python 3.10, 3.11 or 3.12 (set PYTHON=python3.x)"; exit 1; }
import sys
sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))
PY
[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
PIP=".venv/bin/python -m pip"
# PyPI's Linux torch wheels carry CUDA (several GB); PyTorch's CPU index has the small build. Offline
# machines with their own mirror or wheel folder skip it.
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH_ARGS=()
if [ "$(uname)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1 &&
   .venv/bin/python -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=5)" "$TORCH_CPU_INDEX/" 2>/dev/null; then
  TORCH_ARGS=(--extra-index-url "$TORCH_CPU_INDEX")
fi
say "installing PyTorch $TORCH_VERSION"
$PIP install -q "torch==$TORCH_VERSION" "${TORCH_ARGS[@]}"
# transkun's metadata asks for torchaudio (several GB of CUDA builds) and training-only packages;
# reascribe supplies the one torchaudio function it uses, so install it without dependencies.
say "installing the transkun piano model"
$PIP install -q --no-deps "transkun==2.0.1"
EXTRA=""; [ "$DEV" = 1 ] && EXTRA="[test]"
say "installing reascribe$EXTRA"
# pip then lists transkun's training-only packages (and torchaudio) as missing: left out on purpose.
$PIP install -q -e ".$EXTRA" 2> >(grep -v -e "^ERROR: pip's dependency resolver" -e "^transkun .* requires" >&2)
say "done. Try: .venv/bin/reascribe demo"
