"""Fit the fill-density model (``models/generator/density.py``) on the training parts:

    .venv/bin/python -m training.generator_density --work build/generator

Cuts gaps in every training part as the infilling model's training does (1 to 8 bars, a quarter of
them off the bar line), reads the context's densities and fits one least-absolute-deviations model per
part and side, writing models/generator/density.json. Prints the mean absolute error in notes per beat
on the validation parts next to the old rule (the mean density of the 4 bars each side). Takes about a
minute.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from reascribe.models.generator import density
from reascribe.models.generator.vocab import notes_per_beat
from training import generator_data
from training.lad import fit_lad

GAPS_PER_PART = 16
PARTS = ("melody", "piano", "drums")


def rows(parts: list, rng: np.random.Generator) -> dict[str, list[tuple[list[float], bool, float, float]]]:
    """Per part kind: (features, anything after, true density, 4-bars-each-side mean) of random gaps."""
    out: dict[str, list] = {k: [] for k in PARTS}
    for part in parts:
        for _ in range(GAPS_PER_PART):
            gap = generator_data.random_gap(part, rng)
            if gap is None:
                continue
            x, after = density.features(part.notes, gap)
            if not any(x[:-1]):
                continue  # an empty context: the default density, nothing to fit
            truth = notes_per_beat([n for n in part.notes if gap.start <= n.onset < gap.end], gap.end - gap.start)
            old = (x[2] + x[3]) / 2 if after else x[1]
            out[part.kind].append((x, after, truth, old))
    return out


def before_only(x: list[float], after: bool) -> list[float]:
    return [x[0], x[2], 1.0] if after else x


def fit(data: list) -> dict[str, np.ndarray]:
    y = np.array([r[2] for r in data])
    both = [i for i, r in enumerate(data) if r[1]]
    return {
        "both": fit_lad(np.array([data[i][0] for i in both]), y[both]),
        "before": fit_lad(np.array([before_only(r[0], r[1]) for r in data]), y),
    }


def errors(data: list, weights: dict[str, np.ndarray]) -> tuple[float, float, int]:
    """(mean |error| of the model, of the old rule, gaps) over ``data``."""
    model = [abs(max(0.0, float(np.dot(weights["both" if r[1] else "before"], r[0]))) - r[2]) for r in data]
    return float(np.mean(model)), float(np.mean([abs(r[3] - r[2]) for r in data])), len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.generator_density", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/generator"), help="the training data cache")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=density.COEFFICIENTS)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    train = rows(generator_data.cached_split(args.work, "train"), rng)
    valid = rows(generator_data.cached_split(args.work, "validation"), rng)
    weights = {kind: fit(train[kind]) for kind in PARTS}
    print("| part | training gaps | validation gaps | validation error (notes/beat) | 4 bars each side |")
    print("|---|---|---|---|---|")
    for kind in PARTS:
        ours, old, n = errors(valid[kind], weights[kind])
        print(f"| {kind} | {len(train[kind])} | {n} | {ours:.3f} | {old:.3f} |")
    args.out.write_text(json.dumps({
        "features": {"both": ["bar before", "bar after", "4 bars before", "4 bars after", "1"],
                     "before": ["bar before", "4 bars before", "1"]},
        "parts": {k: {side: [round(float(c), 5) for c in w] for side, w in weights[k].items()} for k in PARTS},
    }, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
