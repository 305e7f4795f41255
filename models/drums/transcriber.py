"""Drum hits from audio: the shipped DrumNet checkpoint, run in chunks, then per-class peak picking.

The checkpoint (``drums.pt``, written by ``python -m training.drums``) holds the weights, the network's
shape, the feature settings it was trained with and the per-class thresholds chosen on validation
renders; models/drums/MODEL_CARD.md describes its data and measured figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from reascribe.errors import ModelError
from reascribe.models.checkpoint import load_checkpoint
from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES
from reascribe.models.drums.network import DrumNet

log = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).with_name("drums.pt")
CHUNK_FRAMES = 6000  # 60 s of audio a pass: bounded memory on long files
CONTEXT_FRAMES = 100  # each chunk sees 1 s of audio either side, beyond the network's reach
MIN_GAP_FRAMES = 3  # two hits of one class closer than 30 ms are one hit (flams excepted)


@dataclass(frozen=True)
class DrumHit:
    time_s: float
    drum: str  # one of CLASSES
    velocity: int  # 1..127


def pick_peaks(activation: np.ndarray, threshold: float) -> np.ndarray:
    """Sub-frame positions of the local maxima of a 1-D activation that reach ``threshold``.

    A peak is the largest value within ±MIN_GAP_FRAMES - 1 frames (the first of equal values wins);
    its position is refined by a parabola through it and its neighbours (not at either end)."""
    a = np.asarray(activation, np.float64)
    if len(a) < 3:
        return np.zeros(0)
    reach = MIN_GAP_FRAMES - 1
    padded = np.pad(a, reach, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    is_peak = (a >= threshold) & (a >= windows.max(axis=1)) & (a > windows[:, :reach].max(axis=1))
    frames = np.flatnonzero(is_peak)
    left = a[np.maximum(frames - 1, 0)]
    right = a[np.minimum(frames + 1, len(a) - 1)]
    denom = left - 2 * a[frames] + right
    inside = (frames > 0) & (frames < len(a) - 1) & (denom < 0)  # a parabola needs both neighbours
    shift = np.where(inside, 0.5 * (left - right) / np.where(inside, denom, -1), 0.0)
    return frames + np.clip(shift, -0.5, 0.5)


def hits_from_activations(onset: np.ndarray, velocity: np.ndarray, thresholds: np.ndarray) -> list[DrumHit]:
    """``onset`` and ``velocity`` (frames, classes) in 0..1 -> hits sorted by time."""
    hits = []
    for c, name in enumerate(CLASSES):
        for pos in pick_peaks(onset[:, c], thresholds[c]):
            vel = velocity[int(round(pos)), c]
            hits.append(DrumHit(float(pos) / features.FPS, name, int(np.clip(round(vel * 127), 1, 127))))
    return sorted(hits, key=lambda h: (h.time_s, CLASSES.index(h.drum)))


class DrumTranscriber:
    sample_rate = features.SAMPLE_RATE

    def __init__(self, num_threads: int | None = None, checkpoint: Path = CHECKPOINT):
        state = load_checkpoint(checkpoint, "drum model")
        config = state["config"]
        if (
            tuple(state["classes"]) != CLASSES
            or state["n_bands"] != features.n_bands()
            or config.get("channels", 1) != features.INPUT_CHANNELS  # older models read the spectrogram alone
        ):
            raise ModelError(f"The drum model {checkpoint} does not match this version of reascribe; reinstall it.")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.net = DrumNet(**config)
        self.net.load_state_dict(state["weights"])
        self.net.eval()
        self.thresholds = np.asarray(state["thresholds"], np.float64)

    def activations(self, samples: np.ndarray, progress: Callable[[float, str], None]) -> tuple[np.ndarray, np.ndarray]:
        """Onset probabilities and velocities, (frames, classes) each, for mono audio at 44.1 kHz."""
        spec = features.network_input(features.spectrogram(samples))
        total = len(spec)
        onset = np.zeros((total, len(CLASSES)), np.float32)
        velocity = np.zeros_like(onset)
        for start in range(0, total, CHUNK_FRAMES):
            progress(start / max(total, 1), "transcribing drums")
            stop = min(total, start + CHUNK_FRAMES)
            lo, hi = max(0, start - CONTEXT_FRAMES), min(total, stop + CONTEXT_FRAMES)
            with torch.inference_mode():
                logits, vel = self.net(torch.from_numpy(spec[lo:hi]).unsqueeze(0))
            onset[start:stop] = torch.sigmoid(logits[0, start - lo : stop - lo]).numpy()
            velocity[start:stop] = vel[0, start - lo : stop - lo].numpy()
        progress(1.0, "transcribing drums")
        return onset, velocity

    def transcribe(self, samples: np.ndarray, progress: Callable[[float, str], None]) -> list[DrumHit]:
        onset, velocity = self.activations(samples, progress)
        hits = hits_from_activations(onset, velocity, self.thresholds)
        log.info("drums: %d hits", len(hits))
        return hits
