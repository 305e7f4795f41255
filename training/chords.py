"""Train the chord model, in one resumable command:

    .venv/bin/python -m training.chords --work build/chords

Renders the data (skipping shards already built), trains with a checkpoint every epoch (a rerun
resumes) and writes the shipped checkpoint to models/chords/. Needs ``pip install pyfluidsynth`` and
the soundfonts listed in training/synth.py. POP909 songs whose number ends in 0 are never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training import chords_data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.chords", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/chords"), help="data and checkpoints")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--versions", type=int, default=2, help="renders of each training song")
    parser.add_argument("--generated", type=int, default=240, help="generated progressions per version")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1, help="render processes")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    parser.add_argument("--data-only", action="store_true")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)

    valid = chords_data.build_split(args.work, "validation", 0, args.seed, args.generated // 8, args.processes)
    train = [chords_data.build_split(args.work, "train", v, args.seed, args.generated, args.processes)
             for v in range(args.versions)]
    if args.data_only:
        return
    import torch

    from training import chords_train

    torch.set_num_threads(args.threads)
    chords_train.train(train, valid, args.work, epochs=args.epochs, seed=args.seed)
    chords_train.export(valid, args.work)


if __name__ == "__main__":
    main()
