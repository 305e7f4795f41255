"""Training loop, per-class thresholds and export for the drum model.

Targets are widened as in Vogl et al.: the onset frame is 1, its neighbours 0.5, so a hit that lands
between frames is not punished. Velocity is learned only around onsets. Each epoch ends with a
validation pass (synthetic renders of Groove MIDI's validation split) and a checkpoint; the best
epoch by validation F-measure is exported.
"""

from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import torch
import torch.nn.functional as F

from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES
from reascribe.models.drums.network import DrumNet
from reascribe.models.drums.transcriber import CHECKPOINT, pick_peaks
from training import loop

CROP = 400  # frames per training example (4 s)
BATCH = 16
STEPS_PER_EPOCH = 800
POS_WEIGHT = 4.0  # onsets are ~2 % of frames
THRESHOLDS = np.round(np.arange(0.10, 0.91, 0.05), 2)
N_CLASSES = len(CLASSES)


class Shard:
    def __init__(self, path: Path):
        data = np.load(path)
        spec, bounds = data["features"], data["starts"]  # each render's background is its own
        self.features = np.concatenate(
            [features.network_input(spec[a:b]).astype(np.float16) for a, b in zip(bounds[:-1], bounds[1:])]
        )
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
    """Onset probabilities and velocities of ``spec``, in chunks with 1 s of context (leaves ``net`` in eval mode)."""
    net.eval()
    onset, vel = [], []
    with torch.inference_mode():
        for start in range(0, len(spec), chunk):
            lo, hi = max(0, start - 100), min(len(spec), start + chunk + 100)
            logits, v = net(torch.from_numpy(spec[lo:hi].astype(np.float32)).unsqueeze(0))
            onset.append(torch.sigmoid(logits[0, start - lo : start - lo + chunk]).numpy())
            vel.append(v[0, start - lo : start - lo + chunk].numpy())
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
    shards = [Shard(p) for p in train_paths]
    valid = Shard(valid_path)

    def score(net: DrumNet) -> tuple[float, str]:
        best = class_f_measures(predict(net, valid.features)[0], valid).max(axis=0)
        per_class = " ".join(f"{c}={s:.3f}" for c, s in zip(CLASSES, best))
        return best.mean(), f"validation F per class at its best threshold {per_class}; mean {best.mean():.3f}"

    loop.fit(
        DrumNet(features.n_bands(), N_CLASSES),
        lambda rng: shards[rng.integers(len(shards))].batch(rng),
        loss_fn,
        score,
        work,
        epochs=epochs,
        steps_per_epoch=STEPS_PER_EPOCH,
        lr=1e-3,
        seed=seed,
    )


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
