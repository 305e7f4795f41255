"""Request execution: every check on what a request names, and the mapping of events to source time.

The pipeline here is a recorder that returns known events, so the tests see exactly what execution does
around a model; the real model runs in tests/test_end_to_end.py.
"""

import os
import time

import mido
import numpy as np
import pytest
import soundfile as sf

from reascribe.errors import JobCancelled
from reascribe.events import ControlEvent, Events, NoteEvent
from reascribe.execute import execute_file, execute_request
from reascribe.midi_out import read_events
from reascribe.pipelines import no_progress
from reascribe.protocol import parse_request

SR = 22050


class RecordingPipeline:
    kind = "piano"
    sample_rate = SR
    mono = True

    def __init__(self, error=None):
        self.sections = []
        self.error = error

    def load(self):
        pass

    def run(self, audio, options, progress):
        self.sections.append(audio)
        progress(0.5, "half")
        if self.error:
            raise self.error
        return Events([NoteEvent(0.25, 0.75, 60, 90)], [ControlEvent(0.1, 64, 127), ControlEvent(0.9, 64, 0)])


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "song"
    (root / "Media").mkdir(parents=True)
    (root / "song.rpp").write_text("<REAPER_PROJECT\n>\n")
    t = np.arange(SR * 4) / SR
    sf.write(root / "Media" / "tone.wav", 0.5 * np.sin(2 * np.pi * 220 * t), SR)
    sf.write(root / "Media" / "silence.wav", np.zeros(SR * 2), SR)
    (root / "Media" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    return root


def make_request(project, source_path, kind="piano", options=None, **item):
    path = str(source_path)
    entry = {
        "item_guid": "{I}",
        "take_guid": "{T}",
        "name": "Keys",
        "source": {"path": path, "size_bytes": os.path.getsize(path) if os.path.exists(path) else None},
        "position_s": 10.0,
        "length_s": 2.0,
        "start_offset_s": 1.0,
        "playrate": 1.0,
    }
    entry.update(item)
    return parse_request(
        {
            "protocol": 1,
            "id": "20261121T000000-abcdef12",
            "kind": kind,
            "created_at": time.time(),
            "project": {"file": str(project / "song.rpp"), "media_dir": str(project / "Media")},
            "tempo_map": {"bpm": 120, "markers": [{"time_s": 11.0, "bpm": 60}]},
            "options": options or {},
            "items": [entry],
        }
    )


def run(request, pipeline=None, roots=()):
    return execute_request(request, pipeline or RecordingPipeline(), no_progress, list(roots)).to_dict()


def test_events_come_back_in_source_seconds_with_a_midi_copy_in_the_project(project):
    pipeline = RecordingPipeline()
    result = run(make_request(project, project / "Media" / "tone.wav", playrate=2.0), pipeline)
    assert result["status"] == "done", result
    section = pipeline.sections[0]
    assert section.start_s == pytest.approx(1.0) and section.duration_s == pytest.approx(4.0 - 1.0, abs=1e-3)
    item = result["items"][0]
    assert item["notes"] == [[1.25, 1.75, 60, 90]]  # 0.25 s into a section that starts at source 1.0 s
    assert item["cc"] == [[1.1, 64, 127], [1.9, 64, 0]]
    artifact = item["artifact"]
    assert artifact.startswith(str(project / "Media" / "reascribe")) and artifact.endswith(".mid")
    events, tempo_map = read_events(artifact)
    # Item time = (source - start offset) / playrate; the file's map is the project's from the item start.
    assert events.notes[0].start_s == pytest.approx(0.125, abs=2e-3)
    assert tempo_map.segments[0].bpm == pytest.approx(120) and tempo_map.segments[1].time_s == pytest.approx(1.0)


def test_a_second_run_never_overwrites_the_first_artifact(project):
    request = make_request(project, project / "Media" / "tone.wav")
    first = run(request)["items"][0]["artifact"]
    second = run(request)["items"][0]["artifact"]
    assert first != second and os.path.exists(first) and os.path.exists(second)


@pytest.mark.parametrize(
    "source, item, words",
    [
        ("../outside.wav", {}, "outside the project"),
        ("Media/../../outside.wav", {}, "outside the project"),
        ("Media/link.wav", {}, "outside the project"),
        ("Media/gone.wav", {}, "missing"),
        ("Media/tone.wav", {"stretch_markers": 2}, "stretch markers"),
        ("Media/tone.wav", {"length_s": 0.0}, "zero length"),
        ("Media/tone.wav", {"start_offset_s": 9.0}, "after the end"),
        ("Media/tone.wav", {"source": None}, "changed since"),
        ("Media/silence.wav", {}, "silent"),
        ("Media/corrupt.wav", {}, "corrupt.wav"),
    ],
)
def test_bad_items_fail_with_a_sentence_and_the_model_never_runs(project, source, item, words):
    outside = project.parent / "outside.wav"
    sf.write(outside, np.ones(SR) * 0.1, SR)
    (project / "Media" / "link.wav").symlink_to(outside)
    path = project / source
    if item.get("source", 1) is None:
        item = {"source": {"path": str(path), "size_bytes": 12345}}
    pipeline = RecordingPipeline()
    result = run(make_request(project, path, **item), pipeline)
    assert result["status"] == "failed"
    assert words in result["items"][0]["error"]
    assert result["error"] == result["items"][0]["error"]
    assert pipeline.sections == []


def test_allowed_roots_admit_audio_outside_the_project(project):
    library = project.parent / "library"
    library.mkdir()
    sf.write(library / "take.wav", np.ones(SR * 2) * 0.1, SR)
    request = make_request(project, library / "take.wav", start_offset_s=0.0)
    assert run(request)["status"] == "failed"
    assert run(request, roots=[library])["status"] == "done"


def test_an_expired_request_fails_without_reading_audio(project):
    request = make_request(project, project / "Media" / "tone.wav")
    object.__setattr__(request, "created_at", time.time() - 2 * request.ttl_s)
    pipeline = RecordingPipeline()
    result = run(request, pipeline)
    assert result["status"] == "failed" and "expired" in result["error"] and pipeline.sections == []


def test_a_crashing_model_fails_the_item_with_a_sentence(project):
    result = run(make_request(project, project / "Media" / "tone.wav"), RecordingPipeline(RuntimeError("boom")))
    assert result["status"] == "failed" and "unexpectedly (RuntimeError)" in result["error"]


def test_cancellation_propagates(project):
    with pytest.raises(JobCancelled):
        run(make_request(project, project / "Media" / "tone.wav"), RecordingPipeline(JobCancelled()))


def channels_of(midi_path):
    """The channels of a MIDI file's note and program messages."""
    return {m.channel for m in mido.MidiFile(midi_path) if m.type in ("note_on", "note_off", "program_change")}


@pytest.mark.parametrize("kind, options, channel, pitched", [
    ("piano", {}, 1, True),
    ("drums", {}, 10, False),
    ("drums", {"channel": 3}, 3, False),
])
def test_results_and_their_midi_copy_carry_the_kinds_channel(project, kind, options, channel, pitched):
    result = run(make_request(project, project / "Media" / "tone.wav", kind, options))
    (item,) = result["items"]
    assert (item["status"], item["channel"], item["pitched"]) == ("done", channel, pitched)
    assert channels_of(item["artifact"]) == {channel - 1}


def test_a_drum_file_becomes_a_midi_file_on_channel_10(project, tmp_path):
    out = execute_file(project / "Media" / "tone.wav", "drums", tmp_path / "tone.mid", RecordingPipeline(),
                       no_progress, {})
    assert channels_of(out) == {9}
    out = execute_file(project / "Media" / "tone.wav", "drums", tmp_path / "one.mid", RecordingPipeline(),
                       no_progress, {"channel": 1})
    assert channels_of(out) == {0}
