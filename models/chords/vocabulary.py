"""The chord vocabulary: 13 qualities on 12 roots plus no-chord, inversions through the bass note.

Labels are Harte syntax (``C:maj7/3``, ``N``) as in MIREX. Any Harte label maps onto the vocabulary by
its pitch-class set: exact quality first, then with the tensions (9ths, 11ths, 13ths) removed, then the
quality sharing most tones. Class 0 is N; chord classes are ``1 + root * N_QUALITIES + quality``.
"""

from __future__ import annotations

import functools

import mir_eval
import numpy as np

QUALITIES = ("maj", "min", "7", "maj7", "min7", "dim", "aug", "sus2", "sus4", "maj6", "min6", "dim7", "hdim7")
N_QUALITIES = len(QUALITIES)
N_CLASSES = 1 + 12 * N_QUALITIES
NO_BASS = 12  # bass class of N
PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# Harte's interval names for the bass of an inversion, by semitones above the root.
BASS_DEGREE = {0: "1", 1: "b2", 2: "2", 3: "b3", 4: "3", 5: "4", 6: "b5", 7: "5", 8: "#5", 9: "6", 10: "b7", 11: "7"}


@functools.cache
def templates() -> np.ndarray:
    """(N_QUALITIES, 12) pitch classes of each quality on root C."""
    return np.array([mir_eval.chord.quality_to_bitmap(q) for q in QUALITIES], np.int8)


def chord_class(root: int, quality: int) -> int:
    return 1 + root * N_QUALITIES + quality


def root_quality(cls: int) -> tuple[int, int]:
    return divmod(cls - 1, N_QUALITIES)


def class_tones(cls: int) -> np.ndarray:
    """(12,) absolute pitch classes of a chord class; zeros for N."""
    if cls == 0:
        return np.zeros(12, np.int8)
    root, quality = root_quality(cls)
    return np.roll(templates()[quality], root)


def nearest_quality(bitmap: np.ndarray) -> int:
    """The quality whose tones (relative to the root) best match ``bitmap``."""
    tpl = templates()
    exact = np.flatnonzero((tpl == bitmap).all(axis=1))
    if len(exact):
        return int(exact[0])
    plain = bitmap.copy()
    if bitmap[3] or bitmap[4]:  # with a third, 9ths and 11ths are tensions, not sus tones
        plain[[2, 5]] = 0
    if bitmap[10] or bitmap[11]:  # with a seventh, a 6th is a 13th
        plain[9] = 0
    exact = np.flatnonzero((tpl == plain).all(axis=1))
    if len(exact):
        return int(exact[0])
    shared = (tpl & bitmap).sum(axis=1)
    missing = (tpl & ~bitmap.astype(bool)).sum(axis=1)  # template tones the chord lacks
    extra = (bitmap & ~tpl.astype(bool)).sum(axis=1)  # chord tones the template lacks
    score = shared - missing - 0.5 * extra
    return int(np.argmax(score))  # ties: the first (simplest) quality


@functools.lru_cache(maxsize=4096)
def encode(label: str) -> tuple[int, int, np.ndarray]:
    """Harte ``label`` -> (vocabulary class, bass pitch class or NO_BASS, (12,) absolute chord tones)."""
    root, bitmap, bass = mir_eval.chord.encode(label)
    if root < 0 or not bitmap.any():  # N, X, or a root alone
        return 0, NO_BASS, np.zeros(12, np.int8)
    bitmap = np.asarray(bitmap, np.int8)
    cls = chord_class(root, nearest_quality(bitmap))
    return cls, (root + bass) % 12, np.roll(bitmap, root)


def transpose(label: str, semitones: int) -> str:
    """``label`` with its root moved; the quality and the bass interval are kept as written."""
    if label in ("N", "X"):
        return label
    root, sep, rest = label.partition(":")
    if not sep:  # "C" or "C/3": a major chord written without its quality
        root, sep, rest = label.partition("/")
    new_root = PITCH_NAMES[(mir_eval.chord.pitch_class_to_semitone(root) + semitones) % 12]
    return f"{new_root}{sep}{rest}"


def label(cls: int, bass_pc: int | None = None) -> str:
    """The Harte label of a class, with ``/degree`` when ``bass_pc`` is a chord tone other than the root."""
    if cls == 0:
        return "N"
    root, quality = root_quality(cls)
    text = f"{PITCH_NAMES[root]}:{QUALITIES[quality]}"
    if bass_pc is not None and bass_pc != NO_BASS:
        interval = (bass_pc - root) % 12
        if interval and templates()[quality][interval]:
            text += f"/{BASS_DEGREE[interval]}"
    return text


KEY_NAMES = tuple(f"{p}:{m}" for m in ("maj", "min") for p in PITCH_NAMES)  # key class k: tonic k % 12


def key_class(key_label: str) -> int:
    """``Gb:maj`` / ``A:min`` -> 0..23; -1 when not a major or minor key."""
    tonic, _, mode = key_label.partition(":")
    if mode not in ("maj", "min"):
        return -1
    return mir_eval.chord.pitch_class_to_semitone(tonic) + (12 if mode == "min" else 0)


SYMBOL_SUFFIX = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "aug": "aug",
                 "sus2": "sus2", "sus4": "sus4", "maj6": "6", "min6": "m6", "dim7": "dim7", "hdim7": "m7b5"}  # fmt: skip
NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
NAMES_PLAIN = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # C major: the usual spellings
SHARP_MAJOR_TONICS = {7, 2, 9, 4, 11, 6}  # G D A E B F# (Db rather than C#)


def note_names(key: str | None) -> tuple[str, ...]:
    """Names of the 12 pitch classes spelled for ``key``: sharps in sharp keys, flats in flat keys."""
    k = key_class(key) if key else -1
    if k < 0:
        return NAMES_PLAIN
    major_tonic = k % 12 if k < 12 else (k + 3) % 12  # a minor key is spelled as its relative major
    if major_tonic == 0:
        return NAMES_PLAIN
    return NAMES_SHARP if major_tonic in SHARP_MAJOR_TONICS else NAMES_FLAT


def symbol(harte: str, key: str | None = None) -> str:
    """A chord symbol as on a lead sheet (``C:min7/b7`` -> ``Cm7/Bb``; ``N`` -> ``N.C.``), spelled for
    ``key``; a label outside the vocabulary keeps its Harte form."""
    if harte in ("N", "X"):
        return "N.C."
    quality = harte.partition(":")[2].partition("/")[0]
    if quality not in SYMBOL_SUFFIX:
        return harte
    names = note_names(key)
    root, _, bass = mir_eval.chord.encode(harte)
    text = names[root] + SYMBOL_SUFFIX[quality]
    return text + (f"/{names[(root + bass) % 12]}" if bass else "")
