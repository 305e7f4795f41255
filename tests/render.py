"""Render an excerpt of a MIDI performance with FluidSynth, with its ground truth (tests and benches).

The excerpt keeps the pedals' state at the cut (a pedal held across the start is pressed at 0), keeps
the notes whose onset lies in the excerpt and ends them at its end at the latest. FluidSynth output
is normalised to a -1 dBFS peak. Renders are cached under tests/.cache/ by their arguments.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
PEAK_DBFS = -1.0
PEDAL_DOWN_VALUE = 64  # MIDI: controller values >= 64 are "on" for switch pedals
SUSTAIN_CC, SOFT_CC = 64, 67
RENDER_VERSION = 1  # bump when the rendering changes, to invalidate the cache

MAESTRO_MIDI = (
    Path(__file__).resolve().parents[2]
    / "shared/data/piano/smoke_maestro_stub_mirdata/MIDI-Unprocessed_Chamber3_MID--AUDIO_10_R3_2018_wav--1.midi"
)


class RenderError(RuntimeError):
    """FluidSynth or its soundfont is missing, or rendering failed."""


@dataclass
class Truth:
    notes: list[tuple[float, float, int, int]]  # (start_s, end_s, pitch_midi, velocity), key release
    sustain: list[tuple[float, float]]  # CC64 >= 64 intervals in seconds
    soft: list[tuple[float, float]]  # CC67 >= 64 intervals in seconds
    duration_s: float  # of the excerpt (the WAV is longer by FluidSynth's release tail)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Truth:
        doc = json.loads(text)
        return cls(
            [tuple(n) for n in doc["notes"]],
            [tuple(p) for p in doc["sustain"]],
            [tuple(p) for p in doc["soft"]],
            doc["duration_s"],
        )


def render_midi_excerpt(
    midi_path: str | Path, start_s: float, dur_s: float, out_wav: str | Path | None = None, sample_rate: int = 44100
) -> tuple[Path, Truth]:
    """Render ``[start_s, start_s + dur_s)`` of ``midi_path`` to a WAV; return its path and truth.

    With ``out_wav`` None the render lives in the cache only; otherwise it is copied there.
    """
    _check_tools()
    midi_path = Path(midi_path).resolve()
    key = hashlib.sha256(
        json.dumps([str(midi_path), midi_path.stat().st_mtime_ns, start_s, dur_s, sample_rate, RENDER_VERSION]).encode()
    ).hexdigest()[:16]
    cached_wav, cached_truth = CACHE_DIR / f"{midi_path.stem[:40]}-{key}.wav", CACHE_DIR / f"{key}.truth.json"
    if not (cached_wav.exists() and cached_truth.exists()):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        excerpt, truth = cut_excerpt(pretty_midi.PrettyMIDI(str(midi_path)), start_s, dur_s)
        _render(excerpt, cached_wav, sample_rate)
        cached_truth.write_text(truth.to_json())
    truth = Truth.from_json(cached_truth.read_text())
    if out_wav is None:
        return cached_wav, truth
    shutil.copyfile(cached_wav, out_wav)
    return Path(out_wav), truth


def cut_excerpt(midi: pretty_midi.PrettyMIDI, start_s: float, dur_s: float) -> tuple[pretty_midi.PrettyMIDI, Truth]:
    end_s = start_s + dur_s
    out = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    notes, pedals = [], {SUSTAIN_CC: [], SOFT_CC: []}
    for inst in midi.instruments:
        if inst.is_drum:
            continue
        piece = pretty_midi.Instrument(program=inst.program, name=inst.name)
        for n in inst.notes:
            if start_s <= n.start < end_s:
                clipped = pretty_midi.Note(n.velocity, n.pitch, n.start - start_s, min(n.end, end_s) - start_s)
                piece.notes.append(clipped)
                notes.append((clipped.start, clipped.end, clipped.pitch, clipped.velocity))
        for number in (SUSTAIN_CC, SOFT_CC):
            changes = sorted((c for c in inst.control_changes if c.number == number), key=lambda c: c.time)
            before = [c for c in changes if c.time < start_s]
            inside = [c for c in changes if start_s <= c.time < end_s]
            value = before[-1].value if before else 0
            piece.control_changes.append(pretty_midi.ControlChange(number, value, 0.0))  # the state at the cut
            for c in inside:
                piece.control_changes.append(pretty_midi.ControlChange(number, c.value, c.time - start_s))
                value = c.value
            if value >= PEDAL_DOWN_VALUE:
                piece.control_changes.append(pretty_midi.ControlChange(number, 0, dur_s))
            pedals[number].extend(_intervals(piece.control_changes, number))
        out.instruments.append(piece)
    notes.sort()
    return out, Truth(notes, sorted(pedals[SUSTAIN_CC]), sorted(pedals[SOFT_CC]), dur_s)


def _intervals(changes: list[pretty_midi.ControlChange], number: int) -> list[tuple[float, float]]:
    intervals, down_at = [], None
    for c in sorted((c for c in changes if c.number == number), key=lambda c: c.time):
        if c.value >= PEDAL_DOWN_VALUE and down_at is None:
            down_at = c.time
        elif c.value < PEDAL_DOWN_VALUE and down_at is not None:
            if c.time > down_at:
                intervals.append((down_at, c.time))
            down_at = None
    return intervals


def _check_tools() -> None:
    if shutil.which("fluidsynth") is None:
        raise RenderError("fluidsynth is not installed; install/setup.sh installs it (Debian: fluidsynth).")
    if not SOUNDFONT.exists():
        raise RenderError(f"{SOUNDFONT} is missing; install/setup.sh installs it (Debian: fluid-soundfont-gm).")


def _render(midi: pretty_midi.PrettyMIDI, out_wav: Path, sample_rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mid, raw = Path(tmp) / "excerpt.mid", Path(tmp) / "raw.wav"
        midi.write(str(mid))
        cmd = ["fluidsynth", "-ni", "-q", "-F", str(raw), "-r", str(sample_rate), str(SOUNDFONT), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not raw.exists():
            raise RenderError(f"fluidsynth failed: {proc.stderr.strip() or proc.stdout.strip()}")
        samples, rate = sf.read(raw, dtype="float32", always_2d=True)
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        raise RenderError("fluidsynth rendered silence.")
    samples *= 10 ** (PEAK_DBFS / 20) / peak
    tmp_wav = out_wav.with_suffix(".tmp.wav")
    sf.write(tmp_wav, samples, rate, subtype="PCM_16")
    tmp_wav.replace(out_wav)
