"""Train the drum model, in one resumable command:

    .venv/bin/python -m training.drums --work build/drums

Renders the data (skipping shards already built), trains with checkpoints every epoch (a rerun
resumes), chooses per-class thresholds on the validation renders and writes the shipped checkpoint
to models/drums/. Needs ``pip install pyfluidsynth`` and the soundfonts listed in training/synth.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training import drums_data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.drums", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/drums"), help="data and checkpoints")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--versions", type=int, default=2, help="renders of each training row")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, help="PyTorch CPU threads (default: one per core)")
    parser.add_argument("--data-only", action="store_true")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    background = args.work / "background.npy"
    if not background.exists():
        drums_data.build_backgrounds(background, args.seed)
    train = [drums_data.build_split(args.work, "train", v, args.seed, background) for v in range(args.versions)]
    valid = drums_data.build_split(args.work, "validation", 0, args.seed, background)
    if args.data_only:
        return
    import torch

    from training import drums_train

    if args.threads:
        torch.set_num_threads(args.threads)
    drums_train.train(train, valid, args.work, epochs=args.epochs, seed=args.seed)
    drums_train.export(valid, args.work)


if __name__ == "__main__":
    main()
