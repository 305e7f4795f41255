"""transkun 2.0 (Yan & Duan, neural semi-CRF) loaded once, run in segments with progress and cancel.

``TransKun.transcribe`` holds all audio in one tensor and loops over 16 s segments (8 s hop) without
a way to report progress or stop. ``TranskunPiano.transcribe`` is the same algorithm step by step
(padding, forced start positions carried across segments, merging of events cut by a segment border,
overlap resolution), slicing each segment from the caller's array, so its notes are identical to
transkun's. See MODEL_CARD.md.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import logging
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reascribe.compat import install_torchaudio_shim
from reascribe.errors import ModelError

log = logging.getLogger(__name__)

TRANSKUN_VERSION = "2.0.1"
WEIGHTS_NAME = "pretrained/2.0.pt"
CONF_NAME = "pretrained/2.0.conf"
# sha256 of 2.0.pt as shipped in the transkun 2.0.1 wheel; another file means other notes.
WEIGHTS_SHA256 = "50a80010effc2a59ffcd068a95cd2b29bd7f23a27a3515bc3ccd209c89a3d44c"
SUSTAIN_PEDAL_PITCH = -64  # transkun models pedals as "notes" with the negated controller number
SOFT_PEDAL_PITCH = -67
VELOCITY_CRITERION = "hamming"  # what TransKun.transcribe uses: the most probable velocity

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ModelNote:
    """One transkun event in seconds of the input; ``pitch`` < 0 is a pedal (-64 sustain, -67 soft)."""

    start_s: float
    end_s: float
    pitch: int
    velocity: int


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads share one core's FPU)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = set()
    for cpu in allowed:  # Linux sysfs; elsewhere fall back to the logical count
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            return len(allowed)
    return len(cores) or os.cpu_count() or 1


class TranskunPiano:
    """The transkun piano model, loaded once; ``transcribe`` may be called many times."""

    def __init__(self, num_threads: int | None = None) -> None:
        """Load the shipped checkpoint. ``num_threads`` defaults to the physical core count.

        torch's thread count is process-wide: the daemon runs one model at a time, so setting it
        here is deliberate.
        """
        install_torchaudio_shim()  # before transkun builds its mel filter bank
        import torch

        if any(importlib.util.find_spec(name) is None for name in ("transkun", "moduleconf")):
            raise ModelError(
                "The piano model (transkun) is not installed; run install/setup.sh, "
                f"or: pip install moduleconf && pip install --no-deps transkun=={TRANSKUN_VERSION}"
            )
        import moduleconf

        self.num_threads = num_threads or physical_cores()
        torch.set_num_threads(self.num_threads)
        package = importlib.resources.files("transkun")
        with (
            importlib.resources.as_file(package / WEIGHTS_NAME) as weights,
            importlib.resources.as_file(package / CONF_NAME) as conf_path,
        ):
            _verify(weights)
            with warnings.catch_warnings():  # transkun's CRF uses torch.jit.script, deprecated in torch 2.9+
                warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
                conf_manager = moduleconf.parseFromFile(str(conf_path))  # imports transkun.ModelTransformer
            model = conf_manager["Model"].module.TransKun(conf=conf_manager["Model"].config)
            checkpoint = torch.load(str(weights), map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["best_state_dict" if "best_state_dict" in checkpoint else "state_dict"])
        model.eval()
        # transkun's backbone wraps every layer in torch.utils.checkpoint even at inference, which
        # only saves memory for backward passes and warns on every call; calling the layers
        # directly computes the same numbers.
        model.backbone.useGradientCheckpoint = False
        self.network = model  # transkun's TransKun module
        self.sample_rate: int = model.fs
        self.segment_s: float = model.segmentSizeInSecond
        self.hop_s: float = model.segmentHopSizeInSecond
        log.info("transkun %s loaded (%d torch threads)", TRANSKUN_VERSION, self.num_threads)

    def transcribe(self, samples: np.ndarray, progress: Progress) -> list[ModelNote]:
        """Notes and pedals of ``samples`` (float32 (frames, channels) at ``sample_rate``), in seconds.

        ``progress(fraction, message)`` is called before each segment and may raise to stop.
        """
        import torch
        from transkun.Util import makeFrame

        model = self.network
        fs, hop = model.fs, model.hopSize
        samples = samples.astype(np.float32, copy=False)

        # The geometry of TransKun.transcribe: the signal is padded by (segment - hop) on both sides.
        pad_s = self.segment_s - self.hop_s
        pad_frames = math.ceil(pad_s * fs)
        padded_frames = samples.shape[0] + 2 * pad_frames
        step_frames = math.ceil(self.hop_s * fs / hop) * hop  # a whole number of model frames
        step_model_frames = step_frames // hop
        segment_frames = math.ceil(self.segment_s * fs)
        last_model_frame = round(segment_frames / hop)
        forced_start = [math.floor(pad_s * fs / hop)] * len(model.targetMIDIPitch)

        by_pitch: dict[int, list] = defaultdict(list)
        starts = range(0, padded_frames, step_frames)
        with torch.inference_mode():
            for n, begin in enumerate(starts):
                progress(n / len(starts), f"piano: segment {n + 1} of {len(starts)}")
                segment = _zero_padded_segment(samples, begin - pad_frames, segment_frames)
                events, last_offsets = model.transcribeFrames(
                    makeFrame(segment, hop, model.windowSize).unsqueeze(0),
                    forcedStartPos=forced_start,
                    velocityCriteron=VELOCITY_CRITERION,
                    onsetBound=None,
                    lastFrameIdx=last_model_frame,
                )
                # notes still sounding at a segment's end start the next segment's decoding
                forced_start = [max(k - step_model_frames, 0) for k in last_offsets]
                _merge(by_pitch, events[0], begin / fs - pad_s)
        progress(1.0, "piano: done")

        for events in by_pitch.values():  # the last event of each pitch ends with the audio
            events[-1].hasOffset = True
        finished = [e for events in by_pitch.values() for e in events if e.hasOffset]
        return [ModelNote(e.start, e.end, e.pitch, int(e.velocity)) for e in _resolve_overlapping(finished)]


def _verify(weights: Path) -> None:
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != WEIGHTS_SHA256:
        raise ModelError(
            f"The piano model weights {weights} are damaged or not transkun {TRANSKUN_VERSION}'s; "
            f"reinstall with: pip install --no-deps --force-reinstall transkun=={TRANSKUN_VERSION}"
        )


def _zero_padded_segment(samples: np.ndarray, first: int, length: int):
    """Frames ``[first, first + length)`` of ``samples`` extended with zeros on both sides, as a
    (channels, length) tensor; only this segment is copied."""
    import torch

    segment = np.zeros((samples.shape[1], length), dtype=np.float32)
    lo, hi = max(first, 0), min(first + length, samples.shape[0])
    if lo < hi:
        segment[:, lo - first : hi - first] = samples[lo:hi].T
    return torch.from_numpy(segment)


def _merge(by_pitch: dict[int, list], segment_events: list, offset_s: float) -> None:
    """Add one segment's events, shifted to input time, as ``TransKun.transcribe`` does.

    An event that overlaps the previous event of its pitch replaces it when it has its own onset and
    otherwise continues it (the event was cut by the segment border); events without an onset that
    continue nothing are dropped.
    """
    for e in segment_events:
        e.start = max(e.start + offset_s, 0)
        e.end = max(e.end + offset_s, e.start)
    for e in segment_events:
        same = by_pitch[e.pitch]
        if same and e.start < same[-1].end:
            if e.hasOnset:
                same[-1] = e
            else:
                same[-1].hasOffset = e.hasOffset
                same[-1].end = max(e.end, same[-1].end)
            continue
        if e.hasOnset:
            same.append(e)


def _resolve_overlapping(events: list) -> list:
    """transkun's ``Data.resolveOverlapping`` without its prints: cut each event at the next onset of
    its pitch, then drop events left with no length."""
    events.sort(key=lambda e: (e.start, e.end, e.pitch))
    last_of_pitch: dict[int, object] = {}
    for e in events:
        previous = last_of_pitch.get(e.pitch)
        if previous is not None and previous.end > e.start:
            previous.end = e.start
        last_of_pitch[e.pitch] = e
    events.sort(key=lambda e: (e.start, e.end, e.pitch))
    dropped = [e for e in events if not e.start < e.end]
    if dropped:
        log.debug("dropped %d events of zero length", len(dropped))
    return [e for e in events if e.start < e.end]
