"""How many notes per beat a gap's fill should play, predicted from the bars around it.

One linear model per part, fit on the training parts by ``python -m training.generator_density`` with
least absolute deviations (the error that matters is an absolute one: notes per beat too many or too
few). It reads the bar just before the gap, the bar just after it, the four bars on each side, and the
gap's own span 4 and 8 bars away: the nearest bars say more about a phrase that ends or starts at the gap,
the longer spans about the part, and the spans a phrase away about what the part plays at that point of
its phrases (drummers' fills). Where nothing follows the gap (a continuation, or a gap at a part's end) a
second model reads the bars before it alone.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from reascribe.models.generator.vocab import STEPS_PER_BEAT, Gap, GridNote

COEFFICIENTS = Path(__file__).with_name("density.json")
SPAN_BARS = 4
PHRASE_BARS = (4, 8)  # the gap's span this many bars away, each side
PHRASE_COLUMNS, PHRASE_COLUMNS_BEFORE = (4, 5), (2, 3)  # where features() puts them
EMPTY_CONTEXT = 1.0  # notes per beat with no notes around the gap, so a fill on an empty track plays


def features(notes: list[GridNote], gap: Gap) -> tuple[list[float], bool]:
    """(features, whether anything follows the gap). Features: notes per beat of the bar before, the bar
    after, the 4 bars before, the 4 bars after (clipped to the part's first bar and to the bar of its last
    note), the gap's span 4 and 8 bars away (the mean of those each side that lie in the part and clear
    of the gap; the mean of the 4-bar spans where none does), then a constant 1; without notes after the
    gap: the bar before, the 4 bars before, the spans 4 and 8 bars before (or the 4 bars before), 1."""
    spb = gap.steps_per_bar
    onsets = np.array(sorted(n.onset for n in notes if not gap.start <= n.onset < gap.end), dtype=np.int64)
    end = (int(onsets[-1]) // spb + 1) * spb if onsets.size else 0

    def density(lo: int, hi: int) -> float:
        if hi <= lo:
            return 0.0
        count = int(np.searchsorted(onsets, hi) - np.searchsorted(onsets, lo))
        return count * STEPS_PER_BEAT / (hi - lo)

    def phrase(bars: int, sides: tuple[int, ...], otherwise: float) -> float:
        shift = bars * spb
        spans = [(gap.start + s * shift, gap.end + s * shift) for s in sides]
        clear = [density(lo, hi) for lo, hi in spans if lo >= 0 and hi <= end and (hi <= gap.start or lo >= gap.end)]
        return float(np.mean(clear)) if clear else otherwise

    start = gap.start
    before = [density(max(0, start - spb), start), density(max(0, start - SPAN_BARS * spb), start)]
    if not onsets.size or onsets[-1] < gap.end:
        return [*before, *(phrase(b, (-1,), before[1]) for b in PHRASE_BARS), 1.0], False
    after = [density(gap.end, min(end, gap.end + spb)), density(gap.end, min(end, gap.end + SPAN_BARS * spb))]
    spans = (before[1] + after[1]) / 2
    return [before[0], after[0], before[1], after[1], *(phrase(b, (-1, 1), spans) for b in PHRASE_BARS), 1.0], True


@cache
def coefficients(path: Path = COEFFICIENTS) -> dict[str, dict[str, np.ndarray]]:
    data = json.loads(path.read_text())
    return {part: {side: np.array(c) for side, c in sides.items()} for part, sides in data["parts"].items()}


def predict(notes: list[GridNote], gap: Gap, part: str) -> float:
    """Notes per beat for a fill of ``gap`` in ``part``, from the notes around it (those inside the gap
    are ignored)."""
    x, after = features(notes, gap)
    if not any(x[:-1]):
        return EMPTY_CONTEXT
    weights = coefficients()[part]["both" if after else "before"]
    return max(0.0, float(np.dot(weights, x)))

