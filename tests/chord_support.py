"""Chord test material: additive-synthesis chords (exact pitches, no soundfont needed) and a stand-in for
the chord network, so the chord pipeline, the CLI and the REAPER round trip run without its checkpoint:
``install_stand_in`` puts a module in the place of ``reascribe.models.chords.transcriber``."""

from __future__ import annotations

import sys
import types
from typing import NamedTuple

import numpy as np
from reascribe.events import ChordSegment


def tone(pitches_midi: list[int], seconds: float, rate: int = 22050, partials: int = 6) -> np.ndarray:
    """A plucked-string-like chord: each pitch with decaying harmonics."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for p in pitches_midi:
        f0 = 440.0 * 2 ** ((p - 69) / 12)
        for h in range(1, partials + 1):
            if f0 * h < rate / 2:
                out += np.sin(2 * np.pi * f0 * h * t) / h * np.exp(-t * 0.8)
    return (0.2 * out / np.abs(out).max()).astype(np.float32)


def progression(chords: list[list[int]], seconds_each: float, rate: int = 22050) -> np.ndarray:
    return np.concatenate([tone(c, seconds_each, rate) for c in chords])


class StandInResult(NamedTuple):
    segments: list
    key: str | None


SEGMENTS = (ChordSegment(0.0, 1.0, "C:maj"), ChordSegment(1.0, 2.0, "A:min7/b7"), ChordSegment(2.0, 2.5, "N"))


class StandInTranscriber:
    sample_rate = 22050

    def __init__(self, segments=SEGMENTS, key: str | None = "C:maj") -> None:
        self.segments, self.key = list(segments), key
        self.given = []  # the samples of each call

    def transcribe(self, samples, progress):
        self.given.append(samples)
        progress(0.5, "listening")
        return StandInResult(list(self.segments), self.key)


def install_stand_in(monkeypatch, segments=SEGMENTS, key: str | None = "C:maj") -> list:
    """Make the stand-in the chord model for this test; returns the list of the transcribers made."""
    made = []

    class ChordTranscriber(StandInTranscriber):
        def __init__(self, num_threads=None) -> None:
            super().__init__(segments, key)
            made.append(self)

    module = types.ModuleType("reascribe.models.chords.transcriber")
    module.ChordTranscriber = ChordTranscriber
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return made


def make_stand_in_pipeline(kind: str, num_threads: int | None = None):
    """A daemon pipeline factory: the chord pipeline around the stand-in model."""
    from reascribe.pipelines.chords import ChordsPipeline

    return ChordsPipeline(num_threads, model=StandInTranscriber())
