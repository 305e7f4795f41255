"""Training data for the chord model: POP909 songs and generated progressions rendered with General MIDI
instruments, transposed, with drums, as CQT features and per-frame chord, bass, tone and key labels.

Splits by POP909 song number (fixed, so the benchmark never sees a training song): numbers ending in 0
are the test songs (bench/chords.py), numbers ending in 5 validate, the other 640 train. Instruments
split too: training renders use the even General MIDI programs of FluidR3_GM and TimGM6mb
(``SET_A``); the benchmark renders the odd programs of MuseScore General (``SET_B``), which training
never hears. Everything is drawn from one numpy Generator per (seed, split, version, index), so a
dataset is rebuilt from its seed (FluidSynth's first render of a sample in a process differs a little
from later ones, so bit for bit only in the same order).
"""

from __future__ import annotations

import functools
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soxr
from reascribe.models.chords import features
from reascribe.models.chords import vocabulary as voc
from reascribe.models.drums.classes import GM_RENDER_NOTE, TD11_CLASS
from tqdm import tqdm

from training import augment
from training.drums_data import GROOVE, POP909, groove_hits, groove_rows
from training.synth import Event, Preset, Renderer

RENDER_RATE = 44100  # augment's rate; features are computed after resampling to features.SAMPLE_RATE
EXCERPT_S = 30.0
SPLIT_ID = {"train": 0, "validation": 1, "test": 2}
QUALITY_WEIGHTS = np.array([1, 1, 1.2, 1.2, 1.2, 1, 1, 1, 1, 1, 1, 1, 1], np.float64)  # generated progressions


@dataclass(frozen=True)
class InstrumentSet:
    soundfonts: tuple[str, ...]
    harmony: tuple[int, ...]
    melody: tuple[int, ...]
    bass: tuple[int, ...]
    kits: tuple[int, ...]  # bank 128 programs


SET_A = InstrumentSet(
    ("fluidr3", "timgm6mb"),
    harmony=(0, 2, 4, 6, 8, 12, 16, 18, 20, 24, 26, 28, 30, 46, 48, 50, 52, 60, 88, 90, 92, 94),
    melody=(40, 56, 64, 66, 68, 72, 80, 82, 22),
    bass=(32, 34, 36, 38),
    kits=(0, 8, 16, 24, 32, 40),
)
SET_B = InstrumentSet(
    ("musescore",),
    harmony=(1, 3, 5, 7, 11, 17, 19, 25, 27, 29, 49, 51, 61, 89, 91, 93, 95),
    melody=(41, 57, 65, 71, 73, 81, 85),
    bass=(33, 35, 37, 39),
    kits=(0, 8, 16, 25, 32, 40, 48),
)


def songs(split: str) -> list[int]:
    digit = {"test": (0,), "validation": (5,)}.get(split)
    return [n for n in range(1, 801) if (n % 10 in digit if digit else n % 10 not in (0, 5))]


