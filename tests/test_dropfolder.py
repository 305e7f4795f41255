"""Drop folders: which files are taken, when, under what name, and never twice (also across restarts)."""

import json
import logging
import os
import shutil
import time

import mido
import pytest
from daemon_support import CLICK_TIMES_S, no_thread_leaks, wait_for, write_clicks  # noqa: F401

from reascribe.config import Config
from reascribe.daemon import Daemon
from reascribe.dropfolder import DropFolders, accepts
from reascribe.jobs import Job, JobSource, JobState
from reascribe.midi_out import read_events

STABLE_S = 1.5


class Submitted:
    """Collects what DropFolders submits; ``finish`` plays the job's end as the job queue would."""

    def __init__(self):
        self.calls = []
        self.kinds = []

    def __call__(self, audio_path, midi_path, kind, on_finished):
        self.calls.append((audio_path, midi_path, on_finished))
        self.kinds.append(kind)

    def finish(self, index, state=JobState.DONE, error=None):
        audio_path, midi_path, on_finished = self.calls[index]
        output = None
        if state is JobState.DONE:
            midi_path.write_bytes(b"MThd")
            output = midi_path
        on_finished(Job(f"file-{index}", "piano", JobSource.FILE, state=state, output=output, error=error))


@pytest.fixture
def submitted():
    return Submitted()


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "drop"
    path.mkdir()
    return path


def make_drops(folder, submitted, out_dir=None):
    drops = DropFolders([folder], out_dir, submitted, stable_s=STABLE_S)
    drops.create()
    return drops


def settle(drops, path, start_s=100.0):
    """Offer ``path`` and poll it past the settling time, with a made-up clock."""
    drops.offer(path, now_s=start_s)
    drops.poll(now_s=start_s)
    return drops.poll(now_s=start_s + STABLE_S + 0.01)


@pytest.mark.parametrize("name", ["take.wav", "Take.WAV", "a b.flac", "x.mp3", "song.m4a", "loop.aiff"])
def test_accepts_audio(name):
    assert accepts(name)


@pytest.mark.parametrize("name", ["take.mid", "take.wav.reascribe-error.txt", ".hidden.wav", "take.wav.part",
                                  "take.wav.crdownload", "take.wav~", "take.wav.tmp", "notes.txt", "take"])
def test_ignores_everything_else(name):
    assert not accepts(name)


def test_a_file_is_taken_once_when_it_stopped_changing(folder, submitted):
    drops = make_drops(folder, submitted)
    wav = write_clicks(folder / "take.wav")
    drops.offer(wav, now_s=100.0)
    assert drops.poll(now_s=100.0) == pytest.approx(STABLE_S)
    assert drops.poll(now_s=101.0) == pytest.approx(0.5)
    assert submitted.calls == []
    assert drops.poll(now_s=101.6) is None
    assert [(a, m) for a, m, _ in submitted.calls] == [(wav, folder / "take.mid")]
    drops.offer(wav, now_s=102.0)  # events keep coming while the job runs
    assert drops.poll(now_s=110.0) is None
    assert len(submitted.calls) == 1


def test_a_growing_file_waits_until_it_is_complete(folder, submitted):
    drops = make_drops(folder, submitted)
    wav = folder / "take.wav"
    wav.write_bytes(b"RIFF" + b"\x00" * 100)
    drops.offer(wav, now_s=100.0)
    with open(wav, "ab") as f:
        f.write(b"\x00" * 100)
    drops.poll(now_s=101.0)  # changed: settling starts again
    drops.poll(now_s=102.0)
    assert submitted.calls == []
    drops.poll(now_s=102.6)
    assert len(submitted.calls) == 1


def test_an_empty_or_vanished_file_is_not_taken(folder, submitted):
    drops = make_drops(folder, submitted)
    empty = folder / "empty.wav"
    empty.touch()
    assert settle(drops, empty) is None
    gone = write_clicks(folder / "gone.wav")
    drops.offer(gone, now_s=100.0)
    gone.unlink()
    assert drops.poll(now_s=200.0) is None
    assert submitted.calls == []


def test_files_outside_the_folders_are_ignored(folder, submitted, tmp_path):
    drops = make_drops(folder, submitted)
    assert settle(drops, write_clicks(tmp_path / "elsewhere.wav")) is None
    assert submitted.calls == []


