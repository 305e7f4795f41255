"""Train the infilling model, in one resumable command:

    .venv/bin/python -m training.generator --work build/generator

Reads POP909 and Groove MIDI once into a cache, trains in stages (``--epochs 8,16,22,30,36``: each stage
ends at its epoch, its cosine learning-rate schedule stretched to that end, so a stage restarts the
rate where the longer schedule would be, and draws dropout as a run resumed there does) with a
checkpoint after each epoch (a rerun resumes), keeps the epoch with the best validation NLL of the
middle, and writes the shipped checkpoint to models/generator/generator.pt. Sized for one CPU core:
about 2.5 hours on one core of a busy 2-core machine. ``--init`` fine-tunes another checkpoint instead
of starting afresh; models/generator/MODEL_CARD.md has the shipped checkpoint's history and commands.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reascribe.models.generator.infill import CHECKPOINT
from reascribe.models.generator.network import Config, InfillNet
from reascribe.models.generator.vocab import VOCAB, annotate
from training import generator_data

KIND_WEIGHTS = {"melody": 0.35, "piano": 0.35, "drums": 0.3}
CONTEXT_LOSS_WEIGHT = 0.3  # prefix and suffix tokens teach the language too, the middle is the task
N_VALID = 120
MEDIAN_PROMPT = 240  # tokens before the middle, median over training examples
WHERE_TABLES = {"segment.weight", "bar.weight", "density.weight"}


def sample_batch(pools: dict, rng: np.random.Generator, batch: int, max_len: int) -> tuple[torch.Tensor, ...]:
    kinds = list(KIND_WEIGHTS)
    examples = []
    while len(examples) < batch:
        pool = pools[rng.choice(kinds, p=list(KIND_WEIGHTS.values()))]
        ex = generator_data.make_example(pool[rng.integers(len(pool))], rng, max_len)
        if ex:
            examples.append(ex)
    return collate(examples)


def collate(examples: list[tuple[list[int], int]]) -> tuple[torch.Tensor, ...]:
    """Padded tokens, per-target loss weights (0 on the header and padding), prompt lengths, and where
    each token sits and each row's density bin (``vocab.annotate``)."""
    length = max(len(t) for t, _ in examples)
    tokens = torch.full((len(examples), length), VOCAB.PAD, dtype=torch.long)
    weights = torch.zeros((len(examples), length - 1))
    where = torch.zeros((len(examples), length, 2), dtype=torch.long)
    density = torch.zeros(len(examples), dtype=torch.long)
    for i, (toks, mid) in enumerate(examples):
        tokens[i, : len(toks)] = torch.tensor(toks)
        segments, bars, density[i] = annotate(toks)
        where[i, : len(toks)] = torch.tensor([segments, bars]).T
        pre = toks.index(VOCAB.PRE)
        weights[i, pre : mid - 1] = CONTEXT_LOSS_WEIGHT
        weights[i, mid - 1 : len(toks) - 1] = 1.0
    return tokens, weights, torch.tensor([mid for _, mid in examples]), where, density


def step_loss(net: InfillNet, tokens: torch.Tensor, weights: torch.Tensor, prompts: torch.Tensor,
              where: torch.Tensor, density: torch.Tensor) -> torch.Tensor:
    logits = net(tokens[:, :-1], prompts, where[:, :-1], density)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1), reduction="none")
    return (nll * weights.reshape(-1)).sum() / weights.sum()


def validation_set(parts: list, max_len: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    pools = {k: [p for p in parts if p.kind == k] for k in KIND_WEIGHTS}
    out = []
    while len(out) < N_VALID:
        kind = list(KIND_WEIGHTS)[len(out) % 3]
        ex = generator_data.make_example(pools[kind][rng.integers(len(pools[kind]))], rng, max_len)
        if ex:
            out.append(ex)
    return out


@torch.inference_mode()
def middle_nll(net: InfillNet, examples: list) -> float:
    """Mean NLL (nats per token) of the middle tokens."""
    net.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), 16):
        tokens, weights, prompts, where, density = collate(examples[i : i + 16])
        mask = (weights == 1.0).float()
        logits = net(tokens[:, :-1], prompts, where[:, :-1], density)
        nll = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
        total += float((nll * mask).sum())
        count += float(mask.sum())
    net.train()
    return total / count


