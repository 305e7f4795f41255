"""Compose and render the demo clip shipped in bridge/data (run once; its output is committed).

An 8-bar piano phrase written here (I-vi-IV-V in C with a melody, pedal changed every bar), rendered
with FluidSynth and the FluidR3_GM soundfont (MIT licence), so the package carries no third-party
recording. Usage: python bench/make_demo_audio.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

DATA = Path(__file__).resolve().parents[1] / "bridge" / "data"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
BPM = 96.0
BEAT_S = 60.0 / BPM
CHORDS = [(48, [60, 64, 67]), (45, [57, 60, 64]), (41, [57, 60, 65]), (43, [59, 62, 67])]
MELODY = [76, 74, 72, 74, 76, 76, 76, 0, 74, 74, 74, 0, 76, 79, 79, 0]


def compose() -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    piano = pretty_midi.Instrument(program=0, name="demo piano")
    rng = np.random.default_rng(7)
    for bar in range(8):
        t0 = bar * 4 * BEAT_S
        bass, triad = CHORDS[bar % 4]
        piano.notes.append(pretty_midi.Note(int(rng.integers(70, 90)), bass, t0, t0 + 0.4))
        for beat in (1, 2, 3):  # short broken-chord keys: the pedal sustains them
            for k, pitch in enumerate(triad):
                start = t0 + beat * BEAT_S + k * 0.02
                piano.notes.append(pretty_midi.Note(int(rng.integers(50, 70)), pitch, start, start + 0.25))
        for half in range(2):
            pitch = MELODY[(bar * 2 + half) % len(MELODY)]
            if pitch:
                start = t0 + half * 2 * BEAT_S
                piano.notes.append(pretty_midi.Note(int(rng.integers(80, 105)), pitch, start, start + 1.6 * BEAT_S))
        piano.control_changes += [
            pretty_midi.ControlChange(64, 127, t0 + 0.05),
            pretty_midi.ControlChange(64, 0, t0 + 4 * BEAT_S - 0.08),
        ]
    midi.instruments.append(piano)
    return midi


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    midi = compose()
    midi_path = DATA / "demo_piano.mid"
    midi.write(str(midi_path))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "demo.wav"
        subprocess.run(
            ["fluidsynth", "-ni", "-g", "1.0", "-F", str(wav), "-r", "44100", str(SOUNDFONT), str(midi_path)],
            check=True,
            capture_output=True,
        )
        audio, rate = sf.read(wav, dtype="float32")
    mono = audio.mean(axis=1)
    mono *= 10 ** (-1 / 20) / np.abs(mono).max()  # peak at -1 dBFS
    sf.write(DATA / "demo_piano.flac", mono, rate, subtype="PCM_16")
    print(f"wrote {midi_path} and {DATA / 'demo_piano.flac'} ({len(mono) / rate:.1f} s)")


if __name__ == "__main__":
    main()
