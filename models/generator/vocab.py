"""Note events on a sixteenth-note grid, and the token vocabulary the infilling model reads and writes.

A part is a list of ``GridNote`` (onset and duration in sixteenths from the first bar line, so tempo
never enters the representation). Bars are written ``BAR`` then, per onset, ``POS`` and one group per
note: ``PITCH DUR VEL`` for pitched parts, ``DRUM VEL`` for drums. A fill-in-the-middle example is::

    PART METER DENS LEN POS(start) POS(last) PRE <prefix bars> SUF <suffix bars> MID <middle bars> EOS

``LEN`` counts the bars the gap touches; ``POS(start)`` is the gap's first position in its first bar
and ``POS(last)`` its last position in its last bar, so gaps need not start or end on a bar line.
"""

from __future__ import annotations

from dataclasses import dataclass

from reascribe.models.drums.classes import CLASSES as DRUM_CLASSES
from reascribe.models.drums.classes import GM_NOTE, TD11_CLASS

STEPS_PER_BEAT = 4  # sixteenth notes per quarter note
MAX_STEPS_PER_BAR = 32  # 8/4 at most
MAX_GAP_BARS = 8
# Duration bins in sixteenths: fine where rhythm lives, coarse for held notes.
DUR_BINS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
VEL_BIN_WIDTH = 16  # 8 velocity bins over 0-127
N_VEL = 128 // VEL_BIN_WIDTH
# Density bins: notes per beat of the middle; bin 0 is an empty middle.
DENSITY_EDGES = (0.01, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.5)
N_DENSITY = len(DENSITY_EDGES) + 1
PARTS = ("melody", "piano", "drums")  # monophonic line, polyphonic keys, drum kit
MAX_CONTEXT_BARS = 4  # bars of a prompt's prefix or suffix beyond the gap's own
# Where a token sits (annotate): its segment, and its bar counted from the gap's first bar (prefix bars
# from -MAX_CONTEXT_BARS, suffix bars up to MAX_GAP_BARS - 1 + MAX_CONTEXT_BARS), as a row of a table
# whose row 0 is for tokens outside any bar.
SEGMENTS = ("header", "prefix", "suffix", "middle")
MIDDLE = SEGMENTS.index("middle")
BAR_ROWS = 1 + MAX_CONTEXT_BARS + MAX_GAP_BARS + MAX_CONTEXT_BARS


@dataclass(frozen=True, order=True)
class GridNote:
    onset: int  # sixteenths from the part's first bar line
    pitch: int  # MIDI pitch, or the drum class index for drums
    duration: int  # sixteenths, >= 1
    velocity: int  # 1-127


class Vocab:
    """Token ids, in fixed blocks so a checkpoint's vocabulary is defined by this file alone."""

    def __init__(self) -> None:
        names = ["PAD", "EOS", "PRE", "SUF", "MID", "BAR"]
        names += [f"PART_{p}" for p in PARTS]
        names += [f"METER_{s}" for s in range(1, MAX_STEPS_PER_BAR + 1)]
        names += [f"LEN_{n}" for n in range(1, MAX_GAP_BARS + 1)]
        names += [f"DENS_{d}" for d in range(len(DENSITY_EDGES) + 1)]
        names += [f"POS_{p}" for p in range(MAX_STEPS_PER_BAR)]
        names += [f"PITCH_{p}" for p in range(128)]
        names += [f"DRUM_{c}" for c in DRUM_CLASSES]
        names += [f"DUR_{d}" for d in DUR_BINS]
        names += [f"VEL_{v}" for v in range(N_VEL)]
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        for special in ("PAD", "EOS", "PRE", "SUF", "MID", "BAR"):
            setattr(self, special, self.index[special])
        self.part0 = self.index["PART_melody"]
        self.meter0 = self.index["METER_1"] - 1  # METER_s at meter0 + s
        self.len0 = self.index["LEN_1"] - 1
        self.dens0 = self.index["DENS_0"]
        self.pos0 = self.index["POS_0"]
        self.pitch0 = self.index["PITCH_0"]
        self.drum0 = self.index[f"DRUM_{DRUM_CLASSES[0]}"]
        self.dur0 = self.index[f"DUR_{DUR_BINS[0]}"]
        self.vel0 = self.index["VEL_0"]

    def __len__(self) -> int:
        return len(self.names)

    def kind(self, token: int) -> str:
        """The block a token belongs to: 'POS', 'PITCH', 'DRUM', 'DUR', 'VEL', 'BAR', 'EOS', ..."""
        return self.names[token].split("_")[0]


