"""The Lua side against the daemon's own spool code (reascribe.spool), with no model and no daemon process."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest_lua import BRIDGE, SHOW_JOBS, TRANSCRIBE, fake_posix_and_windows, spool  # noqa: F401  (fixtures)
from reascribe.protocol import ItemResult, Result
from reascribe.spool import Spool


def test_a_request_round_trips_through_the_daemons_spool(fake, spool):
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    fake.current.tempo.add_marker(12.0, 90.0)
    track = fake.add_track("Keys")
    item, take = fake.add_audio_item(track, Path(fake.current.record_path) / "piano.wav", 10.0, 6.0,
                                     start_offset_s=1.5, name="Piano DI")
    fake.run_action(TRANSCRIBE)
    fake.run_ticks(1)

    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    assert request is not None and request.items[0].take_guid == take.guid
    claim = daemon.claim(request.id)
    daemon.write_progress(request.id, "piano", "running", 0.5, "transcribing")
    fake.run_ticks(20)
    assert f"piano {request.id}: running 50% (transcribing)" in fake.console

    heartbeat = daemon.read_bridge_heartbeat()
    assert heartbeat is not None and heartbeat["apply_action"].startswith("_RS")

    section = (request.items[0].section_start_s, request.items[0].section_end_s)
    done = ItemResult(take.item.guid, take.guid, "done", section=section,
                      notes=[[2.0, 2.5, 60, 80]], cc=[[2.0, 64, 127], [2.4, 64, 0]])
    daemon.write_result(Result.from_items(claim.id, "piano", [done]))
    daemon.write_progress(request.id, "piano", "done", 1.0, "")
    fake.run_ticks(20)

    (new,) = [t for t in item.takes if "reascribe_result" in t.ext]
    (note,) = fake.take_notes_project_time(new)
    assert note.start_s == pytest.approx(10.5, abs=1e-3) and note.end_s == pytest.approx(11.0, abs=1e-3)
    assert daemon.has_result(request.id) and (spool / "done" / f"{request.id}.json").exists()
    assert (spool / "archive" / f"{request.id}.json").exists()


def test_cancel_from_the_job_window_reaches_the_daemon(fake, spool):
    daemon = Spool(spool).create()
    daemon.write_progress("20261121T121500-0000abcd", "piano", "running", 0.25, "")
    fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    fake.gfx_click_text("Cancel")
    fake.run_ticks(2)
    assert daemon.cancel_requested("20261121T121500-0000abcd")
    assert daemon.cancel_ids() == ["20261121T121500-0000abcd"]


def test_a_daemon_failure_is_shown_in_the_console(fake, spool):
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    track = fake.add_track("Keys")
    fake.add_audio_item(track, Path(fake.current.record_path) / "piano.wav", 0.0, 4.0)
    fake.run_action(TRANSCRIBE)
    fake.run_ticks(1)
    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    daemon.claim(request.id)
    daemon.write_result(Result.failure(request.id, "piano", "The audio file is silent."))
    fake.run_ticks(20)
    assert f"piano transcription {request.id}: The audio file is silent." in fake.console
    assert (spool / "failed" / f"{request.id}.json").exists()
    assert fake.running(BRIDGE) is not None
