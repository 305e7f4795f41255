"""Gap-filling benchmark: reascribe's infilling model against three baselines, in one run.

Data (never trained on): POP909 songs 751-800 (MELODY and PIANO tracks, on their annotated beat grid)
and Groove MIDI ``test`` rows (drums), 50 parts of each kind. For each part and each gap length (1, 2
and 4 bars) three gaps (``--repeats``) are cut at seeded bars with at least 4 bars of context each side,
and every system fills each once: 150 gaps per kind and length.

Systems:
  reascribe      the shipped model with the product's defaults: prefix and suffix in (Infiller.fill,
                 temperature 0.8, density 1; density, key, class, groove and join guidance and candidates ranked by
                 how well they fit the context; chosen with --split validation);
  continuation   the same sampler with the suffix removed: guidance and ranking read only what comes
                 before the gap (a unidirectional continuation);
  n-gram         an interpolated token 4-gram trained on the same training parts, continuing the prefix;
  copy bar       the bar before the gap, repeated.
All samplers write under the same grammar and temperature, so every fill lies inside its gap.

Measures (mean over gaps; "truth" is the real middle, shown for reference):
  NLL            nats per token of the true middle's bar and note tokens (models with likelihoods);
  PC dist        total-variation distance of pitch-class histograms, fill vs truth (drums: drum classes);
  density err    |notes per beat of the fill - of the truth|;
  out-of-key     share of fill notes outside the key of the context (Krumhansl-Kessler profiles;
                 gaps with an empty context are left out);
  join err       semitones between |interval| at the joins (last prefix note -> first fill note, last
                 fill note -> first suffix note; top voice for piano) and the truth's intervals there;
  groove sim     drums: cosine similarity of the fill's per-bar (class x step) onset pattern to the
                 context bars' mean pattern.
The ranking scores candidates on their fit to the context (density, key, pitch classes, leaps at the
joins, rhythm or groove), which out-of-key and groove sim also measure; NLL, PC dist, density err and
join err compare with the true middle, which neither guidance nor ranking ever sees.
Timing: Infiller.fill of 4 and 8 bars (one variation and three), median of several gaps, on this machine.

Usage: python bench/generate.py [--parts N] [--repeats R] [--seed S] [--split validation] [--checkpoint PT]
       [--temperature T] [--guidance G] [--pace-guidance P] [--key-guidance K] [--class-guidance L]
       [--groove-guidance R] [--stack-guidance A] [--join-guidance J] [--candidates C]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from generate_baselines import NGram, copy_bar_before  # noqa: E402
from reascribe.generate import FillOptions  # noqa: E402
from reascribe.models.generator.context import class_histogram, cosine, groove, key_scale, top_voice  # noqa: E402
from reascribe.models.generator.infill import Infiller  # noqa: E402
from reascribe.models.generator.vocab import STEPS_PER_BEAT, Gap, GridNote  # noqa: E402
from training import generator_data  # noqa: E402

GAP_BARS = (1, 2, 4)
DEFAULT_TEMPERATURE = FillOptions().temperature  # the product's default
CONTEXT_BARS = 4
SYSTEMS = ("reascribe", "continuation", "n-gram", "copy bar")
BOOTSTRAP = 1000  # resamples of the gaps for each ratio's interval
LOWER_IS_BETTER = {"NLL": True, "PC dist": True, "density err": True, "out-of-key": True, "join err": True,
                   "groove sim": False}


def join_intervals(before: list[GridNote], fill: list[GridNote], after: list[GridNote]) -> list[float | None]:
    b, f, a = top_voice(before), top_voice(fill), top_voice(after)
    start = abs(f[0].pitch - b[-1].pitch) if b and f else None
    end = abs(a[0].pitch - f[-1].pitch) if a and f else None
    return [start, end]


def measures(fill: list[GridNote], truth: list[GridNote], notes: list[GridNote], gap: Gap, kind: str) -> dict:
    drums, spb = kind == "drums", gap.steps_per_bar
    beats = (gap.end - gap.start) / STEPS_PER_BEAT
    out = {"density err": abs(len(fill) - len(truth)) / beats}
    if truth:
        distance = np.abs(class_histogram(fill, drums) - class_histogram(truth, drums)).sum()
        out["PC dist"] = 0.5 * float(distance) if fill else 1.0
    lo, hi = (gap.first_bar - CONTEXT_BARS) * spb, (gap.first_bar + gap.n_bars + CONTEXT_BARS) * spb
    before = [n for n in notes if lo <= n.onset < gap.start]
    after = [n for n in notes if gap.end <= n.onset < hi]
    if drums:
        context_bars = [b for b in range(gap.first_bar - CONTEXT_BARS, gap.first_bar + gap.n_bars + CONTEXT_BARS)
                        if not gap.first_bar <= b < gap.first_bar + gap.n_bars]
        reference = groove(before + after, context_bars, spb)
        gap_bars = range(gap.first_bar, gap.first_bar + gap.n_bars)
        fill_bars = [cosine(groove(fill, [b], spb), reference) for b in gap_bars]
        out["groove sim"] = float(np.mean(fill_bars))
        return out
    scale = key_scale(before + after)
    if fill and scale:  # no key without notes around the gap
        out["out-of-key"] = sum(n.pitch % 12 not in scale for n in fill) / len(fill)
    errors = [abs(f - t) for f, t in zip(join_intervals(before, fill, after), join_intervals(before, truth, after))
              if f is not None and t is not None]
    if errors:
        out["join err"] = float(np.mean(errors))
    return out


def cases(parts, rng: np.random.Generator, repeats: int = 1):
    for part in parts:
        for bars in GAP_BARS:
            lo, hi = CONTEXT_BARS, part.n_bars - bars - CONTEXT_BARS
            for _ in range(repeats if hi > lo else 0):
                first = int(rng.integers(lo, hi))
                yield part, Gap(first * part.steps_per_bar, (first + bars) * part.steps_per_bar, part.steps_per_bar)


def timing(infiller: Infiller, parts, bars: int, variations: int) -> float | None:
    times = []
    for part in parts:
        if part.n_bars > bars + 2 * CONTEXT_BARS:
            first = CONTEXT_BARS
            gap = Gap(first * part.steps_per_bar, (first + bars) * part.steps_per_bar, part.steps_per_bar)
            started = time.perf_counter()
            infiller.fill(part.notes, gap, part.kind, variations=variations, seed=0)
            times.append(time.perf_counter() - started)
    return statistics.median(times) if times else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=50,
                        help="parts per kind (melody, piano, drums); 50: every held-out POP909 song")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="validation: POP909 741-750 and Groove validation rows, to choose settings")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    parser.add_argument("--guidance", type=float, help="density guidance (default: the shipped setting)")
    parser.add_argument("--pace-guidance", type=float, help="pace guidance (default: the shipped setting)")
    parser.add_argument("--key-guidance", type=float, help="key guidance (default: the shipped setting)")
    parser.add_argument("--groove-guidance", type=float, help="groove guidance (default: the shipped setting)")
    parser.add_argument("--class-guidance", type=float, help="class guidance (default: the shipped setting)")
    parser.add_argument("--stack-guidance", type=float, help="stack guidance (default: the shipped setting)")
    parser.add_argument("--join-guidance", type=float, help="join guidance (default: the shipped setting)")
    parser.add_argument("--candidates", type=int, help="candidates per variation (default: the shipped setting)")
    parser.add_argument("--repeats", type=int, default=3, help="gaps per part and gap length")
    parser.add_argument("--kinds", default="melody,piano,drums", help="parts to measure")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--work", type=Path, default=Path("build/generator"), help="the training data cache")
    parser.add_argument("--checkpoint", type=Path, help="a generator checkpoint (default: the shipped one)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    started = time.perf_counter()
    test = generator_data.load_split(args.split)
    args.work.mkdir(parents=True, exist_ok=True)
    ngram = NGram().train(generator_data.cached_split(args.work, "train"))
    infiller = Infiller(args.checkpoint) if args.checkpoint else Infiller()
    if args.guidance is not None:
        infiller.density_guidance = args.guidance
    for name in ("pace_guidance", "key_guidance", "class_guidance", "groove_guidance", "stack_guidance",
                 "join_guidance", "candidates"):
        if getattr(args, name) is not None:
            setattr(infiller, name, getattr(args, name))
    rng = np.random.default_rng(args.seed)
    by_kind = {k: [p for p in test if p.kind == k and p.n_bars > 2 * CONTEXT_BARS + 1][: args.parts]
               for k in args.kinds.split(",")}
    data = "POP909 751-800, Groove MIDI test rows" if args.split == "test" else "POP909 741-750, Groove MIDI validation"
    print(f"# reascribe generate bench\n\nData: {data}; temperature {args.temperature}, density guidance "
          f"{infiller.density_guidance}, pace guidance {infiller.pace_guidance}, key guidance "
          f"{infiller.key_guidance}, class guidance {infiller.class_guidance}, groove guidance "
          f"{infiller.groove_guidance}, stack guidance {infiller.stack_guidance}, join guidance "
          f"{infiller.join_guidance}, {infiller.candidates or 'default'} candidates per fill; "
          f"{args.parts} parts per kind at most, gaps of {', '.join(map(str, GAP_BARS))} bars, seed {args.seed}. "
          f"Setup {time.perf_counter() - started:.0f} s.")
    for kind, parts in by_kind.items():
        scores: dict = {}  # (measure, bars) -> system -> {gap index: value}
        for i, (part, gap) in enumerate(cases(parts, rng, args.repeats)):
            notes, seed = part.notes, args.seed * 1000 + i
            truth = [n for n in notes if gap.start <= n.onset < gap.end]
            fills = {
                "reascribe": infiller.fill(notes, gap, kind, temperature=args.temperature, seed=seed)[0],
                "continuation": infiller.fill(notes, gap, kind, temperature=args.temperature, seed=seed,
                                              use_suffix=False)[0],
                "n-gram": ngram.fill(notes, gap, kind, args.temperature, np.random.default_rng(seed)),
                "copy bar": copy_bar_before(notes, gap, kind),
                "truth": truth,
            }
            nll = {"reascribe": infiller.nll(notes, gap, kind, truth),
                   "continuation": infiller.nll(notes, gap, kind, truth, use_suffix=False),
                   "n-gram": ngram.nll(notes, gap, kind, truth)}
            if all(math.isfinite(v[0]) for v in nll.values()):
                for system, (nats, count) in nll.items():
                    scores.setdefault(("NLL", gap.n_bars), {}).setdefault(system, {})[i] = (nats, count)
            for system, fill in fills.items():
                for name, value in measures(fill, truth, notes, gap, kind).items():
                    scores.setdefault((name, gap.n_bars), {}).setdefault(system, {})[i] = value
        print_table(kind, len(parts), scores, np.random.default_rng(args.seed))
    if args.no_timing:
        return
    print("\n## Time to fill (Infiller.fill, one sampling thread, median over parts)\n")
    print("| part | 4 bars, 1 take | 4 bars, 3 takes | 8 bars, 1 take | 8 bars, 3 takes |\n|---|---|---|---|---|")
    for kind, parts in by_kind.items():
        cells = [timing(infiller, parts[:5], bars, v) for bars in (4, 8) for v in (1, 3)]
        print(f"| {kind} | " + " | ".join("-" if c is None else f"{c:.2f} s" for c in cells) + " |")
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


def mean(values) -> float:
    values = list(values)
    if values and isinstance(values[0], tuple):  # NLL: total nats / total tokens
        return sum(v[0] for v in values) / max(1, sum(v[1] for v in values))
    return float(np.mean(values))


def resampled_means(by_gap: dict, draws: np.ndarray, gaps: list) -> np.ndarray:
    """The measure's mean over each row of ``draws`` (indices into ``gaps``; gaps without it are skipped)."""
    if isinstance(next(iter(by_gap.values())), tuple):  # NLL: total nats / total tokens
        nats = np.array([by_gap.get(g, (0.0, 0))[0] for g in gaps], dtype=float)
        tokens = np.array([by_gap.get(g, (0.0, 0))[1] for g in gaps], dtype=float)
        return nats[draws].sum(axis=1) / np.maximum(1, tokens[draws].sum(axis=1))
    values = np.array([by_gap.get(g, np.nan) for g in gaps], dtype=float)
    return np.nanmean(values[draws], axis=1)


