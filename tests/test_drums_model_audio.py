"""The shipped drum model on rendered audio: a groove it has not seen, through the pipeline and the CLI.

The kit is a General MIDI soundfont kit, which the model was trained on (with other grooves and
augmentation); the real-recording figures are bench/drums.py's job, not a test's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mido
import mir_eval
import numpy as np
import pretty_midi
import pytest

from reascribe.audio import load_section
from reascribe.models.drums.classes import GM_NOTE
from reascribe.pipelines import create, no_progress

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("fluidsynth") is None or not SOUNDFONT.exists(), reason="install/setup.sh --dev"),
]
BEAT = 60 / 100


def _groove() -> list[tuple[float, int, int]]:
    """Eight bars of rock at 100 BPM: kick on 1 and 3, snare on 2 and 4, eighth hats, a crash per 4 bars."""
    rng = np.random.default_rng(5)
    hits = []
    for bar in range(8):
        t0 = 0.5 + bar * 4 * BEAT
        for eighth in range(8):
            t = t0 + eighth * BEAT / 2
            hat = 46 if (eighth == 7 and bar % 2) else 42
            hits.append((t, hat, int(rng.integers(60, 100))))
            if eighth in (0, 4, 5) and not (eighth == 5 and bar % 2 == 0):
                hits.append((t, 36, int(rng.integers(90, 120))))
            if eighth in (2, 6):
                hits.append((t, 38, int(rng.integers(90, 120))))
        if bar % 4 == 0:
            hits.append((t0, 49, 110))
    return hits


@pytest.fixture(scope="module")
def groove_wav(tmp_path_factory):
    folder = tmp_path_factory.mktemp("groove")
    midi = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes = [pretty_midi.Note(v, p, t, t + 0.1) for t, p, v in _groove()]
    midi.instruments.append(drums)
    midi.write(str(folder / "groove.mid"))
    wav = folder / "groove.wav"
    subprocess.run(["fluidsynth", "-ni", "-q", "-F", str(wav), "-r", "44100", str(SOUNDFONT), str(folder / "groove.mid")], check=True)
    return wav


def _f(reference: list[float], estimate: list[float]) -> float:
    return mir_eval.onset.f_measure(np.array(reference), np.array(sorted(estimate)), window=0.05)[0]


def test_kick_snare_and_hats_are_found(groove_wav):
    pipeline = create("drums")
    audio = load_section(groove_wav, sample_rate=pipeline.sample_rate, mono=True)
    events = pipeline.run(audio, {}, no_progress)
    truth = _groove()
    for drums in (("kick",), ("snare",), ("hihat_closed", "hihat_open")):
        pitches = {GM_NOTE[d] for d in drums}
        ref = sorted({t for t, p, _ in truth if p in pitches})
        est = [n.start_s for n in events.notes if n.pitch_midi in pitches]
        assert _f(ref, est) >= 0.85, drums


def test_cli_writes_drum_notes_on_channel_10(groove_wav, tmp_path):
    out = tmp_path / "groove.mid"
    cmd = [sys.executable, "-m", "reascribe", "transcribe", str(groove_wav), "--kind", "drums", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    notes = [m for track in mido.MidiFile(out).tracks for m in track if m.type == "note_on" and m.velocity > 0]
    assert notes and {m.channel for m in notes} == {9}
    assert {36, 38, 42} <= {m.note for m in notes}
