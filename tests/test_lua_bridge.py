"""reascribe_Bridge.lua and reascribe_Apply results.lua: results from outbox/ become MIDI takes."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest_lua import (  # noqa: F401  (fake_posix_and_windows, spool are fixtures)
    APPLY, BRIDGE, TRANSCRIBE, copy_back, fake_posix_and_windows, only_request, read_json, result_item, spool,
    write_daemon_heartbeat, write_result,
)

TOLERANCE_S = 1e-3  # PPQ rounding: half a tick is under 0.4 ms at 90 BPM and 960 PPQ
POLL_TICKS = 20  # a bit more than the bridge's 0.5 s poll at 30 ticks per second

# Source seconds (what the daemon returns) for an item at 10 s, 6 s long, start offset 1.5 s,
# playrate 1.5, in a project at 120 BPM with a change to 90 BPM at 12 s.
NOTES = [
    [2.0, 2.6, 60, 84],  # 10.333 - 10.733 s, before the tempo change
    [4.1, 4.55, 62, 70],  # 11.733 - 12.033 s, across the tempo change
    [4.7, 5.6, 64, 90],  # 12.133 - 12.733 s, after it
    [1.0, 2.0, 59, 50],  # sounds when the item starts: starts at 10 s
    [10.0, 11.0, 67, 100],  # 15.667 s, cut at the item end (16 s)
]
CC = [[1.0, 64, 127], [3.0, 64, 0], [4.0, 64, 127], [5.0, 67, 100]]


def project_s(src_s: float, position_s=10.0, start_offset_s=1.5, playrate=1.5) -> float:
    return position_s + (src_s - start_offset_s) / playrate


def setup_item(fake, spool, name="Piano DI", project=None, playrate=1.5, **kw):
    proj = project or fake.current
    if not proj.tempo.markers:
        proj.tempo.add_marker(12.0, 90.0)
    track = fake.add_track("Keys", project=proj)
    item, take = fake.add_audio_item(track, Path(proj.record_path) / f"{name}.wav", 10.0, 6.0,
                                     start_offset_s=1.5, playrate=playrate, name=name, **kw)
    fake.select_items(item)
    write_daemon_heartbeat(spool)
    return item, take


def transcribe(fake, spool) -> dict:
    """Run the action; return the request it wrote and leave it where the daemon puts it (archive/)."""
    before = set((spool / "inbox").iterdir())
    fake.run_action(TRANSCRIBE)
    fake.run_ticks(1)
    (path,) = set((spool / "inbox").iterdir()) - before
    request = json.loads(path.read_text())
    path.rename(spool / "archive" / path.name)
    return request


def answer(fake, spool, request, notes=NOTES, cc=CC, **kw) -> str:
    """Write the daemon's result for every item of the request."""
    items = [result_item(i["item_guid"], i["take_guid"], notes, cc, **kw) for i in request["items"]]
    write_result(spool, request["id"], items)
    return request["id"]


def new_takes(item):
    return [t for t in item.takes if "reascribe_result" in t.ext]