def test_never_processed_twice_across_restarts(folder, submitted):
    wav = write_clicks(folder / "take.wav")
    settle(make_drops(folder, submitted), wav)
    submitted.finish(0)
    ledger = json.loads((folder / ".reascribe" / "processed.json").read_text())
    (entry,) = ledger.values()
    assert entry["state"] == "done" and entry["output"] == str(folder / "take.mid")
    restarted = Submitted()
    drops = make_drops(folder, restarted)
    assert settle(drops, wav) is None  # every rescan offers it again; the ledger keeps it from being taken
    assert restarted.calls == []
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new version of the file is new
    settle(drops, wav, start_s=200.0)
    assert [m for _, m, _ in restarted.calls] == [folder / "take (2).mid"]


def test_a_failure_leaves_a_note_and_is_not_retried(folder, submitted):
    wav = write_clicks(folder / "take.wav")
    settle(make_drops(folder, submitted), wav)
    submitted.finish(0, JobState.FAILED, "take.wav is silent; there is nothing to transcribe.")
    note = folder / "take.wav.reascribe-error.txt"
    assert "take.wav is silent; there is nothing to transcribe." in note.read_text(encoding="utf-8")
    restarted = Submitted()
    assert settle(make_drops(folder, restarted), wav) is None
    assert restarted.calls == []
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))
    drops = make_drops(folder, restarted)
    settle(drops, wav)
    restarted.finish(0)
    assert not note.exists()  # the fixed file succeeded; its old note is gone


def test_a_cancelled_file_is_remembered_without_a_note(folder, submitted):
    wav = write_clicks(folder / "take.wav")
    settle(make_drops(folder, submitted), wav)
    submitted.finish(0, JobState.CANCELLED, "Cancelled by the user.")
    assert not (folder / "take.wav.reascribe-error.txt").exists()
    restarted = Submitted()
    settle(make_drops(folder, restarted), wav)
    assert restarted.calls == []


def test_files_with_one_stem_get_a_note_each(folder, submitted):
    drops = make_drops(folder, submitted)
    settle(drops, write_clicks(folder / "song.wav"))
    settle(drops, write_clicks(folder / "song.flac"))
    submitted.finish(0, JobState.FAILED, "the wav failed")
    submitted.finish(1, JobState.FAILED, "the flac failed")
    assert "the wav failed" in (folder / "song.wav.reascribe-error.txt").read_text(encoding="utf-8")
    assert "the flac failed" in (folder / "song.flac.reascribe-error.txt").read_text(encoding="utf-8")


def test_a_note_never_replaces_or_removes_a_file_it_did_not_write(folder, submitted, tmp_path):
    mine = folder / "take.wav.reascribe-error.txt"
    mine.write_text("my own notes")
    wav = write_clicks(folder / "take.wav")
    drops = make_drops(folder, submitted)
    settle(drops, wav)
    submitted.finish(0, JobState.FAILED, "first failure")
    ours = folder / "take.wav.reascribe-error (2).txt"
    assert "first failure" in ours.read_text(encoding="utf-8")
    assert mine.read_text() == "my own notes"
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))  # a fixed version succeeds
    settle(drops, wav, start_s=200.0)
    submitted.finish(1)
    assert not ours.exists()  # the ledger says reascribe wrote it
    assert mine.read_text() == "my own notes"


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_note_does_not_follow_a_symlink(folder, submitted, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    os.symlink(target, folder / "take.wav.reascribe-error.txt")
    os.symlink(tmp_path / "nowhere.txt", folder / "take.wav.reascribe-error (2).txt")  # dangling
    settle(make_drops(folder, submitted), write_clicks(folder / "take.wav"))
    submitted.finish(0, JobState.FAILED, "it failed")
    assert target.read_text() == "precious"
    assert not (tmp_path / "nowhere.txt").exists()
    assert "it failed" in (folder / "take.wav.reascribe-error (3).txt").read_text(encoding="utf-8")


def test_a_second_failure_replaces_reascribes_own_note(folder, submitted):
    wav = write_clicks(folder / "take.wav")
    drops = make_drops(folder, submitted)
    settle(drops, wav)
    submitted.finish(0, JobState.FAILED, "first failure")
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))
    settle(drops, wav, start_s=200.0)
    submitted.finish(1, JobState.FAILED, "second failure")
    notes = sorted(n for n in os.listdir(folder) if "reascribe-error" in n)
    assert notes == ["take.wav.reascribe-error.txt"]
    assert "second failure" in (folder / notes[0]).read_text(encoding="utf-8")


