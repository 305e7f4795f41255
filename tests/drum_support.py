"""A stand-in for the drum network, so the drum pipeline, the CLI and the REAPER round trip run without
its checkpoint: ``install_stand_in`` puts a module in the place of ``reascribe.models.drums.transcriber``
whose ``DrumTranscriber`` "hears" fixed hits and records the samples it was given."""

from __future__ import annotations

import sys
import types
from typing import NamedTuple


class Hit(NamedTuple):
    time_s: float
    drum: str
    velocity: int


HITS = (Hit(0.5, "kick", 100), Hit(0.5, "hihat_closed", 70), Hit(1.0, "snare", 90), Hit(1.5, "kick", 110))


class StandInTranscriber:
    sample_rate = 44100

    def __init__(self, hits=HITS) -> None:
        self.hits = list(hits)
        self.given = []  # the samples of each call

    def transcribe(self, samples, progress):
        self.given.append(samples)
        progress(0.5, "listening")
        return list(self.hits)


def install_stand_in(monkeypatch, hits=HITS, sample_rate: int = 44100) -> list:
    """Make the stand-in the drum model for this test; returns the list of the transcribers made."""
    made = []

    class DrumTranscriber(StandInTranscriber):
        def __init__(self, num_threads=None) -> None:
            super().__init__(hits)
            self.sample_rate = sample_rate
            self.num_threads = num_threads
            made.append(self)

    module = types.ModuleType("reascribe.models.drums.transcriber")
    module.DrumTranscriber = DrumTranscriber
    module.DrumHit = Hit
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return made