def test_bridge_applies_a_result_at_the_right_project_times(fake, spool):
    item, audio = setup_item(fake, spool)
    request = transcribe(fake, spool)
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)

    (take,) = new_takes(item)
    assert take.name == "Piano DI piano" and take.ext["reascribe_result"] == req_id
    assert item.active_take is take and item.takes[0].guid == audio.guid and not audio.alive
    notes = fake.take_notes_project_time(take)
    expected = ([(10.0, project_s(2.0), 59, 50)] + [(project_s(s), project_s(e), p, v) for s, e, p, v in NOTES[:3]]
                + [(project_s(10.0), 16.0, 67, 100)])
    assert len(notes) == len(expected)
    for got, want in zip(notes, expected):
        assert got.start_s == pytest.approx(want[0], abs=TOLERANCE_S)
        assert got.end_s == pytest.approx(want[1], abs=TOLERANCE_S)
        assert (got.pitch, got.vel, got.chan) == (want[2], want[3], 0)
    ccs = fake.take_ccs_project_time(take)
    assert [(c.cc, c.value, c.status) for c in ccs] == [(64, 127, 0xB0), (64, 0, 0xB0), (64, 127, 0xB0),
                                                         (67, 100, 0xB0), (64, 0, 0xB0), (67, 0, 0xB0)]
    assert [c.time_s for c in ccs] == pytest.approx([10.0, project_s(3.0), project_s(4.0), project_s(5.0), 16.0, 16.0],
                                                    abs=TOLERANCE_S)
    midi = take.source.midi
    assert [c.ppq for c in midi.ccs[-2:]] == [midi.length_ticks - 1] * 2  # pedals released on the last tick

    (undo,) = fake.undo_log
    assert (undo.desc, undo.flags, undo.project) == ("reascribe: transcribe piano (1 item)", -1, fake.current)
    assert (spool / "done" / f"{req_id}.json").exists() and not list((spool / "outbox").iterdir())
    assert (spool / "applied.log").read_text().split() == [req_id]
    assert fake.current.ext_state["reascribe"] == {f"applied:{req_id}": "1"}
    assert f"reascribe: {req_id}: added a piano take to 1 item (5 notes, 6 pedal events)." in fake.console
    heartbeat = read_json(spool / "bridge.heartbeat")
    assert abs(heartbeat["time"] - time.time()) < 5 and heartbeat["reaper"] == fake.app_version
    assert fake.lua("return reaper.NamedCommandLookup(...)", heartbeat["apply_action"]) == fake.command_id(APPLY)
    assert not fake.message_boxes  # the daemon heartbeat was fresh; the bridge never opens one
    assert fake.running(BRIDGE) is not None


def test_applying_the_same_result_again_changes_nothing(fake, spool):
    item, _ = setup_item(fake, spool)
    req_id = answer(fake, spool, transcribe(fake, spool))
    fake.run_ticks(POLL_TICKS)
    count, undo = fake.current.state_count, len(fake.undo_log)

    copy_back(spool, req_id)  # seen again: applied.log knows it
    fake.run_ticks(POLL_TICKS)
    assert len(item.takes) == 2 and len(fake.undo_log) == undo
    assert f"{req_id} was already applied" in fake.console

    # REAPER crashed after adding the take but before logging: only the take's P_EXT remains.
    (spool / "applied.log").unlink()
    fake.current.ext_state["reascribe"].clear()
    copy_back(spool, req_id)
    fake.run_ticks(POLL_TICKS)
    assert len(item.takes) == 2 and len(fake.undo_log) == undo
    assert "1 item already had it" in fake.console
    assert (spool / "applied.log").read_text().split() == [req_id]
    assert not list((spool / "outbox").iterdir())
    assert fake.current.state_count - count <= 2  # only the ProjExtState bookkeeping


def test_apply_results_action_uses_the_same_path(fake, spool):
    item, _ = setup_item(fake, spool)
    request = transcribe(fake, spool)
    fake.stop_all()
    answer(fake, spool, request)
    fake.run_action(APPLY)
    fake.run_ticks(1)
    assert len(new_takes(item)) == 1 and len(fake.undo_log) == 1
    fake.run_action(APPLY)  # nothing left: no undo point, no message
    fake.run_ticks(1)
    assert len(fake.undo_log) == 1


def test_pitch_follows_playrate_and_pitch_when_pitch_is_not_preserved(fake, spool):
    item, audio = setup_item(fake, spool, preserve_pitch=False, pitch=-2.0)
    answer(fake, spool, transcribe(fake, spool), notes=[[2.0, 2.6, 60, 84]], cc=[])
    fake.run_ticks(POLL_TICKS)
    (note,) = fake.take_notes_project_time(new_takes(item)[0])
    assert note.pitch == 60 + round(12 * 0.5849625) - 2  # 1.5x without preserved pitch is +7 semitones


def test_the_item_is_mapped_with_its_values_at_apply_time(fake, spool):
    item, audio = setup_item(fake, spool)
    request = transcribe(fake, spool)
    item.position_s = 20.0  # the user moved the item while the daemon worked
    answer(fake, spool, request, notes=[[2.0, 2.6, 60, 84]], cc=[])
    fake.run_ticks(POLL_TICKS)
    (note,) = fake.take_notes_project_time(new_takes(item)[0])
    assert note.start_s == pytest.approx(project_s(2.0, position_s=20.0), abs=TOLERANCE_S)


