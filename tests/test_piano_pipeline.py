"""The piano pipeline: pedal logic and event mapping on hand-made events; one real transkun run (slow)."""

from __future__ import annotations

import os

import mir_eval
import numpy as np
import pytest
import torch

from reascribe.audio import AudioSection, load_section
from reascribe.errors import JobCancelled, ModelError, RequestError
from reascribe.events import ControlEvent, NoteEvent
from reascribe.models.piano import transkun_model
from reascribe.models.piano.transkun_model import ModelNote, TranskunPiano, physical_cores
from reascribe.pipelines import no_progress
from reascribe.pipelines.piano import PianoPipeline, extend_to_pedal

from render import MAESTRO_MIDI, render_midi_excerpt

EXCERPT_START_S, EXCERPT_DUR_S = 30.0, 18.0  # 109 notes and 19 sustain presses of real pedalling


def note(start_s, end_s, pitch=60, velocity=80):
    return NoteEvent(start_s, end_s, pitch, velocity)


class TestExtendToPedal:
    PEDAL = [(1.0, 3.0), (3.5, 6.0)]

    def test_note_released_while_the_pedal_is_down_lasts_until_it_comes_up(self):
        assert extend_to_pedal([note(0.5, 1.5)], self.PEDAL) == [note(0.5, 3.0)]
        assert extend_to_pedal([note(3.6, 4.0)], self.PEDAL) == [note(3.6, 6.0)]

    def test_note_released_before_the_press_or_between_pedals_is_unchanged(self):
        assert extend_to_pedal([note(0.2, 0.9)], self.PEDAL) == [note(0.2, 0.9)]
        assert extend_to_pedal([note(2.0, 3.2)], self.PEDAL) == [note(2.0, 3.2)]  # released after pedal up
        assert extend_to_pedal([note(6.5, 7.0)], self.PEDAL) == [note(6.5, 7.0)]

    def test_release_at_the_very_press_is_held_and_at_the_very_release_is_not(self):
        assert extend_to_pedal([note(0.5, 1.0)], self.PEDAL) == [note(0.5, 3.0)]
        assert extend_to_pedal([note(0.5, 3.0)], self.PEDAL) == [note(0.5, 3.0)]

    def test_restrike_of_the_same_pitch_ends_the_held_note(self):
        notes = [note(1.2, 1.4, 60), note(2.0, 2.1, 60), note(1.3, 1.5, 64)]
        assert extend_to_pedal(notes, self.PEDAL) == [note(1.2, 2.0, 60), note(2.0, 3.0, 60), note(1.3, 3.0, 64)]

    def test_a_note_that_already_outlasts_the_pedal_is_not_shortened(self):
        assert extend_to_pedal([note(1.2, 1.4), note(1.3, 2.5)], [(1.0, 1.35)]) == [note(1.2, 1.4), note(1.3, 2.5)]

    def test_no_pedal(self):
        assert extend_to_pedal([note(0.0, 1.0)], []) == [note(0.0, 1.0)]


class FakeModel:
    """Stands in for TranskunPiano: records what it was given and returns fixed events."""

    sample_rate = 44100

    def __init__(self, events):
        self.events = events
        self.given = None

    def transcribe(self, samples, progress):
        self.given = samples
        progress(0.0, "segment 1 of 1")
        progress(1.0, "done")
        return self.events


MODEL_EVENTS = [
    ModelNote(0.50, 0.80, 60, 90),
    ModelNote(0.60, 0.90, 64, 0),  # transkun's velocity classes include 0, a note-off in MIDI
    ModelNote(0.55, 2.00, -64, 112),  # sustain pedal
    ModelNote(1.00, 1.50, -67, 90),  # soft pedal
]


def section(seconds=3.0, channels=2, rate=44100):
    return AudioSection(np.zeros((int(seconds * rate), channels), dtype=np.float32), rate, 12.0)


def test_events_from_model_output():
    events = PianoPipeline(model=FakeModel(MODEL_EVENTS)).run(section(), {}, no_progress)
    assert events.notes == [note(0.5, 0.8, 60, 90), note(0.6, 0.9, 64, 1)]
    assert events.controls == [
        ControlEvent(0.55, 64, 127),
        ControlEvent(1.0, 67, 127),
        ControlEvent(1.5, 67, 0),
        ControlEvent(2.0, 64, 0),
    ]


