"""The top-voice leaps a fill should make at the gap's joins (from the note before the gap to its first
note, from its last note to the note after the gap), predicted from the bars around it.

One linear model per part and join, fit on the training parts by ``python -m training.generator_joins``
with least absolute deviations, reads the leap that copying the bar before the gap would make there,
the leap that copying the bar after it would make, and the usual leap (the median across that point of
the context's bars). Where nothing follows the gap a third model reads the bar before and the usual
leap alone; with no note in the bar before, the usual leaps are the prediction. A piano part repeats
its bars, so both copies carry weight; a melody's best guess is a step of 2 semitones. (On the
validation parts, in semitones at the start and end joins: piano 4.0 and 3.3 against 4.7 and 4.2 for
copying the bar before; melody 2.0 and 2.2 against 2.1 and 2.3 for the usual leap.)
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from reascribe.models.generator.vocab import Gap, GridNote

COEFFICIENTS = Path(__file__).with_name("joins.json")
Leaps = tuple[float | None, float | None]


def usual_leap(before: list[GridNote], after: list[GridNote], pos: int, spb: int) -> float | None:
    """Median |interval| of the top voice across position ``pos`` of the context's bars, on each side of
    the gap (the last note before that point to the first at or after it); None with no such pair."""
    leaps = []
    for line in (before, after):
        onsets = [n.onset for n in line]
        for bar in sorted({o // spb for o in onsets}):
            point = bar * spb + pos
            i = next((k for k, o in enumerate(onsets) if o >= point), None)
            if i:  # a note at or after the point, and one before it
                leaps.append(abs(line[i].pitch - line[i - 1].pitch))
    return float(np.median(leaps)) if leaps else None


def features(before: list[GridNote], after: list[GridNote], gap: Gap) -> tuple[list[float], list[float]] | None:
    """Features of the start and end joins from the top voices each side of ``gap``: the leap that
    copying the bar before would make, the one copying the bar after would make, the usual leap, 1; with
    nothing after the gap the start's alone, without the bar after (and the end's are empty). None
    without a note in the bar before the gap."""
    spb = gap.steps_per_bar
    bar_before = [n for n in before if n.onset >= gap.start - spb]
    if not bar_before:
        return None
    b = before[-1].pitch
    usual = [usual_leap(before, after, pos, spb) or 0.0 for pos in (gap.start % spb, gap.end % spb)]
    bar_after = [n for n in after if n.onset < gap.end + spb]
    if not bar_after:
        return [abs(bar_before[0].pitch - b), usual[0], 1.0], []
    a = after[0].pitch
    start = [abs(bar_before[0].pitch - b), abs(bar_after[0].pitch - b), usual[0], 1.0]
    end = [abs(a - bar_before[-1].pitch), abs(a - bar_after[-1].pitch), usual[1], 1.0]
    return start, end


@cache
def coefficients(path: Path = COEFFICIENTS) -> dict[str, dict[str, np.ndarray]]:
    data = json.loads(path.read_text())
    return {part: {name: np.array(c) for name, c in models.items()} for part, models in data["parts"].items()}


def predict(before: list[GridNote], after: list[GridNote], gap: Gap, part: str) -> Leaps:
    """The leaps at the start and end joins of a fill of ``gap`` in a pitched ``part``, from the top
    voices before and after it; None at a join with no note on its far side."""
    spb = gap.steps_per_bar
    usual = usual_leap(before, after, gap.start % spb, spb), usual_leap(before, after, gap.end % spb, spb)
    x = features(before, after, gap)
    if x is None:
        return usual
    start, end = x
    weights = coefficients()[part]
    if not end:  # nothing in the bar after the gap: its usual leap at the end, if any note follows
        return max(0.0, float(weights["start, nothing after"] @ start)), usual[1] if after else None
    return max(0.0, float(weights["start"] @ start)), max(0.0, float(weights["end"] @ end))
