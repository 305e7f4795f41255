"""The training loop the models share: AdamW on a cosine schedule, a score after every epoch, the best
epoch kept as best.pt, and the whole state saved each epoch so that a rerun resumes where it stopped."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


def fit(
    net: nn.Module,
    next_batch: Callable[[np.random.Generator], tuple],
    loss_fn: Callable[..., torch.Tensor],
    score_fn: Callable[[nn.Module], tuple[float, str]],
    work: Path,
    *,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    seed: int,
    clip_norm: float | None = None,
) -> None:
    """``loss_fn(net, *next_batch(rng))`` is minimised; ``score_fn(net)`` gives (score, message), higher
    is better, on validation data after each epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    state_path, epoch, best = work / "train_state.pt", 0, -math.inf
    if state_path.exists():
        state: dict[str, Any] = torch.load(state_path, weights_only=False)  # our own file, with the Generator
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch, best, rng = state["epoch"], state["best"], state["rng"]
        torch.set_rng_state(state["torch_rng"])
    net.train()
    while epoch < epochs:
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", mininterval=5)
        running = 0.0
        for step in bar:
            loss = loss_fn(net, *next_batch(rng))
            opt.zero_grad()
            loss.backward()
            if clip_norm:
                nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
            opt.step()
            sched.step()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            bar.set_postfix(loss=f"{running:.4f}")
        epoch += 1
        net.eval()
        score, message = score_fn(net)
        net.train()
        print(f"epoch {epoch}: {message}", flush=True)
        if score > best:
            best = score
            torch.save(net.state_dict(), work / "best.pt")
        tmp = work / "train_state.tmp"
        state = {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                 "best": best, "rng": rng, "torch_rng": torch.get_rng_state()}  # fmt: skip
        torch.save(state, tmp)
        shutil.move(tmp, state_path)