def test_options_switch_soft_pedal_off_and_pedal_extension_on():
    events = PianoPipeline(model=FakeModel(MODEL_EVENTS)).run(
        section(), {"soft_pedal": False, "pedal_extend": True}, no_progress
    )
    assert [c.controller for c in events.controls] == [64, 64]
    assert events.notes == [note(0.5, 2.0, 60, 90), note(0.6, 2.0, 64, 1)]


def test_unknown_or_mistyped_options_are_refused():
    pipeline = PianoPipeline(model=FakeModel([]))
    with pytest.raises(RequestError, match="Unknown option 'sustain'"):
        pipeline.run(section(), {"sustain": True}, no_progress)
    with pytest.raises(RequestError, match="'pedal_extend' must be a bool"):
        pipeline.run(section(), {"pedal_extend": "yes"}, no_progress)


def test_model_gets_stereo_at_its_rate():
    model = FakeModel([])
    surround = section(1.0, channels=6, rate=48000)
    surround.samples[:, 0] = 0.5  # front left only
    PianoPipeline(model=model).run(surround, {}, no_progress)
    assert model.given.shape == (44100, 2)
    assert model.given[22050, 0] > 0.1 and model.given[22050, 1] == pytest.approx(0.0, abs=1e-6)
    model = FakeModel([])
    PianoPipeline(model=model).run(section(1.0, channels=1), {}, no_progress)
    assert model.given.shape == (44100, 1)


def test_damaged_or_other_weights_are_refused(monkeypatch):
    monkeypatch.setattr(transkun_model, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelError, match=r"2\.0\.pt are damaged or not transkun 2\.0\.1's"):
        TranskunPiano()


def test_physical_cores_is_a_sane_thread_count():
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


# --- the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def excerpt():
    wav, truth = render_midi_excerpt(MAESTRO_MIDI, EXCERPT_START_S, EXCERPT_DUR_S)
    return load_section(wav, sample_rate=PianoPipeline.sample_rate), truth


@pytest.fixture(scope="module")
def pipeline():
    pipeline = PianoPipeline()
    pipeline.load()
    return pipeline


@pytest.fixture(scope="module")
def transcribed(pipeline, excerpt):
    audio, _ = excerpt
    calls = []
    events = pipeline.run(audio, {}, lambda fraction, message: calls.append((fraction, message)))
    return events, calls


@pytest.mark.slow
def test_real_excerpt_notes_and_pedal(transcribed, excerpt):
    events, calls = transcribed
    _, truth = excerpt
    ref = np.array([[s, e] for s, e, _, _ in truth.notes])
    ref_hz = mir_eval.util.midi_to_hz(np.array([p for _, _, p, _ in truth.notes]))
    est = np.array([[n.start_s, n.end_s] for n in events.notes])
    est_hz = mir_eval.util.midi_to_hz(np.array([n.pitch_midi for n in events.notes]))
    _, _, onset_f1, _ = mir_eval.transcription.precision_recall_f1_overlap(ref, ref_hz, est, est_hz, offset_ratio=None)
    assert onset_f1 >= 0.9
    assert all(21 <= n.pitch_midi <= 108 and 1 <= n.velocity <= 127 for n in events.notes)
    sustain = [c for c in events.controls if c.controller == 64]
    assert sustain and [c.value for c in sustain] == [127, 0] * (len(sustain) // 2)
    # (18 s + 2 x 8 s padding) / 8 s hop = 5 segments, reported before each, then done
    assert [f for f, _ in calls] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.slow
def test_real_excerpt_matches_transkun_own_transcribe(transcribed, excerpt, pipeline):
    events, _ = transcribed
    audio, _ = excerpt
    with torch.no_grad():
        stock = pipeline.model.network.transcribe(torch.from_numpy(audio.samples))
    stock_notes = [(n.start, n.end, n.pitch, max(1, n.velocity)) for n in stock if n.pitch > 0]
    ours = [(n.start_s, n.end_s, n.pitch_midi, n.velocity) for n in events.notes]
    assert sorted(ours) == sorted(stock_notes)
    stock_sustain = sorted(t for n in stock if n.pitch == -64 for t in (n.start, n.end))
    assert [c.time_s for c in events.controls if c.controller == 64] == stock_sustain


@pytest.mark.slow
def test_cancel_stops_at_the_next_segment(pipeline, excerpt):
    audio, _ = excerpt
    calls = []

    def cancel_on_second_segment(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        pipeline.run(audio, {}, cancel_on_second_segment)
    assert calls == [0.0, 0.2]
