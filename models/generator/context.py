"""What the bars around a gap say its fill should be: key, pitch classes, register at the joins, groove
and density.

Used twice by ``Infiller.fill``: as soft guidance while sampling (pitches outside the key cost
likelihood, the pitch classes of the bars where the song repeats steer which notes are played, the context's
rhythm and groove where they go) and to rank the sampled candidates by how well they fit the context
(``Context.cost``). Only the context is read, never the notes being replaced: the 4 bars each side the
model reads, and for pitch classes the bars where the part repeats itself, up to 34 bars away.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from reascribe.models.generator import density as fill_density
from reascribe.models.generator import joins
from reascribe.models.generator.vocab import Gap, GridNote, notes_per_beat

CONTEXT_BARS = 4  # bars of context each side, as the model reads them
# Songs repeat themselves, though not always every 4 or 8 bars. Each offset of up to 32 bars is scored by
# how well the bars that far from the 2 bars each side of the gap match them (pitch-class distance), and the
# gap's pitch classes are read from the bars at the best-matching offsets. On gaps of 1 / 2 / 4 bars cut in
# the training parts, this target's pitch-class distance to the gap's histogram was 0.17 / 0.14 / 0.14 for
# piano and 0.15 / 0.18 / 0.15 for melody, against 0.35 / 0.26 / 0.19 and 0.39 / 0.31 / 0.23 for the bars 4
# and 8 away from each gap bar (0.27 / 0.22 / 0.19 and 0.33 / 0.32 / 0.30 with only the bars before).
# The settings below were chosen on those gaps (offsets up to 16 or 32 bars, 1 to 4 reference bars, T from
# 0.02 to 0.4). Drum patterns hold across the context (repeats found by drum classes or groove did not
# beat it), so drums keep the context's histogram.
REPEAT_OFFSETS = range(1, 33)  # bars
REPEAT_REFERENCES = 2  # bars each side of the gap whose repeats are looked for
REPEAT_TEMPERATURE = 0.03  # an offset's weight is exp(-distance / T): the best-matching offsets dominate
READ_BARS = max(REPEAT_OFFSETS) + REPEAT_REFERENCES  # bars each side a fill reads
# Weight of a pitched part's class misfit in Context.cost (chosen on the validation split from 1 / 2 / 3:
# 3 bought piano pitch classes 0.01 closer to the truth's than 2, at 0.1 semitone more join error). Drums
# keep 1: more weight on their classes only trades density and groove for them.
CLASS_WEIGHT = 2.0
# Weight of the mean class misfit of the fill's bars, each against the repeats of that bar (chosen on the
# validation split from 0 / 2 / 4 with class guidance 1.0: 2 brought piano pitch classes from 0.330 / 0.306 /
# 0.292 to 0.303 / 0.290 / 0.284 at 1 / 2 / 4 bars, melody from 0.295 / 0.278 / 0.266 to 0.279 / 0.267 /
# 0.261, for up to 0.13 semitone more piano join error, which 32 candidates won back at 1 bar).
BAR_CLASS_WEIGHT = 2.0
N_DRUM = 9
MAX_STACK = 8  # notes at one onset that stacking() tells apart
# Krumhansl-Kessler key profiles.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
SCALES = ((MAJOR, (0, 2, 4, 5, 7, 9, 11)), (MINOR, (0, 2, 3, 5, 7, 8, 10)))


def key_scale(notes: list[GridNote]) -> frozenset[int]:
    """Pitch classes of the major or minor key whose profile best correlates with ``notes``
    (duration-weighted); empty without notes."""
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.duration
    if not hist.any() or np.ptp(hist) == 0:
        return frozenset()
    best, scale = -2.0, frozenset()
    for profile, steps in SCALES:
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
            if r > best:
                best, scale = r, frozenset((tonic + s) % 12 for s in steps)
    return scale


def top_voice(notes: list[GridNote]) -> list[GridNote]:
    """The highest note at each onset, in time order."""
    by_onset: dict[int, GridNote] = {}
    for n in notes:
        if n.onset not in by_onset or n.pitch > by_onset[n.onset].pitch:
            by_onset[n.onset] = n
    return [by_onset[k] for k in sorted(by_onset)]


def class_histogram(notes: list[GridNote], drums: bool) -> np.ndarray:
    """Share of notes per pitch class (per drum class for drums)."""
    h = np.zeros(N_DRUM if drums else 12)
    for n in notes:
        h[n.pitch if drums else n.pitch % 12] += 1
    return h / h.sum() if h.sum() else h


def repeat_histograms(notes: list[GridNote], gap: Gap) -> tuple[np.ndarray, np.ndarray] | None:
    """Pitch-class histograms the gap should have where the part repeats the bars around it: (the whole
    gap's, one per gap bar), or None when no bar next to the gap has notes that recur within reach.

    An offset's distance is the mean pitch-class distance between the bars next to the gap (the
    ``REPEAT_REFERENCES`` each side that have notes) and the bars that far from them; each gap bar then
    takes the histograms of the bars at every offset from it, weighted by exp(-distance / T). Bars
    outside the notes read (after the last, before the first, or in the gap) are unknown, not silent."""
    spb, n, lo = gap.steps_per_bar, gap.n_bars, gap.first_bar - READ_BARS
    counts = np.zeros((n + 2 * READ_BARS, 12))
    for note in notes:
        row = note.onset // spb - lo
        if 0 <= row < len(counts) and not gap.start <= note.onset < gap.end:
            counts[row, note.pitch % 12] += 1
    played = np.flatnonzero(counts.sum(1))
    if not played.size:
        return None
    known = np.zeros(len(counts), bool)
    known[played[0] : played[-1] + 1] = True
    gap_rows = np.arange(READ_BARS, READ_BARS + n)
    known[gap_rows] = False
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    near = [*range(READ_BARS - REPEAT_REFERENCES, READ_BARS), *range(READ_BARS + n, READ_BARS + n + REPEAT_REFERENCES)]
    references = [r for r in near if known[r] and counts[r].any()]
    distances = {}
    for offset in (side * k for k in REPEAT_OFFSETS for side in (-1, 1)):
        pairs = [(r, r + offset) for r in references if known[r + offset] and counts[r + offset].any()]
        if pairs:
            distances[offset] = np.mean([0.5 * np.abs(shares[a] - shares[b]).sum() for a, b in pairs])
    if not distances:
        return None
    best = min(distances.values())
    whole, by_bar = np.zeros(12), np.zeros((n, 12))
    for offset, distance in distances.items():
        weight = np.exp(-(distance - best) / REPEAT_TEMPERATURE)
        rows = gap_rows + offset
        heard = known[rows]
        if heard.any():
            total = counts[rows[heard]].sum(0)
            whole += weight * total / max(total.sum(), 1)
            by_bar[heard] += weight * shares[rows[heard]]
    if not whole.any():
        return None
    whole /= whole.sum()
    sums = by_bar.sum(1, keepdims=True)
    by_bar = np.where(sums > 0, by_bar / np.maximum(sums, 1e-12), whole)
    return whole, by_bar


def groove(notes: list[GridNote], bars: list[int], steps_per_bar: int) -> np.ndarray:
    """Mean (drum class x step) hits per bar over ``bars``."""
    pattern = np.zeros((N_DRUM, steps_per_bar))
    for n in notes:
        if n.onset // steps_per_bar in bars:
            pattern[n.pitch, n.onset % steps_per_bar] += 1
    return pattern / max(1, len(bars))


def rhythm(notes: list[GridNote], bars: list[int], steps_per_bar: int) -> np.ndarray:
    """Share of ``bars`` with an onset at each step."""
    steps = np.zeros(steps_per_bar)
    for bar, step in {divmod(n.onset, steps_per_bar) for n in notes}:
        if bar in bars:
            steps[step] += 1
    return steps / max(1, len(bars))


def stacking(notes: list[GridNote]) -> np.ndarray:
    """Of the onsets with at least k notes, the share with more (k = 1..MAX_STACK, at index k - 1)."""
    sizes = np.array(list(Counter(n.onset for n in notes).values()) or [0])
    at_least = np.array([(sizes >= k).sum() for k in range(1, MAX_STACK + 1)])
    more = np.array([(sizes > k).sum() for k in range(1, MAX_STACK + 1)])
    return np.where(at_least > 0, more / np.maximum(at_least, 1), 0.0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float((a * b).sum() / (na * nb)) if na and nb else 0.0


@dataclass(frozen=True)
class Context:
    gap: Gap
    part: str
    density: float  # notes per beat the fill aims for
    scale: frozenset[int]  # the context's key (pitched parts; empty when unknown)
    classes: np.ndarray  # pitch classes the fill aims for: repeat_histograms (drums: the context's classes)
    bar_classes: np.ndarray  # pitched parts: the same for each bar of the gap (bars, 12)
    pattern: np.ndarray  # drums: groove of the context bars
    onsets: np.ndarray  # rhythm of the context bars
    stack: np.ndarray  # stacking of the context's onsets
    before: int | None  # top-voice pitch just before the gap
    after: int | None  # top-voice pitch just after it
    leaps: tuple[float | None, float | None]  # the top-voice leaps the joins should make (joins.predict)

    def cost(self, fill: list[GridNote]) -> float:
        """How badly ``fill`` fits: density, class misfit (pitched parts: also each bar's that has notes),
        key misfit, leaps at the joins or groove misfit, each about 0-1, weighted and summed."""
        gap, drums = self.gap, self.part == "drums"
        cost = abs(notes_per_beat(fill, gap.end - gap.start) - self.density) / max(self.density, 0.25)
        if not fill:
            return cost + 1.0
        if self.classes.any():
            weight = 1.0 if drums else CLASS_WEIGHT
            cost += weight * 0.5 * float(np.abs(class_histogram(fill, drums) - self.classes).sum())
        bars, spb = range(gap.first_bar, gap.first_bar + gap.n_bars), gap.steps_per_bar
        if drums:
            return cost + float(np.mean([1 - cosine(groove(fill, [b], spb), self.pattern) for b in bars]))
        in_bars = [[n for n in fill if n.onset // spb == b] for b in bars]
        misfits = [np.abs(class_histogram(played, False) - target).sum() / 2
                   for played, target in zip(in_bars, self.bar_classes) if played]
        cost += BAR_CLASS_WEIGHT * float(np.mean(misfits))
        if self.onsets.any():
            cost += float(np.mean([1 - cosine(rhythm(fill, [b], spb), self.onsets) for b in bars]))
        if self.scale:
            cost += sum(n.pitch % 12 not in self.scale for n in fill) / len(fill)
        line = top_voice(fill)
        joins = (self.before, line[0].pitch), (line[-1].pitch, self.after)
        for (a, b), usual in zip(joins, self.leaps):
            if a is not None and b is not None:
                cost += abs(abs(b - a) - (usual or 0)) / 12
        return cost


def read_context(notes: list[GridNote], gap: Gap, part: str, density: float = 1.0) -> Context:
    """The context of ``gap`` (up to 4 bars each side, and for pitch classes the bars where the part
    repeats, up to ``READ_BARS`` away); ``density`` scales the notes per beat predicted from it."""
    spb = gap.steps_per_bar
    lo = max(0, (gap.first_bar - CONTEXT_BARS) * spb)
    hi = (gap.first_bar + gap.n_bars + CONTEXT_BARS) * spb
    before = [n for n in notes if lo <= n.onset < gap.start]
    after = [n for n in notes if gap.end <= n.onset < hi]
    drums = part == "drums"
    # The bars before the gap, and those after it up to the last note there (none for a continuation).
    after_end = max((n.onset // spb + 1 for n in after), default=0)
    bars = [*range(lo // spb, gap.first_bar), *range(gap.first_bar + gap.n_bars, after_end)]
    line_before, line_after = top_voice(before), top_voice(after)
    classes, bar_classes = class_histogram(before + after, drums), np.zeros((gap.n_bars, 12))
    if not drums:
        repeats = repeat_histograms(notes, gap)
        classes, bar_classes = repeats or (classes, np.tile(classes, (gap.n_bars, 1)))
    return Context(
        gap=gap,
        part=part,
        density=fill_density.predict(notes, gap, part) * density,
        scale=frozenset() if drums else key_scale(before + after),
        classes=classes,
        bar_classes=bar_classes,
        pattern=groove(before + after, bars, spb) if drums else np.zeros((N_DRUM, spb)),
        onsets=rhythm(before + after, bars, spb),
        stack=stacking(before + after),
        before=line_before[-1].pitch if line_before and not drums else None,
        after=line_after[0].pitch if line_after and not drums else None,
        leaps=(None, None) if drums else joins.predict(line_before, line_after, gap, part),
    )