def print_table(kind: str, n_parts: int, scores: dict, rng: np.random.Generator) -> None:
    print(f"\n## {kind} ({n_parts} parts)\n")
    print("| measure | gap bars | n | reascribe | continuation | n-gram | copy bar | truth "
          "| best baseline / reascribe | 90% interval |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, bars), by_system in sorted(scores.items()):
        values = {s: mean(v.values()) for s, v in by_system.items() if v}
        cells = [f"{values[s]:.3f}" if s in values else "-" for s in (*SYSTEMS, "truth")]
        baselines = {s: values[s] for s in SYSTEMS[1:] if s in values}
        ours = values.get("reascribe")
        ratio = interval = "-"
        if baselines and ours:
            lower = LOWER_IS_BETTER[name]
            best = (min if lower else max)(baselines, key=baselines.get)
            ratio = f"{(values[best] / ours if lower else ours / values[best]):.2f}"
            # Paired bootstrap over the gaps: both systems are scored on the same resampled gaps.
            gaps = sorted(set(by_system["reascribe"]) | set(by_system[best]))
            draws = rng.integers(0, len(gaps), (BOOTSTRAP, len(gaps)))
            a, b = resampled_means(by_system["reascribe"], draws, gaps), resampled_means(by_system[best], draws, gaps)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = b / a if lower else a / b
            lo, hi = np.nanpercentile(ratios, [5, 95], method="nearest")  # no interpolating into a 0 / 0 or x / 0
            interval = f"{lo:.2f}-{hi:.2f}"
        n = len(by_system.get("reascribe", []))
        print(f"| {name} | {bars} | {n} | " + " | ".join(cells) + f" | {ratio} | {interval} |")
    print("\nratio > 1: reascribe is better than the best baseline (lower-is-better measures: baseline / reascribe;"
          " groove sim: reascribe / baseline). 90% interval: of that ratio, over the gaps resampled "
          f"{BOOTSTRAP} times (paired); an interval across 1 is a tie at this many gaps.")


if __name__ == "__main__":
    main()
