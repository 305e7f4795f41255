"""Separate and mix jobs: the protocol's new kinds, their execution with the real hpss separation, and the
worker process running them (tests/daemon_support.py's onset pipeline stands in for the transcribers)."""

from __future__ import annotations

import json
import threading

import mido
import numpy as np
import pytest
import soundfile as sf
from daemon_support import make_project, request_doc, wait_for

from reascribe import execute_stems
from reascribe.errors import RequestError
from reascribe.execute_stems import execute_mix_request, execute_separate_request
from reascribe.jobs import Jobs, JobState
from reascribe.pipelines import no_progress
from reascribe.protocol import ItemResult, parse_request
from reascribe.separation.hpss import HpssSeparator
from reascribe.spool import Spool

RATE = 44100
FAST = "daemon_support:make_fast"


def write_mix(path, seconds=3.0, silent=False):
    t = np.arange(int(seconds * RATE)) / RATE
    clicks = np.zeros_like(t)
    for start in range(0, len(t), RATE // 2):
        clicks[start : start + 64] = np.exp(-np.arange(len(clicks[start : start + 64])) / 8.0)
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + clicks
    sf.write(path, np.stack([y, 0.5 * y], axis=1) * (0 if silent else 1), RATE)
    return path


@pytest.fixture
def project(tmp_path):
    folder, _ = make_project(tmp_path / "song")
    return folder, write_mix(folder / "Media" / "mix.wav")


def doc(project, kind, options=None, **item):
    folder, wav = project
    d = request_doc("r1", folder, wav, kind=kind, options=options or {})
    d["items"][0].update(item)
    return d


# -- protocol -------------------------------------------------------------------------------------


def test_the_new_kinds_and_their_options_parse(project):
    assert parse_request(doc(project, "separate", {"backend": "demucs"})).options == {"backend": "demucs"}
    options = {"kinds": ["piano", "drums"], "drums": {"channel": 2}, "piano": {"pedal_extend": True}}
    assert parse_request(doc(project, "mix", options)).options == options


@pytest.mark.parametrize("kind, options, words", [
    ("separate", {"backend": "spleeter"}, "'backend' must be one of hpss, demucs"),
    ("separate", {"kinds": ["drums"]}, "Unknown option 'kinds' for separate"),
    ("mix", {"kinds": []}, "'kinds' must be a list of different kinds"),
    ("mix", {"kinds": ["drums", "drums"]}, "'kinds' must be a list of different kinds"),
    ("mix", {"kinds": ["separate"]}, "'kinds' must be a list of different kinds"),
    ("mix", {"kinds": "drums"}, "'kinds' must be a list of different kinds"),
    ("mix", {"drums": {"channel": 17}}, "'channel' must be a whole number from 1 to 16"),
    ("mix", {"drums": {"pedal_extend": True}}, "Unknown option 'pedal_extend' for drums"),
    ("mix", {"piano": []}, "'options' must be an object"),
])
def test_bad_options_of_the_new_kinds_are_sentences(project, kind, options, words):
    with pytest.raises(RequestError, match=words):
        parse_request(doc(project, kind, options))


def test_stems_and_parts_appear_in_a_result_only_when_set():
    plain = ItemResult("{I}", "{T}", "done").to_dict()
    assert "stems" not in plain and "parts" not in plain
    stems = [{"name": "drums", "path": "/p/a.wav"}]
    assert ItemResult("{I}", "{T}", "done", stems=stems).to_dict()["stems"] == stems


# -- execution ------------------------------------------------------------------------------------


def test_separate_writes_the_played_section_into_the_project_never_overwriting(project):
    folder, wav = project
    request = parse_request(doc(project, "separate", start_offset_s=0.5, length_s=1.0, playrate=2.0))
    first = execute_separate_request(request, HpssSeparator(), no_progress, [])
    second = execute_separate_request(request, HpssSeparator(), no_progress, [])
    assert first.status == second.status == "done"
    (item,), (again,) = first.items, second.items
    assert item.section == pytest.approx((0.5, 2.5))
    paths = [s["path"] for s in item.stems]
    assert [s["name"] for s in item.stems] == ["drums", "harmonic", "residual"]
    assert paths == [str(folder / "Media" / "reascribe" / f"Clicks-r1_{n}.wav") for n in ("drums", "harmonic", "residual")]
    assert [s["path"] for s in again.stems] == [p.replace(".wav", " (2).wav") for p in paths]
    total = sum(sf.read(p, dtype="float32")[0] for p in paths)
    mix = sf.read(wav, dtype="float32")[0][RATE // 2 : RATE // 2 * 5]
    np.testing.assert_allclose(total, mix, atol=1e-4)


@pytest.mark.parametrize("change, words", [
    (lambda wav: write_mix(wav, silent=True), "silent"),
    (lambda wav: wav.unlink(), "is missing"),
    (lambda wav: setattr(execute_stems, "MAX_SECTION_S", 1.0), "more than the 1 s separated at once"),
])
def test_bad_input_fails_the_item_with_a_sentence(project, monkeypatch, change, words):
    monkeypatch.setattr(execute_stems, "MAX_SECTION_S", execute_stems.MAX_SECTION_S)
    request = parse_request(doc(project, "separate"))
    change(project[1])
    result = execute_separate_request(request, HpssSeparator(), no_progress, [])
    assert result.status == "failed" and words in result.error
    assert not (project[0] / "Media" / "reascribe").exists() or not any((project[0] / "Media" / "reascribe").iterdir())


def test_mix_transcribes_each_kind_from_the_audio_it_hears_best(project):
    heard = {}

    class Recorder:
        sample_rate, mono = RATE, False

        def __init__(self, kind):
            self.kind = kind

        def run(self, audio, options, progress):
            heard[self.kind] = (audio.samples, options)
            from reascribe.events import Events, NoteEvent
            return Events([NoteEvent(0.25, 0.5, 60, 90)])

    options = {"kinds": ["drums", "piano"], "drums": {"channel": 3}}
    request = parse_request(doc(project, "mix", options, start_offset_s=1.0, length_s=1.5))
    result = execute_mix_request(request, HpssSeparator(), lambda kind, p: Recorder(kind), no_progress, [])
    (item,) = result.items
    # With hpss the drum model hears the whole mix (its percussive stem costs it hits), piano the harmonic stem.
    assert [(p["kind"], p["stem"], p["channel"], p["pitched"]) for p in item.parts] == [
        ("drums", "mix", 3, False), ("piano", "harmonic", 1, True)]
    assert item.parts[0]["notes"] == [[1.25, 1.5, 60, 90]]  # in seconds of the source
    assert heard["drums"][1] == {"channel": 3} and heard["piano"][1] == {}
    mix, harmonic = heard["drums"][0], heard["piano"][0]
    between_clicks = slice(RATE // 4, RATE // 4 + 4000)
    assert np.abs(mix[between_clicks]).max() == pytest.approx(0.3, abs=0.02)  # the tone, as in the file
    assert np.abs(mix).max() > 0.9 and np.abs(harmonic).max() < 0.6  # the clicks: in the mix, not the harmonic stem
    midi = mido.MidiFile(item.artifact)
    assert [t.name for t in midi.tracks[1:]] == ["Clicks drums", "Clicks piano"]


# -- the worker -----------------------------------------------------------------------------------


@pytest.fixture
def jobs(tmp_path):
    spool = Spool(tmp_path / "spool").create()
    jobs = Jobs(spool, [], pipeline_factory=FAST)
    jobs.start()
    yield jobs
    jobs.shutdown(grace_s=0)


def run_request(jobs, d):
    jobs.spool.publish_request(d)
    request = jobs.spool.admit(f"{d['id']}.json")
    jobs.submit_request(request.id, request.kind)
    path = jobs.spool.outbox / f"{d['id']}.json"
    wait_for(path.exists, 120, what="the result")
    return json.loads(path.read_text())


def test_the_worker_runs_separate_and_mix_requests(jobs, project):
    separated = run_request(jobs, doc(project, "separate"))
    assert separated["status"] == "done", separated["error"]
    assert [s["name"] for s in separated["items"][0]["stems"]] == ["drums", "harmonic", "residual"]
    mixed = run_request(jobs, {**doc(project, "mix"), "id": "r2"})
    assert mixed["status"] == "done", mixed["error"]
    assert [p["kind"] for p in mixed["items"][0]["parts"]] == ["piano", "drums"]  # every kind with a stem


def test_demucs_without_weights_fails_the_request_with_a_sentence(tmp_path, project, monkeypatch):
    monkeypatch.setenv("REASCRIBE_DEMUCS_WEIGHTS", str(tmp_path / "nowhere.th"))  # the worker inherits it
    spool = Spool(tmp_path / "spool2").create()
    jobs = Jobs(spool, [], pipeline_factory=FAST)
    jobs.start()
    try:
        result = run_request(jobs, doc(project, "separate", {"backend": "demucs"}))
    finally:
        jobs.shutdown(grace_s=0)
    assert result["status"] == "failed"
    assert "nowhere.th" in result["error"] or "needs the demucs package" in result["error"]


def test_file_jobs_write_stems_into_a_folder_and_a_mix_into_one_midi_file(jobs, tmp_path):
    wav = write_mix(tmp_path / "song.wav")
    done = threading.Event()
    stems = jobs.submit_file(wav, "separate", tmp_path / "song stems", on_finished=lambda job: done.set())
    assert done.wait(120)
    assert jobs.get(stems.id).state is JobState.DONE
    assert sorted(p.name for p in (tmp_path / "song stems").iterdir()) == [
        "song_drums.wav", "song_harmonic.wav", "song_residual.wav"]
    done.clear()
    mix = jobs.submit_file(wav, "mix", tmp_path / "song.mid", on_finished=lambda job: done.set())
    assert done.wait(120)
    assert jobs.get(mix.id).state is JobState.DONE, jobs.get(mix.id).error
    assert [t.name for t in mido.MidiFile(tmp_path / "song.mid").tracks[1:]] == ["song piano", "song drums"]
