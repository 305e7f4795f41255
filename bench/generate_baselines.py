"""Baselines for bench/generate.py: copy the bar before the gap, and a token n-gram model.

The n-gram model reads the same tokens as reascribe (vocab.encode_bars of whole parts), trained on
the same training parts, and writes under the same grammar (grammar.MiddleGrammar), so the only
difference is the model: an interpolated 4-gram that sees the prefix and not the suffix.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from reascribe.models.generator.grammar import MiddleGrammar
from reascribe.models.generator.infill import finish
from reascribe.models.generator.vocab import VOCAB, Gap, GridNote, decode_bars, encode_bars, fim_middle

ORDER = 4
# Interpolation weights of the 4-, 3-, 2-, 1-gram and uniform distributions (fixed: Jelinek-Mercer).
LAMBDAS = (0.45, 0.25, 0.15, 0.1, 0.05)


def copy_bar_before(notes: list[GridNote], gap: Gap, part: str) -> list[GridNote]:
    """The bar before the gap, repeated until the gap ends."""
    spb = gap.steps_per_bar
    source = [n for n in notes if (gap.first_bar - 1) * spb <= n.onset < gap.first_bar * spb]
    copied = [GridNote(n.onset + k * spb, n.pitch, n.duration, n.velocity)
              for k in range(1, gap.n_bars + 1) for n in source]
    return finish(copied, gap, part)


class NGram:
    def __init__(self) -> None:
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(ORDER)]
        self._cache: dict[tuple, np.ndarray] = {}

    def train(self, parts) -> "NGram":
        for part in parts:
            tokens = [VOCAB.BAR] + encode_bars(part.notes, 0, part.n_bars, part.steps_per_bar, part.kind == "drums")
            for i in range(1, len(tokens)):
                for k in range(ORDER):
                    if i - k >= 0:
                        self.counts[k][tuple(tokens[i - k : i])][tokens[i]] += 1
        return self

    def distribution(self, history: list[int]) -> np.ndarray:
        key = tuple(history[-(ORDER - 1):])
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        p = np.full(len(VOCAB), LAMBDAS[-1] / len(VOCAB))
        for k in range(ORDER):
            h = key[len(key) - k :] if k else ()
            counter = self.counts[k].get(h)
            weight = LAMBDAS[ORDER - 1 - k]
            if counter:
                total = sum(counter.values())
                for token, c in counter.items():
                    p[token] += weight * c / total
            else:
                p += weight / len(VOCAB)  # an unseen history passes its weight to the uniform
        self._cache[key] = p
        return p

    def fill(self, notes: list[GridNote], gap: Gap, part: str, temperature: float,
             rng: np.random.Generator) -> list[GridNote]:
        history = _prefix_tokens(notes, gap, part)  # the middle's BAR continues the stream, as in training
        grammar, written = MiddleGrammar(gap, part), []
        while not grammar.done and len(written) < 2000:
            p = self.distribution(history) * grammar.mask().numpy()
            if grammar.bars == gap.n_bars and p[VOCAB.EOS] == 0:
                p[VOCAB.EOS] = 1e-9  # never trained on EOS: it ends when a bar line would pass the gap
            p = p ** (1 / temperature)
            token = int(rng.choice(len(p), p=p / p.sum()))
            grammar.push(token)
            history.append(token)
            written.append(token)
        return finish(decode_bars(written, gap.first_bar, gap.steps_per_bar), gap, part)

    def nll(self, notes: list[GridNote], gap: Gap, part: str, middle: list[GridNote]) -> tuple[float, int]:
        history = _prefix_tokens(notes, gap, part)
        total, body = 0.0, fim_middle(middle, gap, part)[:-1]  # bars and notes; EOS is not a stream token
        for token in body:
            total -= math.log(self.distribution(history)[token])
            history.append(token)
        return total, len(body)


def _prefix_tokens(notes: list[GridNote], gap: Gap, part: str) -> list[int]:
    first = max(0, gap.first_bar - 4)
    before = [n for n in notes if n.onset < gap.start]
    return encode_bars(before, first, gap.first_bar - first, gap.steps_per_bar, part == "drums")
