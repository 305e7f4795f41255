"""The drum training command on a tiny dataset: trains, resumes, exports a checkpoint the product loads."""

from __future__ import annotations

import numpy as np
import pytest

from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES
from reascribe.models.drums.transcriber import DrumTranscriber
from training import drums_train


def _shard(path, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    spec = rng.random((n, features.n_bands())).astype(np.float16)
    frames = np.sort(rng.choice(np.arange(10, n - 10), 60, replace=False))
    onsets = np.stack([frames, rng.integers(0, len(CLASSES), 60), rng.integers(1, 128, 60)], axis=1).astype(np.int32)
    spec[frames] += 3  # something to learn
    np.savez(path, features=spec, onsets=onsets, starts=np.array([0, n]))
    return path


def test_targets_are_widened_and_velocities_kept(tmp_path):
    shard = drums_train.Shard(_shard(tmp_path / "a.npz", 0))
    frame, cls, vel = shard.onsets[0]
    assert shard.target[frame, cls] == 1 and shard.target[frame - 1, cls] == 0.5
    assert shard.velocity[frame, cls] == pytest.approx(vel / 127, abs=1e-3)


def test_train_resume_and_export(tmp_path, monkeypatch):
    monkeypatch.setattr(drums_train, "STEPS_PER_EPOCH", 3)
    train, valid = _shard(tmp_path / "t.npz", 1), _shard(tmp_path / "v.npz", 2)
    drums_train.train([train], valid, tmp_path, epochs=1, seed=0)
    first = (tmp_path / "train_state.pt").read_bytes()
    drums_train.train([train], valid, tmp_path, epochs=1, seed=0)  # already done: nothing changes
    assert (tmp_path / "train_state.pt").read_bytes() == first
    drums_train.train([train], valid, tmp_path, epochs=2, seed=0)  # resumes at epoch 2
    out = tmp_path / "drums.pt"
    drums_train.export(valid, tmp_path, out)
    model = DrumTranscriber(checkpoint=out)
    assert model.thresholds.shape == (len(CLASSES),)
    assert set(model.thresholds) <= set(drums_train.THRESHOLDS)
    hits = model.transcribe(np.zeros(features.SAMPLE_RATE, np.float32), lambda f, m: None)
    assert isinstance(hits, list)
