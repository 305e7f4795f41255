"""Training loop and export for the chord model.

The chord head learns with a focal loss (Lin et al. 2017; gamma 2), so the many frames of plain major
and minor triads do not drown the rare qualities; tones, bass, key and chord changes are auxiliary
heads that also feed the decoder. Each batch is shifted by up to two semitones (the CQT rolled by
3 bins a semitone, the labels with it), on top of the transpositions rendered into the data. Each epoch
ends with a validation pass (POP909 songs ending in 5, training instruments) and a checkpoint; the best
epoch by validation score is exported with the decoder's switch penalty chosen on the same songs.
"""

from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import torch
import torch.nn.functional as F
from reascribe.models.chords import decode, features
from reascribe.models.chords import vocabulary as voc
from reascribe.models.chords.network import ChordNet
from reascribe.models.chords.transcriber import CHECKPOINT
from training import loop

CROP = 200  # frames per training example (~18.6 s)
BATCH = 12
STEPS_PER_EPOCH = 250
MAX_SHIFT = 2  # semitones of batch-time transposition
FOCAL_GAMMA = 2.0
CHANGE_POS_WEIGHT = 5.0  # one frame in 19 is a change (measured on the training shards)
WEIGHTS = {"chord": 1.0, "tones": 0.5, "bass": 0.5, "key": 0.2, "change": 0.3}
DEFAULT_PENALTY = 6.0
PENALTIES = (2.0, 4.0, 6.0, 9.0, 13.0, 18.0)


