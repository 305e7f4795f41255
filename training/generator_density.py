"""Fit the fill-density model (``models/generator/density.py``) on the training parts:

    .venv/bin/python -m training.generator_density --work build/generator

Cuts gaps in every training part as the infilling model's training does (1 to 8 bars, a quarter of
them off the bar line), reads the context's densities and fits one least-absolute-deviations model per
part and side, writing models/generator/density.json; the gap's span a phrase away is read only where it
lowers the validation error. Prints the mean absolute error in notes per beat on the validation parts,
of the model, of its bars-before model and of the old rule (the mean density of the 4 bars each side).
Takes about a minute.
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


def rows(parts: list, rng: np.random.Generator) -> dict[str, list[tuple[list[float], bool, float, float, list[float]]]]:
    """Per part kind: (features, anything after, true density, 4-bars-each-side mean, features of the bars
    before alone) of random gaps."""
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
            alone, _ = density.features([n for n in part.notes if n.onset < gap.start], gap)
            out[part.kind].append((x, after, truth, old, alone))
    return out


def fit(train: list, valid: list) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Weights per side (both sides read, the bars before alone), and per side whether the phrase spans
    are read: they are where they lower the validation error, and weigh 0 where they do not."""
    weights, phrase = {}, {}
    for side, column, spans in (("both", 0, density.PHRASE_COLUMNS), ("before", 4, density.PHRASE_COLUMNS_BEFORE)):
        used = [[r for r in data if side == "before" or r[1]] for data in (train, valid)]
        (x, y), (vx, vy) = [(np.array([r[column] for r in d]), np.array([r[2] for r in d])) for d in used]
        full = fit_lad(x, y)
        kept = [i for i in range(x.shape[1]) if i not in spans]
        without = np.zeros_like(full)
        without[kept] = fit_lad(x[:, kept], y)
        error = [float(np.mean(np.abs(np.maximum(0.0, vx @ w) - vy))) for w in (full, without)]
        phrase[side] = error[0] < error[1]
        weights[side] = full if phrase[side] else without
    return weights, phrase


def errors(data: list, weights: dict[str, np.ndarray]) -> tuple[float, float, float, int]:
    """(mean |error| of the model, of its bars-before model on every gap, of the old rule, gaps) over
    ``data``."""
    model = [abs(max(0.0, float(np.dot(weights["both" if r[1] else "before"], r[0]))) - r[2]) for r in data]
    alone = [abs(max(0.0, float(np.dot(weights["before"], r[4]))) - r[2]) for r in data]
    return float(np.mean(model)), float(np.mean(alone)), float(np.mean([abs(r[3] - r[2]) for r in data])), len(data)


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
    fits = {kind: fit(train[kind], valid[kind]) for kind in PARTS}
    weights = {kind: w for kind, (w, _) in fits.items()}
    print("| part | training gaps | validation gaps | validation error (notes/beat) | bars before alone "
          "| 4 bars each side | phrase spans read (both sides, before alone) |")
    print("|---|---|---|---|---|---|---|")
    for kind in PARTS:
        ours, alone, old, n = errors(valid[kind], weights[kind])
        read = " / ".join("yes" if fits[kind][1][side] else "no" for side in ("both", "before"))
        print(f"| {kind} | {len(train[kind])} | {n} | {ours:.3f} | {alone:.3f} | {old:.3f} | {read} |")
    args.out.write_text(json.dumps({
        "features": {"both": ["bar before", "bar after", "4 bars before", "4 bars after", "span 4 bars away",
                              "span 8 bars away", "1"],
                     "before": ["bar before", "4 bars before", "span 4 bars before", "span 8 bars before", "1"]},
        "parts": {k: {side: [round(float(c), 5) for c in w] for side, w in weights[k].items()} for k in PARTS},
    }, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
