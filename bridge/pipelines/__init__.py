"""Pipelines: one per job kind, all of one shape.

A pipeline is loaded once (``load``) and then run many times: ``run(audio, options, progress) ->
Events``, with event times in seconds from the start of ``audio``. ``progress(fraction, message)``
is called as work advances; it raises ``JobCancelled`` when the user cancelled, so a pipeline
stops at its next progress call.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np
import soxr

from reascribe.audio import AudioSection, downmix
from reascribe.errors import ModelError, RequestError
from reascribe.events import Events

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores progress and never cancels."""


class Pipeline(Protocol):
    kind: str
    sample_rate: int  # the rate ``run`` wants its audio in
    mono: bool  # whether ``run`` wants one channel

    def load(self) -> None: ...

    def run(self, audio: AudioSection, options: dict[str, Any], progress: Progress) -> Events: ...


def checked_rate(model: Any, sample_rate: int, what: str, remedy: str = "reinstall reascribe") -> Any:
    """``model`` when it runs at ``sample_rate``; a ModelError naming ``what`` and ``remedy`` otherwise."""
    if model.sample_rate != sample_rate:
        raise ModelError(f"The {what} runs at {model.sample_rate} Hz, not {sample_rate} Hz; {remedy}.")
    return model


def model_input(audio: AudioSection, channels: int, sample_rate: int) -> np.ndarray:
    """``audio`` as a model reads it: (samples, channels) float32 at ``sample_rate``."""
    samples = downmix(audio.samples, channels)
    if audio.sample_rate != sample_rate:
        samples = soxr.resample(samples, audio.sample_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def create(kind: str, num_threads: int | None = None) -> Pipeline:
    """A new, not yet loaded pipeline for ``kind``; imports its heavy dependencies lazily.

    ``num_threads``: CPU threads for its model (None: one per physical core)."""
    if kind == "piano":
        from reascribe.pipelines.piano import PianoPipeline

        return PianoPipeline(num_threads)
    if kind == "drums":
        from reascribe.pipelines.drums import DrumsPipeline

        return DrumsPipeline(num_threads)
    if kind == "chords":
        from reascribe.pipelines.chords import ChordsPipeline

        return ChordsPipeline(num_threads)
    if kind == "generate":
        from reascribe.pipelines.generate import GeneratePipeline

        return GeneratePipeline(num_threads)
    raise RequestError(f"Unknown job kind {kind!r}.")