VOCAB = Vocab()


def duration_bin(duration: int) -> int:
    """Index of the nearest duration bin (sixteenths)."""
    return min(range(len(DUR_BINS)), key=lambda i: (abs(DUR_BINS[i] - duration), i))


def velocity_bin(velocity: int) -> int:
    return min(N_VEL - 1, max(0, velocity) // VEL_BIN_WIDTH)


def velocity_of_bin(index: int) -> int:
    return min(127, index * VEL_BIN_WIDTH + VEL_BIN_WIDTH // 2)


def density_bin(notes_per_beat: float) -> int:
    return sum(notes_per_beat >= edge for edge in DENSITY_EDGES)


def drum_class_of(note: int) -> int | None:
    """Drum class index of a GM or Groove MIDI (TD-11) note, None for notes outside the kit."""
    name = TD11_CLASS.get(note) or next((c for c, n in GM_NOTE.items() if n == note), None)
    return DRUM_CLASSES.index(name) if name else None


def drum_note_of(index: int) -> int:
    return GM_NOTE[DRUM_CLASSES[index]]


def encode_bars(notes: list[GridNote], first_bar: int, n_bars: int, steps_per_bar: int, drums: bool) -> list[int]:
    """Tokens of bars ``[first_bar, first_bar + n_bars)``: every bar starts with BAR, even an empty one."""
    v = VOCAB
    lo, hi = first_bar * steps_per_bar, (first_bar + n_bars) * steps_per_bar
    inside = sorted(n for n in notes if lo <= n.onset < hi)
    tokens: list[int] = []
    bar, pos = first_bar - 1, -1
    for note in inside:
        note_bar = note.onset // steps_per_bar
        while bar < note_bar:
            tokens.append(v.BAR)
            bar, pos = bar + 1, -1
        note_pos = note.onset - bar * steps_per_bar
        if note_pos != pos:
            tokens.append(v.pos0 + note_pos)
            pos = note_pos
        if drums:
            tokens += [v.drum0 + note.pitch, v.vel0 + velocity_bin(note.velocity)]
        else:
            tokens += [v.pitch0 + note.pitch, v.dur0 + duration_bin(note.duration),
                       v.vel0 + velocity_bin(note.velocity)]
    tokens += [v.BAR] * (first_bar + n_bars - 1 - bar)
    return tokens


def decode_bars(tokens: list[int], first_bar: int, steps_per_bar: int) -> list[GridNote]:
    """Notes of tokens written by ``encode_bars`` (or sampled in its grammar); stray tokens are skipped."""
    v = VOCAB
    notes: list[GridNote] = []
    bar, pos, pitch, duration = first_bar - 1, 0, None, 1
    for token in tokens:
        kind = v.kind(token)
        if kind == "BAR":
            bar, pos = bar + 1, 0
        elif kind == "POS":
            pos = token - v.pos0
        elif kind == "PITCH":
            pitch, duration = token - v.pitch0, 1
        elif kind == "DRUM":
            pitch, duration = token - v.drum0, 1
        elif kind == "DUR":
            duration = DUR_BINS[token - v.dur0]
        elif kind == "VEL" and pitch is not None:
            notes.append(GridNote(bar * steps_per_bar + pos, pitch, duration, velocity_of_bin(token - v.vel0)))
            pitch = None
        elif kind == "EOS":
            break
    return notes


@dataclass(frozen=True)
class Gap:
    """Where the fill goes, in sixteenths on the part's bar grid: ``[start, end)``."""

    start: int
    end: int
    steps_per_bar: int

    @property
    def first_bar(self) -> int:
        return self.start // self.steps_per_bar

    @property
    def n_bars(self) -> int:
        return (self.end - 1) // self.steps_per_bar - self.first_bar + 1

    @property
    def start_pos(self) -> int:
        return self.start - self.first_bar * self.steps_per_bar

    @property
    def last_pos(self) -> int:
        return (self.end - 1) % self.steps_per_bar


def fim_prompt(
    notes: list[GridNote],
    gap: Gap,
    part: str,
    density: int,
    context_bars: int,
    use_suffix: bool = True,
) -> list[int]:
    """Header, prefix and suffix of an infilling example, ending with MID (the model writes the rest).

    The prefix is the ``context_bars`` bars before the gap's first bar plus that bar's notes before the
    gap; the suffix is the gap's last bar from the gap end on plus ``context_bars`` bars after it.
    """
    v = VOCAB
    spb, drums = gap.steps_per_bar, part == "drums"
    first, last = gap.first_bar, gap.first_bar + gap.n_bars - 1
    pre_first = max(0, first - context_bars)
    before = [n for n in notes if n.onset < gap.start]
    after = [n for n in notes if n.onset >= gap.end]
    tokens = [v.part0 + PARTS.index(part), v.meter0 + spb, v.dens0 + density, v.len0 + gap.n_bars,
              v.pos0 + gap.start_pos, v.pos0 + gap.last_pos, v.PRE]
    tokens += encode_bars(before, pre_first, first - pre_first + 1, spb, drums)
    tokens.append(v.SUF)
    if use_suffix:
        tokens += encode_bars(after, last, context_bars + 1, spb, drums)
    tokens.append(v.MID)
    return tokens


def bar_row(offset: int) -> int:
    """The row of the bar ``offset`` bars after the gap's first bar (clamped to the table)."""
    return 1 + min(max(offset + MAX_CONTEXT_BARS, 0), BAR_ROWS - 2)


def annotate(tokens: list[int]) -> tuple[list[int], list[int], int]:
    """(segment, bar row) of every token of a prompt and of any middle after it, and the prompt's density
    bin: so each token says which bar of the gap it belongs to, and the suffix's bars line up with the
    middle's. MID counts as the middle's; header, PRE and SUF sit in no bar."""
    v = VOCAB
    pre, suf, mid = tokens.index(v.PRE), tokens.index(v.SUF), tokens.index(v.MID)
    n_bars = next(t - v.len0 for t in tokens[:pre] if v.len0 < t <= v.len0 + MAX_GAP_BARS)
    density = next(t - v.dens0 for t in tokens[:pre] if v.dens0 <= t < v.dens0 + N_DENSITY)
    segments, bars = [0] * len(tokens), [0] * len(tokens)
    prefix_bars = tokens[pre:suf].count(v.BAR)
    # (first token, end, segment, offset of its first bar): the prefix ends in the gap's first bar, the
    # suffix starts in its last.
    for start, end, segment, first in ((pre + 1, suf, 1, 1 - prefix_bars), (suf + 1, mid, 2, n_bars - 1),
                                       (mid + 1, len(tokens), MIDDLE, 0)):
        bar = first - 1
        for i in range(start, end):
            bar += tokens[i] == v.BAR
            segments[i], bars[i] = segment, bar_row(bar)
    segments[mid] = MIDDLE
    return segments, bars, density


def fim_middle(notes: list[GridNote], gap: Gap, part: str) -> list[int]:
    """The target: the gap's bars (notes with onsets inside the gap), then EOS."""
    inside = [n for n in notes if gap.start <= n.onset < gap.end]
    return encode_bars(inside, gap.first_bar, gap.n_bars, gap.steps_per_bar, part == "drums") + [VOCAB.EOS]


def notes_per_beat(notes: list[GridNote], n_steps: int) -> float:
    return len(notes) * STEPS_PER_BEAT / max(1, n_steps)
