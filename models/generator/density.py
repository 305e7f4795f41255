"""How many notes per beat a gap's fill should play, predicted from the bars around it.

One linear model per part, fit on the training parts by ``python -m training.generator_density`` with
least absolute deviations (the error that matters is an absolute one: notes per beat too many or too
few). It reads the bar just before the gap, the bar just after it and the four bars on each side: the
nearest bars say more about a phrase that ends or starts at the gap, the longer spans about the part.
Where nothing follows the gap (a continuation, or a gap at a part's end) a second model reads the bars
before it alone.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from reascribe.models.generator.vocab import STEPS_PER_BEAT, Gap, GridNote

COEFFICIENTS = Path(__file__).with_name("density.json")
SPAN_BARS = 4
EMPTY_CONTEXT = 1.0  # notes per beat with no notes around the gap, so a fill on an empty track plays


def features(notes: list[GridNote], gap: Gap) -> tuple[list[float], bool]:
    """(features, whether anything follows the gap). Features: notes per beat of the bar before, the bar
    after, the 4 bars before and the 4 bars after (clipped to the part's first bar and to the bar of its
    last note), then a constant 1; without notes after the gap: the bar before, the 4 bars before, 1."""
    spb = gap.steps_per_bar
    onsets = np.array(sorted(n.onset for n in notes if not gap.start <= n.onset < gap.end), dtype=np.int64)
    end = (int(onsets[-1]) // spb + 1) * spb if onsets.size else 0

    def density(lo: int, hi: int) -> float:
        if hi <= lo:
            return 0.0
        count = int(np.searchsorted(onsets, hi) - np.searchsorted(onsets, lo))
        return count * STEPS_PER_BEAT / (hi - lo)

    start = gap.start
    before = [density(max(0, start - spb), start), density(max(0, start - SPAN_BARS * spb), start)]
    if end <= gap.end:
        return [*before, 1.0], False
    after = [density(gap.end, min(end, gap.end + spb)), density(gap.end, min(end, gap.end + SPAN_BARS * spb))]
    return [before[0], after[0], before[1], after[1], 1.0], True


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

