"""The fake REAPER itself: tempo map, PPQ mapping, return types and the strictness checks."""

from __future__ import annotations

import pytest

from reaper_fake import FakeReaper


@pytest.fixture
def reaper(tmp_path):
    return FakeReaper(tmp_path, scripts=None)


def script(reaper: FakeReaper, name: str, code: str):
    path = reaper.scripts_dir / name
    path.write_text(code, encoding="utf-8")
    return reaper.run_action(name)


def midi_item(reaper: FakeReaper, position_s: float = 10.0, length_s: float = 6.0):
    item = reaper.add_item(reaper.add_track("MIDI"), position_s, length_s)
    return item, reaper.add_take(item, reaper.midi_source(), "midi")


# -- tempo map ----------------------------------------------------------------------------------


def test_time_to_qn_integrates_constant_segments_across_a_tempo_change(reaper):
    reaper.current.tempo.add_marker(12.0, 90.0)
    to_qn, to_time = reaper.lua("return reaper.TimeMap2_timeToQN, reaper.TimeMap2_QNToTime")
    assert to_qn(0, 6.0) == pytest.approx(12.0)  # 120 BPM: 2 QN per second
    assert to_qn(0, 12.0) == pytest.approx(24.0)
    assert to_qn(0, 14.0) == pytest.approx(27.0)  # then 90 BPM: 1.5 QN per second
    for t in (0.0, 3.3, 11.999, 12.0, 12.5, 40.0):
        assert to_time(0, to_qn(0, t)) == pytest.approx(t, abs=1e-12)
    assert reaper.lua("return reaper.TimeMap_timeToQN(14)") == pytest.approx(27.0)


def test_tempo_markers_and_time_signature_are_reported_with_lua_types(reaper):
    reaper.current.tempo.add_marker(12.0, 90.0)  # tempo only
    reaper.current.tempo.add_marker(20.0, 90.0, 3, 4)
    out = reaper.lua("""
        local n = reaper.CountTempoTimeSigMarkers(0)
        local ok, t, measure, beat, bpm, num, denom, linear = reaper.GetTempoTimeSigMarker(0, 1)
        local snum, sdenom, tempo = reaper.TimeMap_GetTimeSigAtTime(0, 25)
        return math.type(n), n, ok, t, math.type(measure), bpm, num, denom, linear, snum, sdenom, tempo,
               (select(6, reaper.GetTempoTimeSigMarker(0, 0)))
    """)
    assert out == ("integer", 2, True, 20.0, "integer", 90.0, 3, 4, False, 3, 4, 90.0, 0)


def test_ppq_maps_through_the_tempo_map_from_the_item_start(reaper):
    reaper.current.tempo.add_marker(12.0, 90.0)
    item, take = midi_item(reaper, position_s=10.0)
    ppq = reaper.lua("return function(take, t) return reaper.MIDI_GetPPQPosFromProjTime(take, t) end")
    back = reaper.lua("return function(take, p) return reaper.MIDI_GetProjTimeFromPPQPos(take, p) end")
    assert ppq(take, 10.0) == pytest.approx(0.0)
    assert ppq(take, 12.0) == pytest.approx(4 * 960)  # 2 s at 120 BPM
    assert ppq(take, 14.0) == pytest.approx(7 * 960)  # + 2 s at 90 BPM
    assert back(take, 7 * 960) == pytest.approx(14.0)


def test_notes_read_back_in_project_seconds(reaper):
    reaper.current.tempo.add_marker(12.0, 90.0)
    item, take = midi_item(reaper, position_s=10.0)
    reaper.lua("""
        local take = ...
        reaper.MIDI_InsertNote(take, false, false, 3840, 6720, 0, 60, 100, true)
        reaper.MIDI_InsertCC(take, false, false, 960, 0xB0, 0, 64, 127)
        reaper.MIDI_Sort(take)
    """, take)
    (note,) = reaper.take_notes_project_time(take)
    assert (note.start_s, note.end_s, note.pitch, note.vel) == (pytest.approx(12.0), pytest.approx(14.0), 60, 100)
    (cc,) = reaper.take_ccs_project_time(take)
    assert (cc.time_s, cc.cc, cc.value) == (pytest.approx(10.5), 64, 127)
    reaper.assert_clean()


# -- strictness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    ("0, 960, 16, 60, 100", "chan 16"),
    ("0, 960, 0, 128, 100", "pitch 128"),
    ("0, 960, 0, 60, 128", "vel 128"),
    ("960, 0, 0, 60, 100", "before startppqpos"),
    ("0, 960, 0, 60.5, 100", "no integer representation"),
])
def test_midi_insert_note_rejects_what_reaper_rejects(reaper, args, message):
    item, take = midi_item(reaper)
    ok, err = reaper.lua(f"local take = ... return pcall(reaper.MIDI_InsertNote, take, false, false, {args})", take)
    assert ok is False and message in str(err)
    assert any(message in v for v in reaper.violations)
    assert take.source.midi.notes == []


