"""Training data for the drum model: Groove MIDI performances rendered with many kits, augmented,
sometimes over a POP909 accompaniment, as features and onset labels.

Everything is drawn from one numpy Generator per (split, version, row), so a dataset is rebuilt from its
seed in any order and by any number of processes: the labels exactly, the audio to within -60 dB
(FluidSynth's first use of a sample in a process sounds a little different).
Only Groove MIDI rows with ``split == train`` (training) and ``split == validation`` (thresholds and
checkpoint choice) are read; its test split overlaps the StemGMD evaluation files.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
from tqdm import tqdm

from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES, GM_RENDER_NOTE, TD11_CLASS
from training import augment
from training.synth import Event, Preset, Renderer

DATA = Path(__file__).resolve().parents[2] / "shared/data/symbolic"
GROOVE, POP909 = DATA / "groove_midi", DATA / "pop909"
SR = features.SAMPLE_RATE
BACKGROUND_SONGS = range(1, 51)  # POP909 001-050, rendered once as accompaniment

# (soundfont, bank, program, weight). Acoustic kits dominate; electronic ones add variety.
KITS = [
    *[("fluidr3", 128, p, 1.0) for p in (0, 8, 16, 32, 40)],
    *[("musescore", 128, p, 1.0) for p in (0, 8, 16, 32, 40)],
    *[("timgm6mb", 128, p, 0.5) for p in (0, 8, 16, 32)],
    ("fluidr3", 128, 24, 0.2), ("fluidr3", 128, 25, 0.2), ("musescore", 128, 25, 0.2),
    ("black_pearl", 0, 0, 3.0), ("red_zeppelin", 0, 0, 3.0),
]  # fmt: skip
# The AVL kits have two toms (rack 45, floor 41) and their own notes above 47.
AVL_NOTE = {48: 45, 50: 45, 47: 45, 45: 45, 43: 41, 58: 41, 55: 49, 57: 49, 52: 49, 59: 51, 53: 51}
GROUPS = {"kick": 0, "snare": 1, "hihat_closed": 2, "hihat_open": 2, "tom_low": 3, "tom_mid": 3, "tom_high": 3, "crash": 4, "ride": 4}
MELODY_PROGRAMS = (73, 65, 66, 40, 56, 71, 80, 81, 52, 11, 27, 29, 68, 22)
HARMONY_PROGRAMS = (0, 1, 4, 5, 16, 17, 24, 25, 48, 49, 88, 89, 6, 19, 26, 61)
BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass
class Example:
    features: np.ndarray  # (frames, bands) float16
    onsets: np.ndarray  # (n, 3) int32: frame, class index, velocity


def groove_rows(split: str) -> list[dict]:
    with open(GROOVE / "info.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def groove_hits(midi_path: Path) -> list[tuple[float, int, int]]:
    """(time_s, TD-11 note, velocity) of the hits our classes cover."""
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    return sorted((n.start, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes if n.pitch in TD11_CLASS)


def _kit(rng: np.random.Generator) -> tuple[str, int, int]:
    weights = np.array([k[3] for k in KITS])
    sf, bank, program, _ = KITS[rng.choice(len(KITS), p=weights / weights.sum())]
    return sf, bank, program


def render_drums(hits, renderer: Renderer, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Audio and (frame, class, velocity) onsets of ``hits`` played at a random tempo on random kits."""
    stretch = 1 / rng.uniform(0.85, 1.2)
    gamma, vel_gain = rng.uniform(0.7, 1.4), rng.uniform(0.8, 1.2)
    single_kit = rng.random() < 0.6
    kits = [_kit(rng)] * 5 if single_kit else [_kit(rng) for _ in range(5)]
    presets = {g: Preset(*kits[g]) for g in range(5)}
    events = [Event(0.0, g, "cc", 7, int(rng.integers(70, 128))) for g in range(5)]
    onsets = []
    for time_s, note, velocity in hits:
        cls = TD11_CLASS[note]
        group = GROUPS[cls]
        key = GM_RENDER_NOTE[note]
        if presets[group].soundfont in ("black_pearl", "red_zeppelin"):
            key = AVL_NOTE.get(key, key)
        v = int(np.clip(round(127 * (velocity / 127) ** gamma * vel_gain), 1, 127))
        t = time_s * stretch
        events += [Event(t, group, "on", key, v), Event(t + 0.3, group, "off", key, 0)]
        onsets.append((int(round(t * features.FPS)), CLASSES.index(cls), velocity))
    duration = (hits[-1][0] * stretch if hits else 0.0) + 1.5
    return renderer.render(events, presets, duration), np.array(onsets, np.int32).reshape(-1, 3), duration


