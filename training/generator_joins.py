"""Fit the join models (``models/generator/joins.py``) on the training parts:

    .venv/bin/python -m training.generator_joins --work build/generator

Cuts gaps in every training melody and piano part as the infilling model's training does (1 to 8
bars, a quarter of them off the bar line), reads the top voices of the 4 bars each side and fits
least-absolute-deviations models of the true leaps at the start and end joins per part, writing
models/generator/joins.json. Prints the mean absolute error in semitones on the validation parts next
to copying the bar before the gap and the usual leap. Takes about half a minute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from reascribe.models.generator import joins
from reascribe.models.generator.context import CONTEXT_BARS, top_voice
from training import generator_data
from training.lad import fit_lad

GAPS_PER_PART = 16
PARTS = ("melody", "piano")
MODELS = ("start", "end", "start, nothing after")


def rows(parts: list, kind: str, rng: np.random.Generator) -> dict[str, list[tuple[list[float], float]]]:
    """Per model: (features, true leap) at the joins of random gaps in the parts of ``kind``."""
    out: dict[str, list] = {m: [] for m in MODELS}
    for part in (p for p in parts if p.kind == kind):
        for _ in range(GAPS_PER_PART):
            gap = generator_data.random_gap(part, rng)
            if gap is None:
                continue
            spb = gap.steps_per_bar
            lo, hi = gap.start - CONTEXT_BARS * spb, gap.end + CONTEXT_BARS * spb
            before = top_voice([n for n in part.notes if lo <= n.onset < gap.start])
            middle = top_voice([n for n in part.notes if gap.start <= n.onset < gap.end])
            after = top_voice([n for n in part.notes if gap.end <= n.onset < hi])
            x = joins.features(before, after, gap)
            if x is None or not middle:
                continue
            start = abs(middle[0].pitch - before[-1].pitch)
            out["start, nothing after"].append((joins.features(before, [], gap)[0], start))
            if x[1]:
                out["start"].append((x[0], start))
                out["end"].append((x[1], abs(after[0].pitch - middle[-1].pitch)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.generator_joins", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/generator"), help="the training data cache")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=joins.COEFFICIENTS)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    train_parts = generator_data.cached_split(args.work, "train")
    valid_parts = generator_data.cached_split(args.work, "validation")
    print("| part | join | training gaps | validation gaps | model (semitones) | copy the bar before | usual leap |")
    print("|---|---|---|---|---|---|---|")
    weights = {}
    for kind in PARTS:
        train, valid = rows(train_parts, kind, rng), rows(valid_parts, kind, rng)
        weights[kind] = {m: fit_lad(np.array([r[0] for r in train[m]]), np.array([r[1] for r in train[m]]))
                         for m in MODELS}
        for m in MODELS:
            x, y = np.array([r[0] for r in valid[m]]), np.array([r[1] for r in valid[m]])
            model = np.abs(np.maximum(0.0, x @ weights[kind][m]) - y).mean()
            print(f"| {kind} | {m} | {len(train[m])} | {len(y)} | {model:.2f} | {np.abs(x[:, 0] - y).mean():.2f} | "
                  f"{np.abs(x[:, -2] - y).mean():.2f} |")
    args.out.write_text(json.dumps({
        "features": {"start": ["copy the bar before", "copy the bar after", "usual leap", "1"],
                     "end": ["copy the bar before", "copy the bar after", "usual leap", "1"],
                     "start, nothing after": ["copy the bar before", "usual leap", "1"]},
        "parts": {k: {m: [round(float(c), 5) for c in w] for m, w in weights[k].items()} for k in PARTS},
    }, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