def test_a_deleted_item_fails_with_a_reason(fake, spool):
    item, _ = setup_item(fake, spool)
    request = transcribe(fake, spool)
    fake.delete_item(item)
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    failed = read_json(spool / "failed" / f"{req_id}.json")
    assert "the item was deleted" in failed["apply_error"] and failed["id"] == req_id
    assert not list((spool / "outbox").iterdir()) and not fake.undo_log
    assert "the item was deleted" in fake.console


def test_stretch_markers_or_a_new_source_fail_the_item(fake, spool):
    item, audio = setup_item(fake, spool)
    request = transcribe(fake, spool)
    audio.stretch_markers = 2
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    assert "stretch markers" in read_json(spool / "failed" / f"{req_id}.json")["apply_error"]

    audio.stretch_markers = 0
    request = transcribe(fake, spool)
    audio.source.filename = str(Path(fake.current.record_path) / "other.wav")
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    assert "different audio file" in read_json(spool / "failed" / f"{req_id}.json")["apply_error"]
    assert not new_takes(item)


def test_a_result_waits_while_its_project_is_closed(fake, spool):
    song = fake.current
    item, _ = setup_item(fake, spool)
    request = transcribe(fake, spool)
    fake.new_project(fake.root / "other" / "other.rpp")
    fake.close_project(song)
    req_id = answer(fake, spool, request)
    fake.run_ticks(3 * POLL_TICKS)
    assert (spool / "outbox" / f"{req_id}.json").exists() and not fake.undo_log

    fake.open_project(song)
    fake.run_ticks(POLL_TICKS)
    assert len(new_takes(item)) == 1 and (spool / "done" / f"{req_id}.json").exists()


def test_each_result_goes_to_the_project_holding_its_take(fake, spool):
    first = fake.current
    item_a, _ = setup_item(fake, spool, name="A")
    request_a = transcribe(fake, spool)
    second = fake.new_project(fake.root / "second" / "second.rpp")
    item_b, _ = setup_item(fake, spool, name="B", project=second)
    request_b = transcribe(fake, spool)
    fake.current = first  # the user switched back to the first tab
    answer(fake, spool, request_b)
    answer(fake, spool, request_a)
    fake.run_ticks(2 * POLL_TICKS)
    assert len(new_takes(item_a)) == 1 and len(new_takes(item_b)) == 1
    assert sorted((u.project.file, u.desc) for u in fake.undo_log) == [
        (first.file, "reascribe: transcribe piano (1 item)"), (second.file, "reascribe: transcribe piano (1 item)")]
    assert f"applied:{request_b['id']}" in second.ext_state["reascribe"]
    assert f"applied:{request_b['id']}" not in first.ext_state["reascribe"]


def test_garbage_in_outbox_is_failed_and_the_bridge_keeps_running(fake, spool):
    item, _ = setup_item(fake, spool)
    request = transcribe(fake, spool)
    (spool / "outbox" / "0-garbage.json").write_bytes(b"{\"id\": \"0-garbage\", \xff oops")
    (spool / "outbox" / "1-array.json").write_text("[1, 2]")
    (spool / "outbox" / "2-wrong-id.json").write_text(json.dumps({"protocol": 1, "id": "other", "status": "done"}))
    fake.run_ticks(POLL_TICKS)
    failed = {p.stem: read_json(p) for p in (spool / "failed").iterdir()}
    assert set(failed) == {"0-garbage", "1-array", "2-wrong-id"}
    assert "not a reascribe result" in failed["0-garbage"]["apply_error"]
    assert failed["0-garbage"]["raw"].startswith('{"id": "0-garbage", \ufffd')
    assert "is for other" in failed["2-wrong-id"]["apply_error"]
    assert fake.running(BRIDGE) is not None and not fake.script_errors

    answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    assert len(new_takes(item)) == 1


def test_a_failed_job_is_reported_with_the_daemons_sentence(fake, spool):
    item, _ = setup_item(fake, spool)
    request = transcribe(fake, spool)
    write_result(spool, request["id"], [], status="failed", error="The audio file is silent.")
    fake.run_ticks(POLL_TICKS)
    assert read_json(spool / "failed" / f"{request['id']}.json")["apply_error"] == "The audio file is silent."
    assert f"piano transcription {request['id']}: The audio file is silent." in fake.console
    assert not new_takes(item) and not fake.undo_log