def render_background(song: int, renderer: Renderer, rng: np.random.Generator) -> np.ndarray:
    """A POP909 song on random General MIDI instruments, with a bass line on the chord roots."""
    folder = POP909 / f"{song:03d}"
    midi = pretty_midi.PrettyMIDI(str(folder / f"{song:03d}.mid"))
    sf = str(rng.choice(["fluidr3", "musescore", "timgm6mb"]))
    programs = {"MELODY": rng.choice(MELODY_PROGRAMS), "BRIDGE": rng.choice(MELODY_PROGRAMS), "PIANO": rng.choice(HARMONY_PROGRAMS)}
    presets, events = {}, []
    for channel, inst in enumerate(midi.instruments[:3]):
        presets[channel] = Preset(sf, 0, int(programs.get(inst.name, 0)))
        for n in inst.notes:
            events += [Event(n.start, channel, "on", n.pitch, n.velocity), Event(n.end, channel, "off", n.pitch, 0)]
    presets[3] = Preset(sf, 0, int(rng.choice(BASS_PROGRAMS)))
    beats = np.loadtxt(folder / "beat_midi.txt", usecols=0, ndmin=1)
    per_beat = rng.random() < 0.5
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        start, end, label = line.split()[:3]
        if label == "N":
            continue
        root = label.split(":")[0]
        pitch = 36 + (PITCH_CLASS[root[0]] + root.count("#") - root.count("b")) % 12
        starts = [float(start)] + ([b for b in beats if float(start) < b < float(end)] if per_beat else [])
        for s, e in zip(starts, starts[1:] + [float(end)]):
            events += [Event(s, 3, "on", pitch, int(rng.integers(70, 110))), Event(e - 0.02, 3, "off", pitch, 0)]
    audio = renderer.render(events, presets, midi.get_end_time() + 1.0)
    return augment.random_eq(audio, rng)


def mix_example(drums: np.ndarray, background: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    drums = augment.chain(drums, rng)
    if background is not None and len(background) > SR:
        start = int(rng.integers(0, max(1, len(background) - len(drums))))
        bg = np.asarray(background[start : start + len(drums)], np.float32)
        bg = np.pad(bg, (0, len(drums) - len(bg)))
        ratio_db = rng.uniform(-6, 10)  # drums over accompaniment
        rms_d, rms_b = np.sqrt(np.mean(drums**2)) + 1e-9, np.sqrt(np.mean(bg**2)) + 1e-9
        drums = drums + bg * rms_d / rms_b * 10 ** (-ratio_db / 20)
        if rng.random() < 0.5:
            drums = augment.compress(drums, rng)  # bus compression
    if rng.random() < 0.5:
        drums = augment.noise(drums, rng)
    return augment.to_peak(drums, rng)


@functools.lru_cache(maxsize=1)
def _renderer() -> Renderer:
    return Renderer(SR)


def build_example(job: tuple[str, int, int, int, str, str | None]) -> Example:
    split, version, index, seed, midi_rel, background_path = job
    rng = np.random.default_rng([seed, version, index, 0 if split == "train" else 1])
    hits = groove_hits(GROOVE / midi_rel)
    drums, onsets, _ = render_drums(hits, _renderer(), rng)
    background = None
    if background_path and rng.random() < 0.5:
        pool = np.load(background_path, mmap_mode="r")
        background = pool[rng.integers(0, len(pool))]
    audio = mix_example(drums, background, rng)
    spec = features.spectrogram(audio).astype(np.float16)
    return Example(spec, onsets[onsets[:, 0] < len(spec)])


def build_backgrounds(path: Path, seed: int) -> None:
    """Render the accompaniment pool once: (songs, samples) float16, cut to the shortest song."""
    renderer = _renderer()
    songs = [render_background(s, renderer, np.random.default_rng([seed, s])) for s in tqdm(BACKGROUND_SONGS, desc="accompaniment")]
    length = min(len(s) for s in songs)
    pool = np.stack([augment.to_peak(s[:length], np.random.default_rng(0), -6, -6) for s in songs]).astype(np.float16)
    np.save(path, pool)


def build_split(out: Path, split: str, version: int, seed: int, background: Path | None, processes: int = 2) -> Path:
    """Render every row of ``split`` once (as ``version``) into one .npz shard; skipped if present."""
    path = out / f"{split}_v{version}.npz"
    if path.exists():
        return path
    rows = groove_rows(split)
    jobs = [(split, version, i, seed, r["midi_filename"], str(background) if background else None) for i, r in enumerate(rows)]
    specs, onsets, starts, offset = [], [], [], 0
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for ex in tqdm(pool.imap(build_example, jobs, chunksize=4), total=len(jobs), desc=f"{split} v{version}"):
            specs.append(ex.features)
            onsets.append(ex.onsets + np.array([offset, 0, 0], np.int32))
            starts.append(offset)
            offset += len(ex.features)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, features=np.concatenate(specs), onsets=np.concatenate(onsets), starts=np.array(starts + [offset]))
    tmp.rename(path)
    return path