def staged_rate(step: int, stages: list[int], steps_per_epoch: int) -> float:
    """The learning-rate factor: warm-up, then a cosine to 10 % at the end of the stage ``step`` is in."""
    warmup = max(1, min(100, stages[0] * steps_per_epoch // 10))
    total = next(e for e in stages if step < e * steps_per_epoch or e == stages[-1]) * steps_per_epoch
    return min(1.0, (step + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(step, total) / total)))


def warm_start(net: InfillNet, path: Path) -> None:
    """Start from another checkpoint's weights. A position table of ``max_len`` rows counts positions
    from the sequence's start (an earlier layout): it is re-anchored so that a prompt of the training
    data's median length keeps the positions it had. Tables the checkpoint lacks (segment, bar and
    density: an earlier model) keep their zeros, so the network computes what the checkpoint did."""
    state = torch.load(path, weights_only=True)
    weights = {k: v.float() for k, v in state["net"].items()}
    table, rows = weights["position.weight"], net.position.weight.shape[0]
    if table.shape[0] != rows:
        old = torch.arange(rows) - net.cfg.max_len + MEDIAN_PROMPT
        weights["position.weight"] = table[old.clamp(0, table.shape[0] - 1)]
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if unexpected or set(missing) - WHERE_TABLES:
        raise ValueError(f"{path} does not fit this network: missing {missing}, unexpected {unexpected}")


def new_stream(seed: int, cfg: Config) -> InfillNet:
    """A freshly initialised network, drawn first from torch's random stream seeded with ``seed``; the
    stream then goes on to dropout."""
    torch.manual_seed(seed)
    return InfillNet(cfg)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("build/generator"), help="data cache and checkpoints")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--epochs", default="8,16,22,30,36", help="the epoch each stage ends at, comma-separated")
    parser.add_argument("--steps-per-epoch", type=int, default=90)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=768)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights (a fine-tuning run)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT, help="where the best epoch is exported")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    stages = sorted(int(e) for e in args.epochs.split(","))

    train_parts = generator_data.cached_split(args.work, "train")
    valid = validation_set(generator_data.cached_split(args.work, "validation"), args.max_len, args.seed)
    pools = {k: [p for p in train_parts if p.kind == k] for k in KIND_WEIGHTS}

    cfg = Config(vocab_size=len(VOCAB), d_model=args.d_model, n_layers=args.layers, n_heads=4, max_len=args.max_len)
    net = new_stream(args.seed, cfg)
    if args.init:
        warm_start(net, args.init)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: staged_rate(step, stages, args.steps_per_epoch))
    state_path, epoch, history = args.work / "train_state.pt", 0, []
    if state_path.exists():
        state = torch.load(state_path, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch, history = state["epoch"], state["history"]
        print(f"resuming after epoch {epoch}")
    rng = np.random.default_rng([args.seed, epoch])
    started, first = time.monotonic(), epoch
    while epoch < stages[-1]:
        if epoch in stages and epoch != first:
            new_stream(args.seed, cfg)  # each stage draws dropout as a run resumed there does
        losses = []
        for _ in tqdm(range(args.steps_per_epoch), desc=f"epoch {epoch + 1}/{stages[-1]}"):
            loss = step_loss(net, *sample_batch(pools, rng, args.batch, args.max_len))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        epoch += 1
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "valid_middle_nll": middle_nll(net, valid), "minutes": (time.monotonic() - started) / 60})
        print(json.dumps(history[-1]))
        if history[-1]["valid_middle_nll"] == min(h["valid_middle_nll"] for h in history):
            torch.save({"config": cfg.as_dict(), "net": net.state_dict()}, args.work / "best.pt")
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "history": history}, state_path)
        rng = np.random.default_rng([args.seed, epoch])
    export(args.work / "best.pt", args.out, history)


def export(best: Path, out: Path, history: list) -> None:
    """Half-precision weights (the model runs in float32; halves the package size) and the history."""
    state = torch.load(best, weights_only=True)
    state["net"] = {k: v.half() for k, v in state["net"].items()}
    state["vocab"] = VOCAB.names
    state["history"] = json.dumps(history)
    torch.save(state, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