def test_at_most_one_result_per_tick(fake, spool):
    items = [setup_item(fake, spool, name=f"P{i}")[0] for i in range(3)]
    requests = []
    for item in items:
        fake.select_items(item)
        requests.append(transcribe(fake, spool))
    for request in requests:
        answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)  # the poll happens within these ticks; then one result per tick
    applied_per_tick = []
    for _ in range(3):
        before = len(fake.undo_log)
        fake.run_ticks(1)
        applied_per_tick.append(len(fake.undo_log) - before)
    assert len(fake.undo_log) == 3 and max(applied_per_tick) <= 1


def test_job_progress_is_printed_only_when_it_changes(fake, spool):
    setup_item(fake, spool)
    transcribe(fake, spool)
    job = {"id": "j-1", "kind": "piano", "state": "running", "progress": 0.42, "message": "transcribing",
           "updated_at": time.time()}
    (spool / "jobs" / "j-1.json").write_text(json.dumps(job))
    opened = fake.console_opened
    fake.run_ticks(3 * POLL_TICKS)
    assert fake.console.count("piano j-1: running 42% (transcribing)") == 1
    assert fake.console_opened == opened  # progress does not pop the console window up
    job["progress"] = 0.8
    (spool / "jobs" / "j-1.json").write_text(json.dumps(job))
    fake.run_ticks(POLL_TICKS)
    assert "piano j-1: running 80% (transcribing)" in fake.console


def test_stopping_the_bridge_turns_its_toggle_off_and_releases_the_spool(fake, spool):
    setup_item(fake, spool)
    transcribe(fake, spool)
    assert (spool / "bridge.lock").exists()
    fake.run_action(BRIDGE)  # run again = stop (set_action_options(1))
    assert fake.running(BRIDGE) is None
    assert fake.toggle_states[(0, fake.command_id(BRIDGE))] == 0
    assert not (spool / "bridge.lock").exists() and not (spool / "bridge.heartbeat").exists()


def test_a_second_bridge_on_the_same_spool_waits_for_the_first(fake, spool):
    item, _ = setup_item(fake, spool)
    lock = {"token": "other-reaper", "time": time.time()}
    (spool / "bridge.lock").write_text(json.dumps(lock))
    fake.run_action(BRIDGE)
    request = transcribe(fake, spool)
    answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    assert not new_takes(item) and "this one waits" in fake.console

    lock["time"] = time.time() - 60  # the other REAPER went away
    (spool / "bridge.lock").write_text(json.dumps(lock))
    fake.run_ticks(3 * POLL_TICKS)
    assert len(new_takes(item)) == 1
    assert read_json(spool / "bridge.lock")["token"] != "other-reaper"


def test_the_bridge_works_on_reaper_without_set_action_options(tmp_path, spool):
    from reaper_fake import FakeReaper

    fake = FakeReaper(tmp_path, env={"REASCRIBE_SPOOL": str(spool)}, missing=("set_action_options",))
    item, _ = setup_item(fake, spool)
    answer(fake, spool, transcribe(fake, spool))
    fake.run_ticks(POLL_TICKS)
    assert len(new_takes(item)) == 1
    assert fake.toggle_states[(0, fake.command_id(BRIDGE))] == 1
    fake.stop_all()
    assert fake.toggle_states[(0, fake.command_id(BRIDGE))] == 0
    fake.assert_clean()


def test_a_take_that_now_plays_a_section_fails_with_how_to_glue_it(fake, spool):
    item, audio = setup_item(fake, spool)
    request = transcribe(fake, spool)
    root = audio.source  # the user reversed the take while the daemon worked: REAPER wraps it in a SECTION
    root.take = None
    section = fake.section_source(root, reversed=True)
    section.take, audio.source = audio, section
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    error = read_json(spool / "failed" / f"{req_id}.json")["apply_error"]
    assert ('"Piano DI" now plays a section of its file or is reversed; glue it (Item > Glue items), '
            "then transcribe it again") in error
    assert not new_takes(item)


