"""Piano with pedals: transkun notes and velocities, sustain (CC64) and soft (CC67) pedal.

transkun 2.0's note ends aim at key release (its checkpoint was trained without pedal extension;
models/piano/MODEL_CARD.md has the measurements), as MIDI captured from a keyboard has them.
``pedal_extend`` moves the end of each note released under the sustain pedal to the pedal's release
(or the next strike of its pitch), which is how long the note sounds.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from typing import Any

from reascribe.audio import AudioSection
from reascribe.events import SOFT_CC, SUSTAIN_CC, ControlEvent, Events, NoteEvent
from reascribe.models.piano.transkun_model import SOFT_PEDAL_PITCH, SUSTAIN_PEDAL_PITCH
from reascribe.pipelines import Progress, checked_rate, model_input
from reascribe.protocol import validate_options

log = logging.getLogger(__name__)

PEDAL_ON_VALUE, PEDAL_OFF_VALUE = 127, 0  # transkun's pedals are binary
# transkun was trained on stereo MAESTRO and averages the channels' power spectra, so stereo goes in
# as it is, mono as one channel (the same as two identical ones) and more channels are mixed to stereo.
MODEL_CHANNELS = 2
DEFAULTS = {"pedal_extend": False, "soft_pedal": True}


class PianoPipeline:
    kind = "piano"
    sample_rate = 44100  # transkun 2.0's rate (its 2.0.conf "fs")
    mono = False

    def __init__(self, num_threads: int | None = None, model: Any = None) -> None:
        """``model``: an already loaded ``TranskunPiano`` (or a stand-in with its ``transcribe``)."""
        self.num_threads = num_threads
        self.model = model

    def load(self) -> None:
        if self.model is None:
            from reascribe.models.piano.transkun_model import TranskunPiano

            model = TranskunPiano(self.num_threads)
            self.model = checked_rate(model, self.sample_rate, "piano model", "reinstall transkun 2.0.1")

    def run(self, audio: AudioSection, options: dict[str, Any], progress: Progress) -> Events:
        opts = {**DEFAULTS, **validate_options(self.kind, options)}
        self.load()
        samples = model_input(audio, MODEL_CHANNELS, self.sample_rate)
        # no gain change: transkun standardises each 16 s segment itself
        raw = self.model.transcribe(samples, progress)

        notes = [NoteEvent(r.start_s, r.end_s, r.pitch, max(1, min(127, r.velocity))) for r in raw if r.pitch > 0]
        sustain = [(r.start_s, r.end_s) for r in raw if r.pitch == SUSTAIN_PEDAL_PITCH]
        soft = [(r.start_s, r.end_s) for r in raw if r.pitch == SOFT_PEDAL_PITCH] if opts["soft_pedal"] else []
        if opts["pedal_extend"]:
            notes = extend_to_pedal(notes, sustain)
        controls = _pedal_controls(SUSTAIN_CC, sustain) + _pedal_controls(SOFT_CC, soft)
        log.info("piano: %d notes, %d sustain and %d soft pedal presses", len(notes), len(sustain), len(soft))
        return Events(
            sorted(notes, key=lambda n: (n.start_s, n.pitch_midi)),
            sorted(controls, key=lambda c: (c.time_s, c.controller)),
        )


def extend_to_pedal(notes: list[NoteEvent], sustain: list[tuple[float, float]]) -> list[NoteEvent]:
    """Each note released while the sustain pedal is down lasts until the pedal comes up, or until
    its pitch is struck again if that comes first. ``sustain`` holds (press_s, release_s) pairs."""
    presses = sorted(sustain)
    press_times = [p for p, _ in presses]
    onsets: dict[int, list[float]] = defaultdict(list)
    for note in notes:
        onsets[note.pitch_midi].append(note.start_s)
    for times in onsets.values():
        times.sort()

    extended = []
    for note in notes:
        i = bisect.bisect_right(press_times, note.end_s) - 1  # last press at or before the key release
        if i >= 0 and note.end_s < presses[i][1]:
            same = onsets[note.pitch_midi]
            j = bisect.bisect_right(same, note.start_s)
            restrike_s = same[j] if j < len(same) else float("inf")
            end_s = max(note.end_s, min(presses[i][1], restrike_s))
            note = NoteEvent(note.start_s, end_s, note.pitch_midi, note.velocity)
        extended.append(note)
    return extended


def _pedal_controls(controller: int, intervals: list[tuple[float, float]]) -> list[ControlEvent]:
    controls = []
    for press_s, release_s in intervals:
        controls.append(ControlEvent(press_s, controller, PEDAL_ON_VALUE))
        controls.append(ControlEvent(release_s, controller, PEDAL_OFF_VALUE))
    return controls
