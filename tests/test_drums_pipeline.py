"""The drum pipeline around a stand-in model: note map, note length, overlaps, options, audio it is given."""

from __future__ import annotations

import re

import numpy as np
import pytest

from drum_support import Hit, StandInTranscriber, install_stand_in
from reascribe import pipelines
from reascribe.audio import AudioSection
from reascribe.errors import JobCancelled, ModelError, RequestError
from reascribe.pipelines import no_progress
from reascribe.pipelines.drums import DrumsPipeline, hits_to_notes


def section(seconds=2.0, channels=2, rate=44100):
    return AudioSection(np.zeros((int(seconds * rate), channels), dtype=np.float32), rate, 3.0)


def run(hits, options=None, audio=None):
    """The notes as (start_s, end_s, pitch, velocity), rounded to a microsecond, and the model."""
    model = StandInTranscriber(hits)
    events = DrumsPipeline(model=model).run(audio or section(), options or {}, no_progress)
    assert events.controls == []
    return [(round(n.start_s, 6), round(n.end_s, 6), n.pitch_midi, n.velocity) for n in events.notes], model


def test_hits_become_short_general_midi_notes():
    notes, _ = run([Hit(0.5, "kick", 100), Hit(0.5, "hihat_closed", 70), Hit(1.0, "snare", 90),
                    Hit(1.2, "ride", 0), Hit(1.3, "crash", 300)])
    assert notes == [(0.5, 0.6, 36, 100), (0.5, 0.6, 42, 70), (1.0, 1.1, 38, 90), (1.2, 1.3, 51, 1),
                     (1.3, 1.4, 49, 127)]


def test_note_length_and_a_partial_note_map():
    notes, _ = run([Hit(0.5, "kick", 100), Hit(1.0, "snare", 90), Hit(1.5, "tom_low", 80)],
                   {"note_length": 0.25, "note_map": {"kick": 35, "tom_low": 41}})
    assert notes == [(0.5, 0.75, 35, 100), (1.0, 1.25, 38, 90), (1.5, 1.75, 41, 80)]


def test_a_hit_of_the_same_note_ends_the_one_before():
    notes, _ = run([Hit(1.0, "kick", 100), Hit(1.04, "kick", 90), Hit(1.02, "snare", 80), Hit(1.5, "kick", 70)])
    assert notes == [(1.0, 1.04, 36, 100), (1.02, 1.12, 38, 80), (1.04, 1.14, 36, 90), (1.5, 1.6, 36, 70)]


def test_drums_mapped_to_one_note_at_one_time_are_one_note_the_loudest():
    notes, _ = run([Hit(0.5, "hihat_open", 60), Hit(0.5, "hihat_closed", 90), Hit(0.55, "hihat_open", 50)],
                   {"note_map": {"hihat_open": 42}})
    assert notes == [(0.5, 0.55, 42, 90), (0.55, 0.65, 42, 50)]


def test_hits_to_notes_never_overlaps_a_pitch():
    rng = np.random.default_rng(7)
    hits = [(float(t), int(p), 100) for t, p in zip(rng.uniform(0, 2, 300).round(2), rng.integers(35, 40, 300))]
    notes = hits_to_notes(hits, 0.1)
    for pitch in {n.pitch_midi for n in notes}:
        same = [n for n in notes if n.pitch_midi == pitch]
        assert all(a.start_s < a.end_s <= b.start_s for a, b in zip(same, same[1:]))
    assert len(notes) == len({(t, p) for t, p, _ in hits})


@pytest.mark.parametrize("options, words", [
    ({"note_length": 0}, "'note_length' must be a number of seconds from 0.01 to 2.0"),
    ({"note_length": 2.5}, "'note_length'"),
    ({"note_length": float("nan")}, "'note_length'"),
    ({"note_length": "0.1"}, "'note_length'"),
    ({"note_length": True}, "'note_length'"),
    ({"note_map": [36, 38]}, "'note_map' must be an object mapping drum names to MIDI notes"),
    ({"note_map": {"cowbell": 56}}, "'note_map' names the unknown drum 'cowbell'; known drums: kick, snare"),
    ({"note_map": {"kick": 128}}, "'note_map.kick' must be a whole number from 0 to 127"),
    ({"note_map": {"snare": 38.5}}, "'note_map.snare'"),
    ({"note_map": {"snare": None}}, "'note_map.snare'"),
    ({"channel": 0}, "'channel' must be a whole number from 1 to 16"),
    ({"channel": 17}, "'channel'"),
    ({"pedal_extend": True}, "Unknown option 'pedal_extend' for drums; known options: channel, note_length, note_map"),
])
def test_bad_options_are_refused_with_a_sentence_before_the_model_runs(options, words):
    model = StandInTranscriber()
    with pytest.raises(RequestError, match=re.escape(words)) as raised:
        DrumsPipeline(model=model).run(section(), options, no_progress)
    assert str(raised.value).endswith(".") and model.given == []


def test_the_model_gets_mono_float32_at_its_rate():
    audio = section(1.0, channels=2, rate=48000)
    audio.samples[:, 0] = 0.5  # left only
    _, model = run([], audio=audio)
    (given,) = model.given
    assert given.shape == (44100,) and given.dtype == np.float32
    assert given[22050] == pytest.approx(0.25, abs=1e-3)  # the two channels averaged
    _, model = run([], audio=section(1.0, channels=1))
    assert model.given[0].shape == (44100,)


def test_create_loads_the_shipped_model_once(monkeypatch):
    made = install_stand_in(monkeypatch)
    pipeline = pipelines.create("drums", num_threads=2)
    assert (pipeline.kind, pipeline.sample_rate, pipeline.mono) == ("drums", 44100, True)
    pipeline.load()
    pipeline.load()
    notes = pipeline.run(section(), {}, no_progress).notes
    assert len(made) == 1 and made[0].num_threads == 2
    assert [n.pitch_midi for n in notes] == [36, 42, 38, 36]


def test_a_model_at_another_rate_is_refused(monkeypatch):
    install_stand_in(monkeypatch, sample_rate=22050)
    with pytest.raises(ModelError, match="22050 Hz, not 44100 Hz"):
        DrumsPipeline().load()


def test_cancellation_from_the_model_propagates():
    class Cancelling(StandInTranscriber):
        def transcribe(self, samples, progress):
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        DrumsPipeline(model=Cancelling()).run(section(), {}, no_progress)