def test_ppq_mapping_refuses_takes_with_start_offset_or_playrate(reaper):
    item, take = midi_item(reaper)
    take.start_offset_s = 1.0
    ok, err = reaper.lua("return pcall(reaper.MIDI_GetPPQPosFromProjTime, ..., 11)", take)
    assert not ok and "start offset 0 and playrate 1" in err
    take.start_offset_s, take.playrate = 0.0, 1.5
    ok, err = reaper.lua("return pcall(reaper.MIDI_GetPPQPosFromProjTime, ..., 11)", take)
    assert not ok and reaper.violations


def test_set_source_duplicates_an_attached_source_and_destroy_of_attached_fails(reaper):
    item, take = midi_item(reaper)
    other = reaper.lua("""
        local take, item = ...
        local new = reaper.AddTakeToMediaItem(item)
        local src = reaper.GetMediaItemTake_Source(take)
        reaper.SetMediaItemTake_Source(new, src)
        return new
    """, take, item)
    assert other.source is not take.source and other.source.type == "MIDI"
    ok, err = reaper.lua("local take = ... return pcall(reaper.PCM_Source_Destroy, reaper.GetMediaItemTake_Source(take))",
                         take)
    assert not ok and "still the source" in err
    ok = reaper.lua("local s = reaper.PCM_Source_CreateFromType('MIDI') reaper.PCM_Source_Destroy(s) return true")
    assert ok is True


def test_value_getters_return_floats_and_unknown_keys_are_logged(reaper):
    item, take = midi_item(reaper, position_s=10.0)
    out = reaper.lua("""
        local item, take = ...
        return math.type(reaper.GetMediaItemInfo_Value(item, 'D_POSITION')),
               math.type(reaper.GetMediaItemInfo_Value(item, 'I_CURTAKE')),
               reaper.GetMediaItemInfo_Value(item, 'D_POSITOIN'),
               math.type(reaper.CountTakes(item)), math.type(reaper.GetTakeNumStretchMarkers(take))
    """, item, take)
    assert out == ("float", "float", 0.0, "integer", "integer")
    assert reaper.unknown_keys == [("GetMediaItemInfo_Value", "D_POSITOIN")]


def test_a_deleted_take_is_invalid_and_not_found_by_guid(reaper):
    item, take = midi_item(reaper)
    guid = take.guid
    reaper.delete_take(take)
    out = reaper.lua("local take, guid = ... return reaper.ValidatePtr2(0, take, 'MediaItem_Take*'),"
                     " reaper.GetMediaItemTakeByGUID(0, guid)", take, guid)
    assert out == (False, None)


def test_enumerate_files_caches_the_listing_until_index_minus_one(reaper, tmp_path):
    folder = tmp_path / "listing"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    enum = reaper.lua("return function(dir, i) return reaper.EnumerateFiles(dir, i) end")
    assert enum(str(folder), 0) == "a.json"
    (folder / "b.json").write_text("{}")
    assert enum(str(folder), 1) is None  # still the cached listing, like REAPER
    enum(str(folder), -1)
    assert {enum(str(folder), 0), enum(str(folder), 1)} == {"a.json", "b.json"}


def test_open_undo_block_or_ui_refresh_at_script_end_is_a_violation(reaper):
    script(reaper, "open_undo.lua", "reaper.Undo_BeginBlock2(0) reaper.PreventUIRefresh(1)")
    assert any("open undo block" in v for v in reaper.violations)
    assert any("PreventUIRefresh" in v for v in reaper.violations)


def test_a_script_without_defer_or_undo_block_gets_reapers_automatic_undo_point(reaper):
    script(reaper, "plain.lua", "local x = 1")
    script(reaper, "quiet.lua", "reaper.defer(function() end)")
    script(reaper, "undo.lua", "reaper.Undo_BeginBlock() reaper.Undo_EndBlock('x', -1)")
    assert reaper.auto_undo_points == ["plain.lua"]
    assert [u.desc for u in reaper.undo_log] == ["x"]


def test_an_error_in_a_deferred_callback_stops_the_script_and_runs_atexit(reaper):
    inst = script(reaper, "crash.lua", """
        local n = 0
        reaper.atexit(function() reaper.ShowConsoleMsg('bye') end)
        local function loop() n = n + 1 if n == 3 then error('boom') end reaper.defer(loop) end
        reaper.defer(loop)
    """)
    reaper.run_ticks(10)
    assert not inst.running and "boom" in inst.error
    assert reaper.console == "bye" and inst.ticks == 3