def test_an_item_that_now_loops_its_audio_fails(fake, spool):
    item, audio = setup_item(fake, spool)
    request = transcribe(fake, spool)
    item.loop, item.length_s = True, 60.0  # looped and stretched over 90 s of a 60 s file
    req_id = answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    error = read_json(spool / "failed" / f"{req_id}.json")["apply_error"]
    assert '"Piano DI" now loops its audio; reascribe transcribes one pass' in error and not new_takes(item)


def test_a_pedal_change_on_the_first_tick_replaces_the_carried_value(fake, spool):
    item, _ = setup_item(fake, spool)
    cc = [[1.0, 64, 127], [1.50001, 64, 0]]  # down before the item, up on the item's first tick
    answer(fake, spool, transcribe(fake, spool), notes=[[2.0, 2.6, 60, 84]], cc=cc)
    fake.run_ticks(POLL_TICKS)
    (take,) = new_takes(item)
    assert [(c.ppq, c.msg2, c.msg3) for c in take.source.midi.ccs] == [(0, 64, 0)]


def test_notes_of_one_pitch_never_overlap_in_the_take(fake, spool):
    item, _ = setup_item(fake, spool)
    notes = [[2.0, 3.5, 60, 80], [3.0, 4.0, 60, 90], [5.0, 5.3, 62, 70], [5.0, 5.6, 62, 100], [3.2, 3.4, 64, 50]]
    req_id = answer(fake, spool, transcribe(fake, spool), notes=notes, cc=[])
    fake.run_ticks(POLL_TICKS)
    (take,) = new_takes(item)
    got = sorted((n.pitch, n.vel, round(n.start_s, 3), round(n.end_s, 3)) for n in fake.take_notes_project_time(take))
    assert got == [(60, 80, round(project_s(2.0), 3), round(project_s(3.0), 3)),
                   (60, 90, round(project_s(3.0), 3), round(project_s(4.0), 3)),
                   (62, 100, round(project_s(5.0), 3), round(project_s(5.6), 3)),
                   (64, 50, round(project_s(3.2), 3), round(project_s(3.4), 3))]
    by_pitch = {}
    for n in take.source.midi.notes:
        by_pitch.setdefault(n.pitch, []).append(n)
    for same in by_pitch.values():
        same.sort(key=lambda n: n.start_ppq)
        assert all(a.start_ppq < a.end_ppq <= b.start_ppq for a, b in zip(same, same[1:]))
    assert f"{req_id}: added a piano take to 1 item (4 notes; 1 doubled note left out)" in fake.console


def test_the_console_says_how_many_events_were_left_out(fake, spool):
    item, _ = setup_item(fake, spool)
    notes = [[2.0, 2.6, 60, 84], [0.5, 1.0, 61, 80], [12.0, 13.0, 62, 80]]  # one before the item, one after it
    cc = [[0.2, 64, 0], [11.0, 64, 127]]  # the pedal is up when the item starts; pressed after its end
    req_id = answer(fake, spool, transcribe(fake, spool), notes=notes, cc=cc)
    fake.run_ticks(POLL_TICKS)
    assert len(new_takes(item)) == 1
    assert (f"{req_id}: added a piano take to 1 item (1 note; "
            "3 events outside the item left out).") in fake.console


def test_a_result_goes_to_the_project_it_was_requested_from(fake, spool):
    first = fake.current
    second = fake.new_project(fake.root / "second" / "second.rpp")
    item, take = setup_item(fake, spool, project=second)
    request = transcribe(fake, spool)
    # The first tab holds a copy of the same item (a copy of the project, or the project opened twice).
    track = fake.add_track("Keys", project=first)
    copy, copy_take = fake.add_audio_item(track, take.source.filename, 10.0, 6.0, start_offset_s=1.5, playrate=1.5,
                                          name="Piano DI", selected=False)
    copy.guid, copy_take.guid = item.guid, take.guid
    answer(fake, spool, request)
    fake.run_ticks(POLL_TICKS)
    assert len(new_takes(item)) == 1 and not new_takes(copy)
    assert [u.project for u in fake.undo_log] == [second]


