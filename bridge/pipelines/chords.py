"""Chords: our chord network's segments, and the chords voiced as notes a producer can play back.

Each chord becomes its bass note in the second octave (the inversion's bass, so ``C:maj/3`` sounds E
under C-E-G) and its tones in close position around middle C, the position chosen nearest to the
chord before so the voicing moves smoothly. No-chord segments are silent. The segments (Harte labels)
and the key travel with the notes, for the chord track, the markers and the ``.lab`` file.
"""

from __future__ import annotations

import logging
from typing import Any

import mir_eval
import numpy as np
from reascribe.audio import AudioSection
from reascribe.events import ChordSegment, Events, NoteEvent
from reascribe.models.chords.vocabulary import symbol
from reascribe.pipelines import Progress, checked_rate, model_input
from reascribe.protocol import validate_options

log = logging.getLogger(__name__)

VELOCITY = 80
BASS_LOW = 36  # C2: the bass note is the lowest one from here up
UPPER_LOW, UPPER_HIGH = 53, 66  # lowest note of the upper voicing lies in F3..F#4


class ChordsPipeline:
    kind = "chords"
    sample_rate = 22050  # the chord network's rate
    mono = True

    def __init__(self, num_threads: int | None = None, model: Any = None) -> None:
        """``model``: an already loaded ``ChordTranscriber`` (or a stand-in with its ``transcribe``)."""
        self.num_threads = num_threads
        self.model = model

    def load(self) -> None:
        if self.model is None:
            from reascribe.models.chords.transcriber import ChordTranscriber

            self.model = checked_rate(ChordTranscriber(num_threads=self.num_threads), self.sample_rate, "chord model")

    def run(self, audio: AudioSection, options: dict[str, Any], progress: Progress) -> Events:
        validate_options(self.kind, options)
        self.load()
        samples = model_input(audio, 1, self.sample_rate)[:, 0]
        result = self.model.transcribe(samples, progress)
        segments = [ChordSegment(s.start_s, s.end_s, s.label, symbol(s.label, result.key)) for s in result.segments]
        notes = voice(segments)
        log.info("chords: %d segments as %d notes, key %s", len(segments), len(notes), result.key)
        return Events(notes, [], segments, result.key)


def voice(segments: list[ChordSegment]) -> list[NoteEvent]:
    """Notes of each chord: its bass, then its tones in the close position nearest the previous chord."""
    notes: list[NoteEvent] = []
    previous: list[int] | None = None
    for seg in segments:
        root, bitmap, bass = mir_eval.chord.encode(seg.label)
        if root < 0 or not np.any(bitmap):
            continue
        tones = sorted((root + int(i)) % 12 for i in np.flatnonzero(bitmap))
        bass_pitch = BASS_LOW + (root + bass - BASS_LOW) % 12
        options = []
        for low in range(UPPER_LOW, UPPER_HIGH + 1):
            if low % 12 in tones:
                options.append(sorted(low + (pc - low) % 12 for pc in tones))
        upper = min(options, key=lambda v: (_movement(v, previous) if previous else abs(v[0] - 60), v[0]))
        previous = upper
        notes += [NoteEvent(seg.start_s, seg.end_s, p, VELOCITY) for p in [bass_pitch, *upper]]
    return sorted(notes, key=lambda n: (n.start_s, n.pitch_midi))


def _movement(voicing: list[int], previous: list[int]) -> int:
    """Semitones each new note lies from the nearest note of the previous chord, summed."""
    return sum(min(abs(p - q) for q in previous) for p in voicing)