def test_names_never_collide(folder, submitted, tmp_path):
    out = tmp_path / "midi"
    (folder / "take.mid").write_bytes(b"mine")
    drops = make_drops(folder, submitted)
    settle(drops, write_clicks(folder / "take.wav"))
    settle(drops, write_clicks(folder / "take.flac"))
    assert [m for _, m, _ in submitted.calls] == [folder / "take (2).mid", folder / "take (3).mid"]
    assert (folder / "take.mid").read_bytes() == b"mine"
    other = Submitted()
    drops = make_drops(folder, other, out_dir=out)
    assert out.is_dir()
    settle(drops, write_clicks(folder / "other.wav"))
    assert [m for _, m, _ in other.calls] == [out / "other.mid"]


def test_the_drums_subfolder_transcribes_drums(folder, submitted, tmp_path):
    drops = make_drops(folder, submitted)
    drums = folder / "drums"
    assert drums.is_dir()  # created with the drop folder, so a producer sees where drum loops go
    settle(drops, write_clicks(folder / "keys.wav"))
    settle(drops, write_clicks(drums / "beat.wav"))
    assert [(a, m) for a, m, _ in submitted.calls] == [(folder / "keys.wav", folder / "keys.mid"),
                                                        (drums / "beat.wav", drums / "beat.mid")]
    assert submitted.kinds == ["piano", "drums"]
    submitted.finish(1)
    (entry,) = json.loads((drums / ".reascribe" / "processed.json").read_text()).values()
    assert entry["output"] == str(drums / "beat.mid")  # the subfolder keeps its own ledger
    assert not (folder / ".reascribe" / "processed.json").exists()

    other = Submitted()
    drops = make_drops(folder, other, out_dir=tmp_path / "midi")
    settle(drops, write_clicks(drums / "fill.wav"))
    assert [m for _, m, _ in other.calls] == [tmp_path / "midi" / "fill.mid"] and other.kinds == ["drums"]


def test_a_listed_folder_keeps_its_kind_when_it_is_the_drums_folder_of_another(folder, submitted):
    drops = make_drops(folder, submitted)
    both = DropFolders([folder, folder / "drums"], None, submitted, stable_s=STABLE_S)
    both.create()
    settle(both, write_clicks(folder / "drums" / "take.wav"))
    assert submitted.kinds == ["piano"]
    assert (folder / "drums" / "drums").is_dir() and drops.kinds[folder / "drums"] == "drums"


def test_an_unreadable_ledger_is_set_aside(folder, submitted, caplog):
    (folder / ".reascribe").mkdir()
    (folder / ".reascribe" / "processed.json").write_text("{broken")
    with caplog.at_level(logging.ERROR, logger="reascribe.dropfolder"):
        make_drops(folder, submitted)
    assert "is unreadable" in caplog.text
    assert [n for n in os.listdir(folder / ".reascribe") if n.startswith("processed.json.unreadable-")]


# -- through the daemon: watchdog, the worker and execute_file --


@pytest.fixture
def daemon_config(tmp_path, folder):
    return Config(spool_dir=tmp_path / "spool", drop_dirs=[folder], osc_port=0)