@dataclass
class Segments:
    """Chord segments in seconds with their encoded labels."""

    starts: np.ndarray
    ends: np.ndarray
    classes: np.ndarray  # vocabulary class
    bass: np.ndarray  # bass pitch class or voc.NO_BASS
    tones: np.ndarray  # (n, 12) absolute chord tones

    def transposed(self, k: int) -> Segments:
        roots, qualities = np.divmod(self.classes - 1, voc.N_QUALITIES)
        classes = np.where(self.classes > 0, 1 + ((roots + k) % 12) * voc.N_QUALITIES + qualities, 0)
        bass = np.where(self.bass == voc.NO_BASS, voc.NO_BASS, (self.bass + k) % 12)
        return Segments(self.starts, self.ends, classes, bass, np.roll(self.tones, k, axis=1))

    def frames(self, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class, bass and tones at each time; N where no segment covers it."""
        i = np.searchsorted(self.starts, times_s, side="right") - 1
        inside = (i >= 0) & (times_s < self.ends[np.clip(i, 0, None)])
        i = np.clip(i, 0, None)
        cls = np.where(inside, self.classes[i], 0).astype(np.int16)
        bass = np.where(inside, self.bass[i], voc.NO_BASS).astype(np.int8)
        tones = np.where(inside[:, None], self.tones[i], 0).astype(np.uint8)
        return cls, bass, tones


def read_lab(path: Path) -> Segments:
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    enc = [voc.encode(r[2]) for r in rows]
    return Segments(
        np.array([float(r[0]) for r in rows]),
        np.array([float(r[1]) for r in rows]),
        np.array([e[0] for e in enc], np.int64),
        np.array([e[1] for e in enc], np.int64),
        np.array([e[2] for e in enc], np.int8).reshape(-1, 12),
    )


@functools.lru_cache(maxsize=64)
def song(n: int) -> tuple[pretty_midi.PrettyMIDI, Segments, int]:
    folder = POP909 / f"{n:03d}"
    key = (folder / "key_audio.txt").read_text().split()
    return pretty_midi.PrettyMIDI(str(folder / f"{n:03d}.mid")), read_lab(folder / "chord_midi.txt"), voc.key_class(key[2])


def _notes_events(notes, channel: int, t0: float, t1: float, shift: int, stretch: float, gain: float) -> list[Event]:
    events = []
    for note in notes:
        if note.end <= t0 or note.start >= t1:
            continue
        pitch = note.pitch + shift
        if not 0 <= pitch <= 127:
            continue
        v = int(np.clip(note.velocity * gain, 1, 127))
        s, e = (max(note.start, t0) - t0) * stretch, (min(note.end, t1) - t0) * stretch
        events += [Event(s, channel, "on", pitch, v), Event(max(e, s + 0.02), channel, "off", pitch, 0)]
    return events


def _bass_events(seg: Segments, channel: int, t0: float, t1: float, stretch: float, beat_s: float,
                 rng: np.random.Generator) -> list[Event]:  # fmt: skip
    """A bass line on the labelled bass notes: held, on every beat, or root-octave eighths."""
    style = rng.choice(["held", "beats", "octaves"])
    low = int(rng.integers(28, 36))  # lowest bass pitch
    events = []
    for s, e, b in zip(seg.starts, seg.ends, seg.bass):
        if b == voc.NO_BASS or e <= t0 or s >= t1:
            continue
        s, e = (max(s, t0) - t0) * stretch, (min(e, t1) - t0) * stretch
        pitch = low + (int(b) - low) % 12
        step = {"held": e - s, "beats": beat_s, "octaves": beat_s / 2}[style]
        for i, on in enumerate(np.arange(s, e - 0.05, step)):
            p = pitch + 12 if style == "octaves" and i % 2 else pitch
            v = int(rng.integers(70, 115))
            events += [Event(on, channel, "on", p, v), Event(min(on + step, e) - 0.02, channel, "off", p, 0)]
    return events


def _drum_events(beat_s: float, duration_s: float, channel: int, rng: np.random.Generator) -> list[Event]:
    """A Groove MIDI training groove, stretched to the song's tempo and looped over ``duration_s``."""
    rows = _groove_train_rows()
    row = rows[int(rng.integers(len(rows)))]
    hits = groove_hits(GROOVE / row["midi_filename"])
    if not hits:
        return []
    stretch = beat_s * float(row["bpm"]) / 60
    length = (hits[-1][0] + 0.05) * stretch
    events, offset = [], 0.0
    gain = rng.uniform(0.5, 1.0)
    while offset < duration_s and length > 1:
        for t, note, velocity in hits:
            time = offset + t * stretch
            if time < duration_s and TD11_CLASS.get(note):
                key = GM_RENDER_NOTE[note]
                v = int(np.clip(velocity * gain, 1, 127))
                events += [Event(time, channel, "on", key, v), Event(time + 0.2, channel, "off", key, 0)]
        offset += length
    return events


@functools.lru_cache(maxsize=1)
def _groove_train_rows() -> list[dict]:
    return groove_rows("train")


def _soundfont(rng: np.random.Generator, instruments: InstrumentSet) -> str:
    return str(rng.choice(instruments.soundfonts))


def pop909_example(n: int, rng: np.random.Generator, instruments: InstrumentSet, transpose: bool = True,
                   excerpt_s: float | None = EXCERPT_S) -> tuple[list[Event], dict[int, Preset], float, Segments, int]:  # fmt: skip
    """Events of (an excerpt of) song ``n`` on random instruments, with its segments and key in rendered time."""
    midi, seg, key = song(n)
    k = int(rng.integers(-5, 7)) if transpose else 0
    stretch = rng.uniform(0.9, 1.1) if transpose else 1.0
    end = midi.get_end_time()
    if excerpt_s:
        t0 = rng.uniform(0, max(0.0, end - excerpt_s / stretch))
        t1 = t0 + excerpt_s / stretch
    else:
        t0, t1 = 0.0, end
    tracks = {inst.name: inst for inst in midi.instruments}
    presets, events = {}, []
    parts = [("PIANO", instruments.harmony, 1.0), ("MELODY", instruments.melody, 0.8), ("BRIDGE", instruments.melody, 0.5)]
    for channel, (name, programs, p) in enumerate(parts):
        if name in tracks and rng.random() < p:
            presets[channel] = Preset(_soundfont(rng, instruments), 0, int(rng.choice(programs)))
            events += _notes_events(tracks[name].notes, channel, t0, t1, k, stretch, rng.uniform(0.6, 1.1))
            events.append(Event(0.0, channel, "cc", 7, int(rng.integers(60, 128))))
    if "PIANO" in tracks and rng.random() < 0.3:  # a second instrument doubles the accompaniment
        presets[4] = Preset(_soundfont(rng, instruments), 0, int(rng.choice(instruments.harmony)))
        events += _notes_events(tracks["PIANO"].notes, 4, t0, t1, k, stretch, rng.uniform(0.5, 1.0))
    beats = np.loadtxt(POP909 / f"{n:03d}" / "beat_midi.txt", usecols=0, ndmin=1)
    beat_s = float(np.median(np.diff(beats))) * stretch if len(beats) > 2 else 0.5
    shifted = seg.transposed(k)
    if rng.random() < 0.85:
        presets[3] = Preset(_soundfont(rng, instruments), 0, int(rng.choice(instruments.bass)))
        events += _bass_events(shifted, 3, t0, t1, stretch, beat_s, rng)
    duration = (t1 - t0) * stretch
    if rng.random() < 0.5:
        presets[9] = Preset(_soundfont(rng, instruments), 128, int(rng.choice(instruments.kits)))
        events += _drum_events(beat_s, duration, 9, rng)
    out = Segments((seg.starts - t0) * stretch, (seg.ends - t0) * stretch, shifted.classes, shifted.bass, shifted.tones)
    return events, presets, duration, out, (key % 12 + k) % 12 + 12 * (key // 12) if key >= 0 else -1


def _voicing(cls: int, bass_pc: int, rng: np.random.Generator) -> list[int]:
    """Upper-structure pitches of a chord: close, open or spread, sometimes without the fifth."""
    tones = [pc for pc in np.flatnonzero(voc.class_tones(cls))]
    root, _ = voc.root_quality(cls)
    if len(tones) == 4 and rng.random() < 0.3 and (root + 7) % 12 in tones:
        tones.remove((root + 7) % 12)
    style = rng.choice(["close", "open", "spread"])
    base = int(rng.integers(50, 64))
    if style == "close":
        pitches = sorted(base + (pc - base) % 12 for pc in tones)
    elif style == "open":
        pitches = sorted(base + (pc - base) % 12 + 12 * (i % 2) for i, pc in enumerate(tones))
    else:
        pitches = sorted(base + (pc - base) % 12 + 12 * int(rng.integers(0, 3)) for pc in tones)
    if rng.random() < 0.4:
        pitches.append(pitches[0] + 12)
    return pitches


def progression_example(rng: np.random.Generator, instruments: InstrumentSet
                        ) -> tuple[list[Event], dict[int, Preset], float, Segments, int]:  # fmt: skip
    """A generated progression that favours the rare qualities, voiced and played in varied ways."""
    beat_s = 60 / rng.uniform(65, 150)
    presets = {0: Preset(_soundfont(rng, instruments), 0, int(rng.choice(instruments.harmony)))}
    has_bass = rng.random() < 0.75
    if has_bass:
        presets[3] = Preset(_soundfont(rng, instruments), 0, int(rng.choice(instruments.bass)))
    play = rng.choice(["block", "pulse", "arpeggio", "strum"])
    events, rows, t, root = [Event(0.0, 0, "cc", 7, int(rng.integers(80, 128)))], [], 0.0, int(rng.integers(12))
    weights = QUALITY_WEIGHTS / QUALITY_WEIGHTS.sum()
    while t < EXCERPT_S - 0.5:
        length = beat_s * float(rng.choice([1, 2, 2, 4, 4]))
        if rng.random() < 0.04:  # a gap: no chord
            rows.append((t, t + length, 0, voc.NO_BASS))
            t += length
            continue
        root = (root + int(rng.choice([5, 7, 2, 10, 3, 9, int(rng.integers(12))]))) % 12
        cls = voc.chord_class(root, int(rng.choice(voc.N_QUALITIES, p=weights)))
        tones = np.flatnonzero(voc.class_tones(cls))
        bass_pc = int(rng.choice(tones)) if rng.random() < 0.3 else root
        rows.append((t, t + length, cls, bass_pc))
        pitches = _voicing(cls, bass_pc, rng)
        if has_bass:
            bp = int(rng.integers(28, 40))
            bp += (bass_pc - bp) % 12
            events += [Event(t, 3, "on", bp, int(rng.integers(70, 115))), Event(t + length - 0.03, 3, "off", bp, 0)]
        else:
            pitches = [48 + (bass_pc - 48) % 12] + pitches
        step = {"block": length, "pulse": beat_s, "arpeggio": beat_s / 2, "strum": length}[play]
        for i, on in enumerate(np.arange(t, t + length - 0.05, step)):
            v = int(rng.integers(55, 110))
            if play == "arpeggio":
                p = pitches[i % len(pitches)]
                events += [Event(on, 0, "on", p, v), Event(t + length - 0.02, 0, "off", p, 0)]
                continue
            for j, p in enumerate(pitches):
                delay = j * rng.uniform(0.008, 0.03) if play == "strum" else 0.0
                off = on + (step * rng.uniform(0.5, 0.95) if play == "pulse" else length - 0.02)
                events += [Event(on + delay, 0, "on", p, v), Event(off, 0, "off", p, 0)]
        t += length
    if rng.random() < 0.4:
        presets[9] = Preset(_soundfont(rng, instruments), 128, int(rng.choice(instruments.kits)))
        events += _drum_events(beat_s, t, 9, rng)
    starts, ends, classes, bass = (np.array(c) for c in zip(*rows))
    tones = np.array([voc.class_tones(int(c)) for c in classes], np.int8).reshape(-1, 12)
    return events, presets, t + 0.5, Segments(starts, ends, classes.astype(np.int64), bass.astype(np.int64), tones), -1


@functools.lru_cache(maxsize=1)
def _renderer() -> Renderer:
    return Renderer(RENDER_RATE)


def render(events, presets, duration_s: float, rng: np.random.Generator, augmented: bool = True) -> np.ndarray:
    """Mono audio at features.SAMPLE_RATE, augmented (EQ, compression, room, band limit, noise)."""
    audio = _renderer().render(events, presets, duration_s)
    if augmented:
        audio = augment.chain(audio, rng, p=0.4)
        if rng.random() < 0.4:
            audio = augment.noise(audio, rng)
        audio = augment.to_peak(audio, rng)
    else:
        audio = augment.to_peak(audio, rng, -3.0, -3.0)
    return soxr.resample(audio, RENDER_RATE, features.SAMPLE_RATE).astype(np.float32)


@dataclass
class Example:
    features: np.ndarray  # (frames, N_BINS) float16
    classes: np.ndarray  # (frames,) int16
    bass: np.ndarray  # (frames,) int8
    tones: np.ndarray  # (frames, 12) uint8
    key: np.ndarray  # (frames,) int8, -1 unknown


def build_example(job: tuple[str, int, int, int, int | None]) -> Example:
    split, version, index, seed, song_number = job
    rng = np.random.default_rng([seed, SPLIT_ID[split], version, index])
    if song_number is None:
        events, presets, duration, seg, key = progression_example(rng, SET_A)
    else:
        events, presets, duration, seg, key = pop909_example(song_number, rng, SET_A)
    spec = features.cqt(render(events, presets, duration, rng))
    cls, bass, tones = seg.frames(features.frame_times_s(len(spec)))
    return Example(spec.astype(np.float16), cls, bass, tones, np.full(len(spec), key, np.int8))


def build_split(out: Path, split: str, version: int, seed: int, generated: int, processes: int = 1) -> Path:
    """Render one excerpt of every song of ``split`` plus ``generated`` progressions into one .npz shard;
    skipped when the shard exists."""
    path = out / f"{split}_v{version}.npz"
    if path.exists():
        return path
    jobs = [(split, version, i, seed, n) for i, n in enumerate(songs(split))]
    jobs += [(split, version, len(jobs) + i, seed, None) for i in range(generated)]
    parts: list[Example] = []
    if processes > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            parts = list(tqdm(pool.imap(build_example, jobs, chunksize=4), total=len(jobs), desc=f"{split} v{version}"))
    else:
        parts = [build_example(job) for job in tqdm(jobs, desc=f"{split} v{version}")]
    starts = np.cumsum([0] + [len(p.features) for p in parts])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, features=np.concatenate([p.features for p in parts]), classes=np.concatenate([p.classes for p in parts]),
             bass=np.concatenate([p.bass for p in parts]), tones=np.concatenate([p.tones for p in parts]),
             key=np.concatenate([p.key for p in parts]), starts=starts)  # fmt: skip
    tmp.rename(path)
    return path
