"""Training parts for the infilling model, and fill-in-the-middle examples cut from them.

POP909 songs 001-740 (MELODY and PIANO tracks) and Groove MIDI ``train`` rows train; POP909 741-750
and Groove MIDI ``validation`` rows choose the epoch; POP909 751-800 (``HELDOUT_SONGS``) and Groove
MIDI ``test`` rows are never read here: bench/generate.py measures on them.
"""

from __future__ import annotations

import csv
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
from tqdm import tqdm

from reascribe.models.generator.vocab import (
    MAX_GAP_BARS,
    STEPS_PER_BEAT,
    Gap,
    GridNote,
    density_bin,
    drum_class_of,
    fim_middle,
    fim_prompt,
    notes_per_beat,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "symbolic"
POP909 = DATA / "pop909"
GROOVE = DATA / "groove_midi"
TRAIN_SONGS = range(1, 741)
VALID_SONGS = range(741, 751)
HELDOUT_SONGS = range(751, 801)
POP909_TRACKS = {"MELODY": "melody", "PIANO": "piano"}
CONTEXT_BARS = 4
GAP_BARS = (1, 2, 3, 4, 6, 8)
GAP_WEIGHTS = np.array([3, 3, 1, 3, 1, 1]) / 12
P_PARTIAL_GAP = 0.25  # gaps that start or end off the bar line
P_NO_SUFFIX = 0.15  # continuation: nothing after the gap
TRANSPOSE = range(-5, 7)


@dataclass
class Part:
    name: str  # "pop909/001/PIANO", "groove/drummer1/..."
    kind: str  # melody, piano or drums
    steps_per_bar: int
    notes: list[GridNote]

    @property
    def n_bars(self) -> int:
        return max(n.onset for n in self.notes) // self.steps_per_bar + 1


def _ticks_notes(track: mido.MidiTrack) -> list[tuple[int, int, int, int]]:
    """(onset_tick, end_tick, pitch, velocity) of a track, pairing each release with its press."""
    tick, open_, out = 0, {}, []
    for msg in track:
        tick += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_.setdefault(msg.note, []).append((tick, msg.velocity))
        elif msg.type in ("note_off", "note_on") and open_.get(msg.note):
            start, vel = open_[msg.note].pop(0)
            out.append((start, tick, msg.note, vel))
    return out


def load_pop909(song: int) -> list[Part]:
    """The MELODY and PIANO parts of a POP909 song on its annotated beat grid."""
    folder = POP909 / f"{song:03d}"
    midi = mido.MidiFile(folder / f"{song:03d}.mid")
    beats = np.loadtxt(folder / "beat_midi.txt", ndmin=2)
    downbeats = np.flatnonzero(beats[:, 2] > 0)
    beats_per_bar = int(np.median(np.diff(downbeats))) if len(downbeats) > 2 else 4
    # Bar 0 starts on a downbeat at or before the first beat, so pickups land in bar 0.
    origin = downbeats[0] - beats_per_bar * math.ceil(downbeats[0] / beats_per_bar) if len(downbeats) else 0
    times, period = beats[:, 0], float(np.median(np.diff(beats[:, 0])))
    tempo = next(m.tempo for m in midi.tracks[0] if m.type == "set_tempo")
    seconds_per_tick = tempo / 1e6 / midi.ticks_per_beat

    def steps(t_s: float) -> float:
        if t_s < times[0]:
            beat = (t_s - times[0]) / period
        elif t_s > times[-1]:
            beat = len(times) - 1 + (t_s - times[-1]) / period
        else:
            beat = float(np.interp(t_s, times, np.arange(len(times))))
        return (beat - origin) * STEPS_PER_BEAT

    parts = []
    for track in midi.tracks:
        kind = POP909_TRACKS.get(track.name)
        if not kind:
            continue
        notes = []
        for start, end, pitch, vel in _ticks_notes(track):
            onset = round(steps(start * seconds_per_tick))
            offset = round(steps(end * seconds_per_tick))
            if onset >= 0:
                notes.append(GridNote(onset, pitch, max(1, offset - onset), vel))
        if notes:
            name = f"pop909/{song:03d}/{track.name}"
            parts.append(Part(name, kind, beats_per_bar * STEPS_PER_BEAT, sorted(set(notes))))
    return parts


def load_groove(midi_path: Path, time_signature: str) -> Part | None:
    """A Groove MIDI performance as drum classes on the sixteenth grid of its own tempo (bar 0 at tick 0)."""
    num, den = (int(x) for x in time_signature.split("-"))
    midi = mido.MidiFile(midi_path)
    hits: dict[tuple[int, int], int] = {}
    for track in midi.tracks:
        for start, _, pitch, vel in _ticks_notes(track):
            cls = drum_class_of(pitch)
            if cls is not None:
                key = (round(start * STEPS_PER_BEAT / midi.ticks_per_beat), cls)
                hits[key] = max(vel, hits.get(key, 0))
    notes = sorted(GridNote(onset, cls, 1, vel) for (onset, cls), vel in hits.items())
    steps_per_bar = num * STEPS_PER_BEAT * 4 // den
    return Part(f"groove/{midi_path.stem}", "drums", steps_per_bar, notes) if notes else None


def groove_rows(split: str) -> list[dict]:
    with open(GROOVE / "info.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["split"] == split]


def load_split(split: str) -> list[Part]:
    """``train`` or ``validation`` parts (``test``: the bench's Groove rows plus POP909 751-800)."""
    songs = {"train": TRAIN_SONGS, "validation": VALID_SONGS, "test": HELDOUT_SONGS}[split]
    parts: list[Part] = []
    for song in tqdm(songs, desc=f"POP909 {split}", leave=False):
        parts += load_pop909(song)
    for row in tqdm(groove_rows(split), desc=f"Groove MIDI {split}", leave=False):
        part = load_groove(GROOVE / row["midi_filename"], row["time_signature"])
        if part and part.n_bars >= 2:
            parts.append(part)
    return parts


def cached_split(work: Path, split: str) -> list[Part]:
    path = work / f"parts-{split}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    parts = load_split(split)
    path.write_bytes(pickle.dumps(parts))
    return parts


def augment(part: Part, rng: np.random.Generator) -> list[GridNote]:
    """Transposed (pitched parts) and velocity-scaled notes. The grid is in beats, so the tempo of a
    performance never reaches the model: tempo invariance holds by construction."""
    shift = int(rng.choice(TRANSPOSE)) if part.kind != "drums" else 0
    if shift and not all(0 <= n.pitch + shift < 128 for n in part.notes):
        shift = 0
    scale = rng.uniform(0.8, 1.2)
    return [GridNote(n.onset, n.pitch + shift, n.duration, int(np.clip(round(n.velocity * scale), 1, 127)))
            for n in part.notes]


def random_gap(part: Part, rng: np.random.Generator) -> Gap | None:
    spb, total = part.steps_per_bar, part.n_bars
    n_bars = int(rng.choice(GAP_BARS, p=GAP_WEIGHTS))
    if total < n_bars + 1:
        return None
    first = int(rng.integers(1, total - n_bars + 1))
    start, end = first * spb, (first + n_bars) * spb
    if rng.random() < P_PARTIAL_GAP:
        beat = STEPS_PER_BEAT
        start += int(rng.integers(0, spb // beat)) * beat
        end -= int(rng.integers(0, spb // beat)) * beat
        if end <= start:
            return None
    return Gap(start, end, spb)


def make_example(part: Part, rng: np.random.Generator, max_len: int) -> tuple[list[int], int] | None:
    """(tokens, index of the first middle token) of one random FIM example, None when none fits."""
    gap = random_gap(part, rng)
    if gap is None or gap.n_bars > MAX_GAP_BARS:
        return None
    notes = augment(part, rng)
    middle_notes = [n for n in notes if gap.start <= n.onset < gap.end]
    density = density_bin(notes_per_beat(middle_notes, gap.end - gap.start))
    use_suffix = rng.random() >= P_NO_SUFFIX
    middle = fim_middle(notes, gap, part.kind)
    for context in range(CONTEXT_BARS, -1, -1):
        prompt = fim_prompt(notes, gap, part.kind, density, context, use_suffix)
        if len(prompt) + len(middle) <= max_len:
            return prompt + middle, len(prompt)
    return None
