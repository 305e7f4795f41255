"""What the bars around a gap say its fill should be: key, pitch classes, register at the joins, groove
and density.

Used twice by ``Infiller.fill``: as soft guidance while sampling (pitches outside the key cost
likelihood, the pitch classes of the bars a phrase away steer which notes are played, the context's
rhythm and groove where they go) and to rank the sampled candidates by how well they fit the context
(``Context.cost``). Only the context is read, never the notes being replaced: the 4 bars each side the
model reads, and for pitch classes the bars up to 8 away.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from reascribe.models.generator import density as fill_density
from reascribe.models.generator import joins
from reascribe.models.generator.vocab import Gap, GridNote, notes_per_beat

CONTEXT_BARS = 4  # bars of context each side, as the model reads them
# Songs repeat their harmony in phrases of 4 and 8 bars: the bars this far from each bar of the gap say
# more about its pitch classes than the bars around it (on the training parts' gaps of 1 / 2 / 4 bars, the
# pitch-class distance of their histogram to the gap's was 0.36 / 0.25 / 0.19 for piano, against 0.44 /
# 0.29 / 0.21 for the 4 bars each side; melodies alike). Drum patterns hold across the context, so drums
# keep the context's histogram.
PHRASE_BARS = (4, 8)
READ_BARS = max(PHRASE_BARS)  # bars each side a fill reads
# Weight of a pitched part's class misfit in Context.cost (chosen on the validation split from 1 / 2 / 3:
# 3 bought piano pitch classes 0.01 closer to the truth's than 2, at 0.1 semitone more join error). Drums
# keep 1: more weight on their classes only trades density and groove for them.
CLASS_WEIGHT = 2.0
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


def phrase_histogram(notes: list[GridNote], gap: Gap, bars: range | None = None) -> np.ndarray:
    """Pitch-class histogram of the bars ``PHRASE_BARS`` before and after each of ``bars`` (default: the
    gap's), outside the gap."""
    spb, gap_bars = gap.steps_per_bar, range(gap.first_bar, gap.first_bar + gap.n_bars)
    phrase = {b + side * k for b in bars or gap_bars for k in PHRASE_BARS for side in (-1, 1)} - set(gap_bars)
    return class_histogram([n for n in notes if n.onset // spb in phrase], False)


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
    classes: np.ndarray  # pitch classes the fill aims for: phrase_histogram (drums: the context's classes)
    bar_classes: np.ndarray  # pitched parts: the same for each bar of the gap (bars, 12)
    pattern: np.ndarray  # drums: groove of the context bars
    onsets: np.ndarray  # rhythm of the context bars
    stack: np.ndarray  # stacking of the context's onsets
    before: int | None  # top-voice pitch just before the gap
    after: int | None  # top-voice pitch just after it
    leaps: tuple[float | None, float | None]  # the top-voice leaps the joins should make (joins.predict)

    def cost(self, fill: list[GridNote]) -> float:
        """How badly ``fill`` fits: density, class and key misfit, leaps at the joins or groove misfit,
        each about 0-1, summed."""
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
    """The context of ``gap`` (up to 4 bars each side, and for pitch classes the bars ``PHRASE_BARS``
    away); ``density`` scales the notes per beat predicted from it."""
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
        phrase = phrase_histogram(notes, gap)
        classes = phrase if phrase.any() else classes
        gap_bars = range(gap.first_bar, gap.first_bar + gap.n_bars)
        by_bar = (phrase_histogram(notes, gap, range(b, b + 1)) for b in gap_bars)
        bar_classes = np.array([h if h.any() else classes for h in by_bar])
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

