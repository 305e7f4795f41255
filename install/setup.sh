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
  [ "$DEV" = 1 ] && PKGS="$PKGS fluidsynth fluid-soundfont-gm"
  missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    say "installing system packages: $missing"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null
  fi
else
  say "not a Debian system: install ffmpeg yourself for m4a/aac support (and fluidsynth for the tests)"
fi

[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
PIP=".venv/bin/python -m pip"
say "installing PyTorch $TORCH_VERSION (CPU)"
$PIP install -q "torch==$TORCH_VERSION"
# transkun's metadata asks for torchaudio (several GB of CUDA builds) and training-only packages;
# reascribe supplies the one torchaudio function it uses, so install it without dependencies.
say "installing the transkun piano model"
$PIP install -q --no-deps "transkun==2.0.1"
EXTRA=""; [ "$DEV" = 1 ] && EXTRA="[test]"
say "installing reascribe$EXTRA"
# pip then lists transkun's training-only packages (and torchaudio) as missing: left out on purpose.
$PIP install -q -e ".$EXTRA" 2> >(grep -v -e "^ERROR: pip's dependency resolver" -e "^transkun .* requires" >&2)
say "done. Try: .venv/bin/reascribe demo"
