"""Training loop, per-class thresholds and export for the drum model.

Targets are widened as in Vogl et al.: the onset frame is 1, its neighbours 0.5, so a hit that lands
between frames is not punished. Velocity is learned only around onsets. Each epoch ends with a
validation pass (synthetic renders of Groove MIDI's validation split) and a checkpoint; the best
epoch by validation F-measure is exported.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import mir_eval
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES
from reascribe.models.drums.network import DrumNet
from reascribe.models.drums.transcriber import CHECKPOINT, pick_peaks

CROP = 400  # frames per training example (4 s)
BATCH = 16
STEPS_PER_EPOCH = 800
POS_WEIGHT = 4.0  # onsets are ~2 % of frames
THRESHOLDS = np.round(np.arange(0.10, 0.91, 0.05), 2)
N_CLASSES = len(CLASSES)


class Shard:
    def __init__(self, path: Path):
        data = np.load(path)
        self.features = data["features"]
        n = len(self.features)
        self.target = np.zeros((n, N_CLASSES), np.float16)
        self.velocity = np.zeros((n, N_CLASSES), np.float16)
        frames, classes, vels = data["onsets"].T
        for offset, value in ((-1, 0.5), (1, 0.5), (0, 1.0)):  # the onset frame last, so it wins
            f = np.clip(frames + offset, 0, n - 1)
            self.target[f, classes] = np.maximum(self.target[f, classes], value)
            self.velocity[f, classes] = vels / 127
        self.onsets = data["onsets"]

    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        starts = rng.integers(0, len(self.features) - CROP, BATCH)
        idx = starts[:, None] + np.arange(CROP)
        return tuple(torch.from_numpy(a[idx].astype(np.float32)) for a in (self.features, self.target, self.velocity))


def loss_fn(net: DrumNet, spec, target, velocity) -> torch.Tensor:
    logits, vel = net(spec)
    onset_loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(POS_WEIGHT))
    mask = target > 0
    vel_loss = F.mse_loss(vel[mask], velocity[mask]) if mask.any() else logits.sum() * 0
    return onset_loss + vel_loss


def predict(net: DrumNet, spec: np.ndarray, chunk: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    net.eval()
    onset, vel = [], []
    with torch.inference_mode():
        for start in range(0, len(spec), chunk):
            lo, hi = max(0, start - 100), min(len(spec), start + chunk + 100)
            logits, v = net(torch.from_numpy(spec[lo:hi].astype(np.float32)).unsqueeze(0))
            onset.append(torch.sigmoid(logits[0, start - lo : start - lo + chunk]).numpy())
            vel.append(v[0, start - lo : start - lo + chunk].numpy())
    net.train()
    return np.concatenate(onset), np.concatenate(vel)


def class_f_measures(onset: np.ndarray, shard: Shard) -> np.ndarray:
    """(thresholds, classes) onset F-measure at 50 ms on the validation shard."""
    scores = np.zeros((len(THRESHOLDS), N_CLASSES))
    for c in range(N_CLASSES):
        ref = np.unique(shard.onsets[shard.onsets[:, 1] == c, 0]) / features.FPS
        for i, t in enumerate(THRESHOLDS):
            est = pick_peaks(onset[:, c], t) / features.FPS
            scores[i, c] = mir_eval.onset.f_measure(ref, est, window=0.05)[0] if len(ref) else float(len(est) == 0)
    return scores


def train(train_paths: list[Path], valid_path: Path, work: Path, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    shards = [Shard(p) for p in train_paths]
    valid = Shard(valid_path)
    net = DrumNet(features.n_bands(), N_CLASSES)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    total = epochs * STEPS_PER_EPOCH
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    state_path, epoch, best = work / "train_state.pt", 0, -1.0
    if state_path.exists():  # resume
        state = torch.load(state_path, weights_only=False)
        net.load_state_dict(state["net"]), opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        epoch, best, rng = state["epoch"], state["best"], state["rng"]
        torch.set_rng_state(state["torch_rng"])
    net.train()
    while epoch < epochs:
        bar = tqdm(range(STEPS_PER_EPOCH), desc=f"epoch {epoch + 1}/{epochs}")
        running = 0.0
        for step in bar:
            shard = shards[rng.integers(len(shards))]
            loss = loss_fn(net, *shard.batch(rng))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            bar.set_postfix(loss=f"{running:.4f}")
        epoch += 1
        onset, _ = predict(net, valid.features)
        scores = class_f_measures(onset, valid)
        mean_best = scores.max(axis=0).mean()
        print(f"epoch {epoch}: validation F per class at its best threshold "
              + " ".join(f"{c}={s:.3f}" for c, s in zip(CLASSES, scores.max(axis=0))) + f"; mean {mean_best:.3f}")  # fmt: skip
        if mean_best > best:
            best = mean_best
            torch.save(net.state_dict(), work / "best.pt")
        tmp = work / "train_state.tmp"
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                    "best": best, "rng": rng, "torch_rng": torch.get_rng_state()}, tmp)  # fmt: skip
        shutil.move(tmp, state_path)


def export(valid_path: Path, work: Path, out: Path = CHECKPOINT) -> None:
    """The best epoch with per-class thresholds chosen on validation, as the shipped checkpoint."""
    net = DrumNet(features.n_bands(), N_CLASSES)
    net.load_state_dict(torch.load(work / "best.pt", weights_only=True))
    valid = Shard(valid_path)
    onset, _ = predict(net, valid.features)
    scores = class_f_measures(onset, valid)
    thresholds = THRESHOLDS[scores.argmax(axis=0)]
    for c, name in enumerate(CLASSES):
        print(f"{name:13s} threshold {thresholds[c]:.2f}  validation F {scores.max(axis=0)[c]:.3f}")
    state = {
        "weights": {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()},
        "config": net.config,
        "classes": list(CLASSES),
        "n_bands": features.n_bands(),
        "thresholds": [float(t) for t in thresholds],
        "validation_f": [float(s) for s in scores.max(axis=0)],
    }
    torch.save(state, out)
    print(f"wrote {out}")