def test_a_take_reaper_refuses_to_build_is_removed_again(fake, spool):
    item, audio = setup_item(fake, spool)
    req_id = answer(fake, spool, transcribe(fake, spool))
    fake.refuse("SetItemStateChunk")  # REAPER refuses the new take's MIDI data
    fake.run_ticks(POLL_TICKS)
    assert [t.guid for t in item.takes] == [audio.guid] and item.active_take.guid == audio.guid
    error = read_json(spool / "failed" / f"{req_id}.json")["apply_error"]
    assert '"Piano DI": REAPER refused the item state' in error
    assert "REAPER refused the item state" in fake.console


def test_all_events_refused_removes_the_take_too(fake, spool):
    item, audio = setup_item(fake, spool)
    req_id = answer(fake, spool, transcribe(fake, spool), notes=[[2.0, 2.6, 60, 84]], cc=[[3.0, 64, 127]])
    fake.refuse("MIDI_InsertNote")
    fake.refuse("MIDI_InsertCC", 2)
    fake.run_ticks(POLL_TICKS)
    assert [t.guid for t in item.takes] == [audio.guid]
    assert "REAPER refused all 3 MIDI events" in read_json(spool / "failed" / f"{req_id}.json")["apply_error"]


def test_some_refused_events_still_apply_the_take_and_are_counted(fake, spool):
    item, _ = setup_item(fake, spool)
    req_id = answer(fake, spool, transcribe(fake, spool))
    fake.refuse("MIDI_InsertCC")
    fake.run_ticks(POLL_TICKS)
    (take,) = new_takes(item)
    assert len(take.source.midi.notes) == 5 and len(take.source.midi.ccs) == 5
    assert (spool / "done" / f"{req_id}.json").exists()
    assert f"{req_id}: added a piano take to 1 item (5 notes, 5 pedal events; REAPER refused 1 MIDI event)." \
        in fake.console


def test_finished_progress_files_are_read_once(fake, spool):
    setup_item(fake, spool)
    transcribe(fake, spool)
    for i, state in enumerate(["done", "failed", "cancelled", "running"]):
        job = {"id": f"j-{i}", "kind": "piano", "state": state, "progress": 0.5, "message": "",
               "updated_at": time.time()}
        (spool / "jobs" / f"j-{i}.json").write_text(json.dumps(job))
    fake.run_ticks(5 * POLL_TICKS)
    opened = Counter(Path(op[1]).name for op in fake.file_ops if op[0] == "open" and Path(op[1]).parent.name == "jobs")
    assert [opened[f"j-{i}.json"] for i in range(3)] == [1, 1, 1]
    assert opened["j-3.json"] >= 5  # a running job is followed


def test_a_bridge_dofiled_from_startup_lua_relaunches_itself_as_its_action(fake, spool):
    """The old `install-reaper --autostart` line. REAPER knows a dofile'd run by __startup.lua, so without
    the relaunch the toggle stays off and running the action starts a second bridge instead of stopping it."""
    fake.startup_path().write_text(f"dofile({json.dumps(str(fake.scripts_dir / BRIDGE))})\n")
    fake.run_startup()
    assert_bridge_runs_as_its_action_and_stops(fake, spool)


def test_install_reaper_autostart_starts_the_bridge_as_its_action(tmp_path, spool):
    from reaper_fake import FakeReaper
    from reascribe.reaper_install import install

    fake = FakeReaper(tmp_path, scripts=None)
    install(fake.resource_dir, spool, autostart=True)
    fake.run_startup()
    assert_bridge_runs_as_its_action_and_stops(fake, spool)
    fake.assert_clean()  # including no automatic "ReaScript: Run" undo point at start-up


def assert_bridge_runs_as_its_action_and_stops(fake, spool):
    fake.run_ticks(1)  # __startup.lua ends
    cmd = fake.command_id(BRIDGE)
    bridge = fake.running(BRIDGE)
    assert bridge is not None and bridge.cmd_id == cmd
    assert [i.name for i in fake.scripts if i.running] == [BRIDGE]
    assert fake.toggle_states[(0, cmd)] == 1
    fake.run_ticks(POLL_TICKS)
    assert read_json(spool / "bridge.heartbeat")["apply_action"] == "_" + fake.actions[fake.command_id(APPLY)].name
    fake.run_action(BRIDGE)  # the toggle: stops it
    assert not [i for i in fake.scripts if i.running]
    assert fake.toggle_states[(0, cmd)] == 0 and not (spool / "bridge.lock").exists()
