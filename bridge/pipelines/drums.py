"""Drums: each hit of our drum network becomes a short note, by default on the General MIDI drum map.

A drum hit has no length a sampler cares about, so every note lasts ``note_length`` seconds; a hit of
the same note that comes sooner ends the one before, so notes of one pitch never overlap.
``note_map`` replaces the notes of some drums (a sampler with its own layout); the others keep GM's.
"""

from __future__ import annotations

import logging
from typing import Any

from reascribe.audio import AudioSection
from reascribe.events import Events, NoteEvent
from reascribe.models.drums.classes import GM_NOTE
from reascribe.pipelines import Progress, checked_rate, model_input
from reascribe.protocol import validate_options

log = logging.getLogger(__name__)

DEFAULT_NOTE_LENGTH_S = 0.1


class DrumsPipeline:
    kind = "drums"
    sample_rate = 44100  # the drum network's rate
    mono = True

    def __init__(self, num_threads: int | None = None, model: Any = None) -> None:
        """``model``: an already loaded ``DrumTranscriber`` (or a stand-in with its ``transcribe``)."""
        self.num_threads = num_threads
        self.model = model

    def load(self) -> None:
        if self.model is None:
            from reascribe.models.drums.transcriber import DrumTranscriber

            self.model = checked_rate(DrumTranscriber(num_threads=self.num_threads), self.sample_rate, "drum model")

    def run(self, audio: AudioSection, options: dict[str, Any], progress: Progress) -> Events:
        opts = validate_options(self.kind, options)
        note_length_s = opts.get("note_length", DEFAULT_NOTE_LENGTH_S)
        note_of = {**GM_NOTE, **opts.get("note_map", {})}
        self.load()
        samples = model_input(audio, 1, self.sample_rate)[:, 0]
        hits = self.model.transcribe(samples, progress)
        notes = hits_to_notes([(h.time_s, note_of[h.drum], h.velocity) for h in hits], note_length_s)
        log.info("drums: %d notes from %d hits", len(notes), len(hits))
        return Events(notes, [])


def hits_to_notes(hits: list[tuple[float, int, int]], note_length_s: float) -> list[NoteEvent]:
    """(time_s, pitch, velocity) hits as notes of ``note_length_s``, each cut at the next hit of its pitch.

    Hits of one pitch at the same time (two drums mapped to one note) are one note, the loudest."""
    loudest: dict[tuple[float, int], int] = {}
    for time_s, pitch, velocity in hits:
        key = (float(time_s), int(pitch))
        loudest[key] = max(loudest.get(key, 0), max(1, min(127, int(velocity))))
    next_onset: dict[int, float] = {}
    notes = []
    for time_s, pitch in sorted(loudest, reverse=True):  # latest first: the next hit of each pitch is known
        end_s = min(time_s + note_length_s, next_onset.get(pitch, float("inf")))
        notes.append(NoteEvent(time_s, end_s, pitch, loudest[(time_s, pitch)]))
        next_onset[pitch] = time_s
    return sorted(notes, key=lambda n: (n.start_s, n.pitch_midi))