def test_a_file_written_slowly_becomes_one_midi_file(daemon_config, folder, tmp_path):
    source = write_clicks(tmp_path / "source.wav")
    daemon = Daemon(daemon_config, "daemon_support:make_fast", show_progress=False, preload=())
    daemon.start()
    try:
        partial = folder / "take.wav"
        data = source.read_bytes()
        with open(partial, "wb") as f:  # a slow copy: a chunk every 0.3 s for 1.5 s
            for start in range(0, len(data), len(data) // 5 + 1):
                f.write(data[start:start + len(data) // 5 + 1])
                f.flush()
                time.sleep(0.3)
        midi = wait_for(lambda: (folder / "take.mid").exists() and folder / "take.mid", 60, what="take.mid")
        events, tempo_map = read_events(midi)
        assert len(events.notes) == len(CLICK_TIMES_S)
        assert tempo_map.segments
        shutil.copy(source, folder / "second.wav.part")  # a browser download in progress
        os.replace(folder / "second.wav.part", folder / "second.wav")
        wait_for(lambda: (folder / "second.mid").exists(), 60, what="second.mid")
        time.sleep(STABLE_S + 1)  # time enough to take a file again, if it were to
    finally:
        daemon.stop()
    assert sorted(n for n in os.listdir(folder) if (folder / n).is_file()) == [
        "second.mid", "second.wav", "take.mid", "take.wav"]


def test_the_daemon_watches_the_drums_subfolder_and_writes_channel_10(daemon_config, folder, tmp_path):
    daemon = Daemon(daemon_config, "daemon_support:make_fast", show_progress=False, preload=())
    daemon.start()
    try:
        source = write_clicks(tmp_path / "beat.wav")
        os.replace(source, folder / "drums" / "beat.wav")
        midi = wait_for(lambda: (folder / "drums" / "beat.mid").exists() and folder / "drums" / "beat.mid", 60,
                        what="drums/beat.mid")
    finally:
        daemon.stop()
    notes = [m for m in mido.MidiFile(midi) if m.type == "note_on"]
    assert len(notes) == len(CLICK_TIMES_S) and {m.channel for m in notes} == {9}


def test_dropped_files_are_not_processed_again_by_a_new_daemon(daemon_config, folder):
    write_clicks(folder / "take.wav")
    bad = folder / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    for _ in range(2):
        daemon = Daemon(daemon_config, "daemon_support:make_fast", show_progress=False, preload=())
        daemon.start()
        try:
            ledger = folder / ".reascribe" / "processed.json"
            wait_for(lambda: ledger.exists() and len(json.loads(ledger.read_text())) == 2, 60, what="both files")
            time.sleep(STABLE_S + 1)  # time enough to take them again, if it were to
        finally:
            daemon.stop()
    assert sorted(n for n in os.listdir(folder) if (folder / n).is_file()) == [
        "broken.wav", "broken.wav.reascribe-error.txt", "take.mid", "take.wav"]
    assert "broken.wav" in (folder / "broken.wav.reascribe-error.txt").read_text()


def test_the_separate_and_mix_subfolders(folder, submitted, tmp_path):
    drops = make_drops(folder, submitted)
    assert (folder / "separate").is_dir() and (folder / "mix").is_dir()
    settle(drops, write_clicks(folder / "separate" / "song.wav"))
    settle(drops, write_clicks(folder / "mix" / "song.wav"))
    assert [(a, m) for a, m, _ in submitted.calls] == [
        (folder / "separate" / "song.wav", folder / "separate" / "song stems"),
        (folder / "mix" / "song.wav", folder / "mix" / "song.mid")]
    assert submitted.kinds == ["separate", "mix"]
    other = Submitted()
    drops = make_drops(folder, other, out_dir=tmp_path / "out")
    settle(drops, write_clicks(folder / "separate" / "next.wav"))
    assert [m for _, m, _ in other.calls] == [tmp_path / "out" / "next stems"]


def test_the_daemon_separates_into_a_stems_folder_once_and_notes_a_silent_file(daemon_config, folder, tmp_path):
    import numpy as np
    import soundfile as sf

    daemon = Daemon(daemon_config, "daemon_support:make_fast", show_progress=False, preload=())
    daemon.start()
    try:
        os.replace(write_clicks(tmp_path / "song.wav"), folder / "separate" / "song.wav")
        sf.write(tmp_path / "quiet.wav", np.zeros(22050), 22050)
        os.replace(tmp_path / "quiet.wav", folder / "separate" / "quiet.wav")
        os.replace(write_clicks(tmp_path / "beat.wav"), folder / "mix" / "beat.wav")
        stems = folder / "separate" / "song stems"
        wait_for(lambda: stems.is_dir() and len(os.listdir(stems)) == 3, 120, what="the stems")
        note = folder / "separate" / "quiet.wav.reascribe-error.txt"
        wait_for(note.exists, 120, what="the note on the silent file")
        midi = wait_for(lambda: (folder / "mix" / "beat.mid").exists() and folder / "mix" / "beat.mid", 120,
                        what="mix/beat.mid")
        time.sleep(STABLE_S + 1)  # time enough to take the stems as dropped audio, if it were to
    finally:
        daemon.stop()
    assert sorted(os.listdir(stems)) == ["song_drums.wav", "song_harmonic.wav", "song_residual.wav"]
    assert "silent" in note.read_text()
    ledger = json.loads((folder / "separate" / ".reascribe" / "processed.json").read_text())
    assert len(ledger) == 2
    assert [t.name for t in mido.MidiFile(midi).tracks[1:]] == ["beat piano", "beat drums"]