class Shard:
    def __init__(self, path: Path):
        data = np.load(path)
        self.features = data["features"]
        self.classes, self.bass, self.tones, self.key = data["classes"], data["bass"], data["tones"], data["key"]
        self.starts = data["starts"]

    def examples(self) -> list[slice]:
        return [slice(a, b) for a, b in zip(self.starts[:-1], self.starts[1:])]

    def batch(self, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        specs, targets = [], {k: [] for k in ("chord", "tones", "bass", "key")}
        for i in rng.integers(0, len(self.starts) - 1, BATCH):
            lo, hi = self.starts[i], self.starts[i + 1]
            a = int(rng.integers(lo, max(lo + 1, hi - CROP)))
            idx = np.clip(np.arange(a, a + CROP), lo, hi - 1)  # short examples repeat their last frame
            spec, cls, bass, tones, key = shift(self.features[idx].astype(np.float32), self.classes[idx], self.bass[idx],
                                                self.tones[idx], self.key[idx], int(rng.integers(-MAX_SHIFT, MAX_SHIFT + 1)))  # fmt: skip
            specs.append(spec)
            for name, value in zip(("chord", "bass", "tones", "key"), (cls, bass, tones, key)):
                targets[name].append(value)
        out = {k: torch.from_numpy(np.stack(v).astype(np.float32 if k == "tones" else np.int64)) for k, v in targets.items()}
        return torch.from_numpy(np.stack(specs)), out


def shift(spec, cls, bass, tones, key, k: int):
    """Everything transposed by ``k`` semitones: the CQT moves 3 bins a semitone, empty bins are 0."""
    if k == 0:
        return spec, cls, bass, tones, key
    bins = k * features.BINS_PER_OCTAVE // 12
    spec = np.roll(spec, bins, axis=1)
    if bins > 0:
        spec[:, :bins] = 0
    else:
        spec[:, bins:] = 0
    roots, qualities = np.divmod(cls.astype(np.int64) - 1, voc.N_QUALITIES)
    cls = np.where(cls > 0, 1 + ((roots + k) % 12) * voc.N_QUALITIES + qualities, 0)
    bass = np.where(bass == voc.NO_BASS, voc.NO_BASS, (bass.astype(np.int64) + k) % 12)
    key = np.where(key < 0, -1, (key % 12 + k) % 12 + 12 * (key // 12))
    return spec, cls, bass, np.roll(tones, k, axis=1), key


def changes(cls: torch.Tensor) -> torch.Tensor:
    """1 at a frame whose class differs from the frame before, and at its neighbours (a change may fall
    between frames)."""
    c = torch.zeros_like(cls, dtype=torch.float32)
    c[:, 1:] = (cls[:, 1:] != cls[:, :-1]).float()
    return torch.clamp(c + F.pad(c[:, 1:], (0, 1)) * 0.5 + F.pad(c[:, :-1], (1, 0)) * 0.5, 0, 1)


def loss_fn(net: ChordNet, spec: torch.Tensor, target: dict[str, torch.Tensor]) -> torch.Tensor:
    out = net(spec)
    logp = F.log_softmax(out["chord"], -1).gather(-1, target["chord"].unsqueeze(-1)).squeeze(-1)
    focal = -((1 - logp.exp()) ** FOCAL_GAMMA * logp).mean()
    tones = F.binary_cross_entropy_with_logits(out["tones"], target["tones"])
    bass = F.cross_entropy(out["bass"].reshape(-1, 13), target["bass"].reshape(-1))
    known = target["key"] >= 0
    key = F.cross_entropy(out["key"][known], target["key"][known]) if known.any() else out["key"].sum() * 0
    change = F.binary_cross_entropy_with_logits(out["change"].squeeze(-1), changes(target["chord"]),
                                                pos_weight=torch.tensor(CHANGE_POS_WEIGHT))  # fmt: skip
    parts = {"chord": focal, "tones": tones, "bass": bass, "key": key, "change": change}
    return sum(WEIGHTS[k] * v for k, v in parts.items())


def predict(net: ChordNet, spec: np.ndarray) -> dict[str, np.ndarray]:
    net.eval()
    with torch.inference_mode():
        out = net(torch.from_numpy(spec.astype(np.float32)).unsqueeze(0))
    net.train()
    return {
        "chord": torch.softmax(out["chord"][0], -1).numpy(), "bass": torch.softmax(out["bass"][0], -1).numpy(),
        "change": torch.sigmoid(out["change"][0, :, 0]).numpy(), "key": torch.log_softmax(out["key"][0], -1).numpy(),
    }  # fmt: skip


def frame_scores(ref: list[str], est: list[str]) -> dict[str, float]:
    scores = {}
    for name in ("root", "majmin", "majmin_inv", "sevenths", "sevenths_inv"):
        s = np.asarray(getattr(mir_eval.chord, name)(ref, est), float)
        scores[name] = float(s[s >= 0].mean())
    return scores


def validate(net: ChordNet, valid: Shard, penalties=(DEFAULT_PENALTY,)) -> dict[float, dict[str, float]]:
    """Frame-level mir_eval scores of the decoded chords for each switch penalty."""
    preds = [(predict(net, valid.features[ex]), ex) for ex in valid.examples()]
    out = {}
    for penalty in penalties:
        ref, est = [], []
        for p, ex in preds:
            classes = decode.decode_classes(p["chord"], p["change"], penalty)
            bass = p["bass"]
            for seg_lo, seg_hi, cls in _runs(classes):
                b = int(np.argmax(bass[seg_lo:seg_hi].mean(axis=0))) if cls else voc.NO_BASS
                est += [voc.label(cls, b)] * (seg_hi - seg_lo)
            ref += [voc.label(int(c), int(b)) for c, b in zip(valid.classes[ex], valid.bass[ex])]
        out[penalty] = frame_scores(ref, est)
    return out


def _runs(classes: np.ndarray):
    edges = np.flatnonzero(np.diff(classes)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(classes)]):
        yield int(lo), int(hi), int(classes[lo])


def selection_score(scores: dict[str, float]) -> float:
    return (scores["majmin"] + scores["sevenths"] + scores["sevenths_inv"]) / 3


def train(train_paths: list[Path], valid_path: Path, work: Path, epochs: int, seed: int) -> None:
    shards = [Shard(p) for p in train_paths]
    valid = Shard(valid_path)

    def score(net: ChordNet) -> tuple[float, str]:
        scores = validate(net, valid)[DEFAULT_PENALTY]
        return selection_score(scores), "validation " + " ".join(f"{k}={v:.3f}" for k, v in scores.items())

    loop.fit(
        ChordNet(features.N_BINS, voc.N_CLASSES),
        lambda rng: shards[rng.integers(len(shards))].batch(rng),
        loss_fn,
        score,
        work,
        epochs=epochs,
        steps_per_epoch=STEPS_PER_EPOCH,
        lr=2e-3,
        seed=seed,
        clip_norm=5.0,
    )


def export(valid_path: Path, work: Path, out: Path = CHECKPOINT) -> None:
    """The best epoch, with the switch penalty chosen on validation, as the shipped checkpoint."""
    net = ChordNet(features.N_BINS, voc.N_CLASSES)
    net.load_state_dict(torch.load(work / "best.pt", weights_only=True))
    by_penalty = validate(net, Shard(valid_path), PENALTIES)
    penalty = max(by_penalty, key=lambda p: selection_score(by_penalty[p]))
    for p, scores in by_penalty.items():
        print(f"switch penalty {p:5.1f}: " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()))
    state = {
        "weights": {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()},
        "config": net.config,
        "qualities": list(voc.QUALITIES),
        "n_bins": features.N_BINS,
        "fps": features.FPS,
        "switch_penalty": penalty,
        "validation": by_penalty[penalty],
    }
    torch.save(state, out)
    print(f"wrote {out} (switch penalty {penalty})")