def test_message_box_from_a_deferred_callback_is_a_violation(reaper):
    reaper.mb_answers.append(6)
    script(reaper, "mb.lua", """
        local answer = reaper.ShowMessageBox('main', 't', 4)
        reaper.ShowConsoleMsg(tostring(answer))
        reaper.defer(function() reaper.MB('background', 't', 0) end)
    """)
    reaper.run_ticks(1)
    assert reaper.console == "6"
    assert [m.background for m in reaper.message_boxes] == [False, True]
    assert any("modal message box" in v for v in reaper.violations)


def test_relaunch_terminates_with_option_1_and_is_a_violation_without(reaper):
    loop = "reaper.defer(function() end) local function l() reaper.defer(l) end l()"
    first = script(reaper, "toggle.lua", "reaper.set_action_options(1 | 4) " + loop)
    cmd = first.cmd_id
    assert reaper.toggle_states[(0, cmd)] == 1 and first.running
    assert reaper.run_action("toggle.lua") is None and not first.running
    script(reaper, "plain_loop.lua", loop)
    reaper.run_action("plain_loop.lua")
    assert any("task control" in v for v in reaper.violations)


def test_registered_scripts_have_stable_names_and_run_through_main_oncommand(reaper):
    (reaper.scripts_dir / "hello.lua").write_text("reaper.ShowConsoleMsg('hello') reaper.defer(function() end)")
    out = reaper.lua("""
        local path = ...
        local id = reaper.AddRemoveReaScript(true, 0, path, true)
        local again = reaper.AddRemoveReaScript(true, 0, path, true)
        local name = reaper.ReverseNamedCommandLookup(id)
        reaper.Main_OnCommand(reaper.NamedCommandLookup('_' .. name), 0)
        return id == again, name:match('^RS%x+$') ~= nil, reaper.NamedCommandLookup(name),
               reaper.AddRemoveReaScript(true, 0, path .. '.missing', true)
    """, str(reaper.scripts_dir / "hello.lua"))
    assert out == (True, True, 0, 0)
    assert reaper.console == "hello"


def test_blocking_or_quitting_calls_are_violations(reaper):
    script(reaper, "blocking.lua", "os.execute('sleep 1') io.popen('ls') reaper.defer(function() end)")
    assert len(reaper.violations) == 2


def test_missing_functions_simulate_older_reaper(tmp_path):
    reaper = FakeReaper(tmp_path, scripts=None, missing=("set_action_options",), app_version="6.82/win64")
    out = reaper.lua("return reaper.set_action_options == nil, reaper.APIExists('set_action_options'),"
                     " reaper.APIExists('MIDI_InsertNote'), reaper.GetAppVersion()")
    assert out == (True, False, True, "6.82/win64")


def test_process_and_osc_calls_are_recorded_not_run(reaper):
    out = reaper.lua("""
        local r = reaper.ExecProcess('reascribe daemon', -1)
        reaper.OscLocalMessageToHost('/action/40044', nil)
        reaper.StuffMIDIMessage(0, 0x90, 60, 100)
        return r
    """)
    assert out == "0\n"
    assert reaper.exec_log == [("reascribe daemon", -1)]
    assert reaper.osc_log == [("/action/40044", None)] and reaper.midi_log == [(0, 0x90, 60, 100)]


def test_globals_set_by_a_script_are_violations(reaper):
    script(reaper, "globals.lua", "local ok = 1 leaked = 2 function helper() end reaper.defer(function() end)")
    assert sorted(v.split("global ")[1] for v in reaper.violations) == ["'helper'; make it local", "'leaked'; make it local"]


# -- item state chunks and fresh MIDI sources ---------------------------------------------------------


def test_a_fresh_midi_source_has_no_ppq_map_until_its_chunk_has_data(reaper):
    item = reaper.add_item(reaper.add_track("T"), 10.0, 6.0)
    out = reaper.lua("""
        local item = ...
        local take = reaper.AddTakeToMediaItem(item)
        reaper.SetMediaItemTake_Source(take, reaper.PCM_Source_CreateFromType('MIDI'))
        return reaper.MIDI_GetPPQPosFromProjTime(take, 11), reaper.MIDI_InsertNote(take, false, false, 0, 960, 0, 60, 90),
               select(2, reaper.GetItemStateChunk(item, '', false))
    """, item)
    assert out[:2] == (-1.0, False)
    assert "<SOURCE MIDI\n>" in out[2] and any("without data" in v for v in reaper.violations)


