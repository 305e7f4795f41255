"""Chords from audio: the shipped ChordNet checkpoint, then the HMM decoder.

The checkpoint (``chords.pt``, written by ``python -m training.chords``) holds the weights, the
network's shape, the vocabulary and feature settings it was trained with and the decoder's switch
penalty chosen on validation renders; models/chords/MODEL_CARD.md describes its data and figures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from reascribe.errors import ModelError
from reascribe.models.checkpoint import load_checkpoint
from reascribe.models.chords import decode, features
from reascribe.models.chords import vocabulary as voc
from reascribe.models.chords.decode import ChordSegment
from reascribe.models.chords.network import ChordNet

log = logging.getLogger(__name__)

CHECKPOINT = Path(__file__).with_name("chords.pt")
CHUNK_FRAMES = 3000  # ~4.6 min of audio a pass: bounded memory on long files
CONTEXT_FRAMES = 100  # each chunk hears ~9 s either side, so its edges keep their context


@dataclass(frozen=True)
class ChordResult:
    segments: list[ChordSegment]
    key: str | None  # e.g. "Eb:maj", None when no chord was heard


class ChordTranscriber:
    sample_rate = features.SAMPLE_RATE

    def __init__(self, num_threads: int | None = None, checkpoint: Path = CHECKPOINT):
        state = load_checkpoint(checkpoint, "chord model")
        if tuple(state["qualities"]) != voc.QUALITIES or state["n_bins"] != features.N_BINS:
            raise ModelError(f"The chord model {checkpoint} does not match this version of reascribe; reinstall it.")
        if num_threads:
            torch.set_num_threads(num_threads)
        self.net = ChordNet(**state["config"])
        self.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["weights"].items()})
        self.net.eval()
        self.switch_penalty = float(state["switch_penalty"])

    def activations(self, samples: np.ndarray, progress: Callable[[float, str], None]) -> dict[str, np.ndarray]:
        """Per-frame chord and bass probabilities, change probability and key log probabilities."""
        spec = features.cqt(samples)
        total = len(spec)
        parts: dict[str, list[np.ndarray]] = {"chord": [], "bass": [], "change": [], "key": []}
        for start in range(0, total, CHUNK_FRAMES):
            progress(start / max(total, 1), "recognising chords")
            stop = min(total, start + CHUNK_FRAMES)
            lo, hi = max(0, start - CONTEXT_FRAMES), min(total, stop + CONTEXT_FRAMES)
            with torch.inference_mode():
                out = self.net(torch.from_numpy(spec[lo:hi]).unsqueeze(0))
            keep = slice(start - lo, stop - lo)
            parts["chord"].append(torch.softmax(out["chord"][0, keep], -1).numpy())
            parts["bass"].append(torch.softmax(out["bass"][0, keep], -1).numpy())
            parts["change"].append(torch.sigmoid(out["change"][0, keep, 0]).numpy())
            parts["key"].append(torch.log_softmax(out["key"][0, keep], -1).numpy())
        progress(1.0, "recognising chords")
        return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}

    def transcribe(self, samples: np.ndarray, progress: Callable[[float, str], None]) -> ChordResult:
        act = self.activations(samples, progress)
        duration_s = len(samples) / self.sample_rate
        if len(act["chord"]) == 0:
            return ChordResult([], None)
        classes = decode.decode_classes(act["chord"], act["change"], self.switch_penalty)
        segments = decode.segments(classes, act["bass"], features.FPS, duration_s)
        key = decode.key(act["key"], classes)
        log.info("chords: %d segments, key %s", len(segments), key)
        return ChordResult(segments, key)