def test_item_chunks_round_trip_and_rebuild_the_takes(reaper):
    item = reaper.add_item(reaper.add_track("T"), 10.0, 6.0, loop=True)
    item.notes = "first line\nsecond"
    item.ext["k"] = 'v "quoted"'
    audio = reaper.add_take(item, reaper.section_source(reaper.audio_source(reaper.root / "C.wav")), "audio",
                            start_offset_s=1.5, playrate=1.5, pitch=-2.0, preserve_pitch=False, stretch_markers=2)
    midi = reaper.add_take(item, reaper.midi_source(), "midi")
    midi.ext["reascribe_result"] = "id-1"
    reaper.lua("""
        local take = ...
        reaper.MIDI_InsertNote(take, true, false, 0, 480, 1, 60, 90, true)
        reaper.MIDI_InsertCC(take, false, false, 240, 0xB0, 0, 64, 127)
        reaper.MIDI_Sort(take)
    """, midi)
    item.active = 0
    chunk = reaper.lua("return select(2, reaper.GetItemStateChunk(...))", item)
    assert reaper.lua("local item, chunk = ... return reaper.SetItemStateChunk(item, chunk, false)", item, chunk)
    assert not audio.alive and not midi.alive  # old take pointers are gone
    new_audio, new_midi = item.takes
    assert (new_audio.guid, new_audio.name, new_audio.start_offset_s, new_audio.playrate, new_audio.pitch,
            new_audio.preserve_pitch, new_audio.stretch_markers) == (audio.guid, "audio", 1.5, 1.5, -2.0, False, 2)
    assert new_audio.source.type == "SECTION" and new_audio.source.parent.filename == str(reaper.root / "C.wav")
    assert new_midi.ext == {"reascribe_result": "id-1"} and item.active == 0
    n = new_midi.source.midi.notes[0]
    assert (n.start_ppq, n.end_ppq, n.chan, n.pitch, n.vel, n.selected) == (0, 480, 1, 60, 90, True)
    assert [(c.ppq, c.msg2, c.msg3) for c in new_midi.source.midi.ccs] == [(240, 64, 127)]
    assert (item.loop, item.notes, item.ext) == (True, "first line\nsecond", {"k": 'v "quoted"'})
    assert reaper.lua("return select(2, reaper.GetItemStateChunk(...))", item) == chunk


def test_a_malformed_chunk_is_refused(reaper):
    item = reaper.add_item(reaper.add_track("T"), 0.0, 1.0)
    ok, err = reaper.lua("return pcall(reaper.SetItemStateChunk, ..., '<ITEM\\nPOSITION 1\\n', false)", item)
    assert not ok and "not closed" in err


# -- scripts started without an action, refusals, gfx --------------------------------------------------


def test_a_dofiled_script_is_known_by_the_file_that_ran_it(reaper):
    (reaper.scripts_dir / "loop.lua").write_text("""
        local _, file, _, cmd = reaper.get_action_context()
        reaper.ShowConsoleMsg(file .. ' ' .. cmd)
        local function l() reaper.defer(l) end l()
    """)
    inst = reaper.run_file("loop.lua")  # dofile from Scripts/__startup.lua
    assert reaper.console == f"{reaper.startup_path()} -1"
    assert reaper.running("loop.lua") is None and reaper.running("__startup.lua") is inst
    second = reaper.run_action("loop.lua")  # REAPER does not see the first run as this action
    assert second is not inst and inst.running and second.running


def test_refused_calls_return_reapers_failure_value(reaper):
    item = reaper.add_item(reaper.add_track("T"), 0.0, 1.0)
    reaper.refuse("SetItemStateChunk")
    reaper.refuse("AddTakeToMediaItem")
    out = reaper.lua("""
        local item = ...
        local _, chunk = reaper.GetItemStateChunk(item, '', false)
        return reaper.SetItemStateChunk(item, chunk, false), reaper.SetItemStateChunk(item, chunk, false),
               reaper.AddTakeToMediaItem(item) == nil
    """, item)
    assert out == (False, True, True) and not reaper.violations
    with pytest.raises(ValueError):
        reaper.refuse("GetAppVersion")


def test_gfx_init_with_an_empty_title_resizes_the_open_window(reaper):
    script(reaper, "window.lua", """
        gfx.init('title', 200, 100)
        gfx.init('', 200, 300)
        local function l() gfx.update() reaper.defer(l) end l()
    """)
    window = reaper.gfx_window()
    assert (window.title, window.inits, window.resizes, window.table.h) == ("title", 1, [(200, 300)], 300)
    window.click(10, 250)
    with pytest.raises(AssertionError, match="outside"):
        window.click(10, 300)
