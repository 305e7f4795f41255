"""The Lua library in reaper_scripts/reascribe/: json, spool, jobs and the event mapping of apply."""

from __future__ import annotations

import json
import re

import pytest

from conftest_lua import fake_posix_and_windows, spool  # noqa: F401  (fixtures: fake on POSIX and Windows)

JSON = "local json = require('reascribe.json') "


# -- json -----------------------------------------------------------------------------------------


def test_json_encodes_what_python_reads_back(fake):
    text = fake.lua(JSON + """
        return json.encode({
          int = 10, float = 1.5, tiny = 0.1, big = 1e300, neg = -3, yes = true, no = false,
          none = json.null, empty_list = json.array(), empty_obj = {}, list = {1, 'two', {3}},
          text = 'quote " backslash \\\\ newline \\n tab \\t bell \\a é 😀',
        })
    """)
    assert json.loads(text) == {
        "int": 10, "float": 1.5, "tiny": 0.1, "big": 1e300, "neg": -3, "yes": True, "no": False, "none": None,
        "empty_list": [], "empty_obj": {}, "list": [1, "two", [3]],
        "text": 'quote " backslash \\ newline \n tab \t bell \x07 é 😀',
    }


def test_json_encode_replaces_invalid_utf8_so_the_daemon_can_read_it(fake):
    text = fake.lua(JSON + r"return json.encode({name = 'ok\xff\xED\xA0\x80end'})")
    assert json.loads(text) == {"name": "ok\ufffd\ufffd\ufffd\ufffdend"}


def test_json_encode_refuses_values_json_cannot_carry(fake):
    for expr in ("0/0", "math.huge", "print", "{1, 2, x = 3}", "{[1.5] = 1}"):
        ok, err = fake.lua(JSON + f"return pcall(json.encode, {{v = {expr}}})")
        assert ok is False and err.startswith("json.encode"), expr


def test_json_decodes_types_unicode_escapes_and_nulls(fake):
    text = r'{"i": 10, "f": 10.5, "e": 1e2, "s": "\u00e9\ud83d\ude00\n\/", "a": [1, null, 3], "o": {}, "t": true,' \
        r' "lone": "\udc00"}'
    out = fake.lua(JSON + """
        local v = json.decode(...)
        return math.type(v.i), math.type(v.f), math.type(v.e), v.s, #v.a, v.a[2] == json.null,
               json.is_array(v.a), json.is_array(v.o), v.t, v.lone, json.encode(v)
    """, text)
    assert out[:10] == ("integer", "float", "float", "é😀\n/", 3, True, True, False, True, "\ufffd")
    assert json.loads(out[10]) == {"i": 10, "f": 10.5, "e": 100.0, "s": "é😀\n/", "a": [1, None, 3], "o": {},
                                   "t": True, "lone": "\ufffd"}


@pytest.mark.parametrize("garbage", [
    "", "   ", "{", "}", "[1,]", "[1 2]", '{"a":}', '{"a" 1}', "{1: 2}", "01", "1.", "-", "1e", "nul", "tru",
    '"abc', '"\\x"', '"\\u12"', '"a\x01b"', '{"a": 1}}', "NaN", "Infinity", "[" * 1000, "\xff", "<html>",
])
def test_json_decode_rejects_garbage_with_a_message(fake, garbage):
    value, message = fake.lua(JSON + "return json.decode(...)", garbage)
    assert value is None and message.startswith("invalid JSON")


def test_json_decode_accepts_a_byte_order_mark_and_whitespace(fake):
    assert fake.lua(JSON + "return #json.decode('\\xEF\\xBB\\xBF [ 1 ] \\n')") == 1


# -- spool ----------------------------------------------------------------------------------------

SPOOL = "local spool = require('reascribe.spool') "


def test_request_ids_sort_by_time_and_are_valid(fake):
    ids = fake.lua(SPOOL + "return spool.new_id(0), spool.new_id(1795256100), spool.is_valid_id(spool.new_id())")
    assert re.fullmatch(r"19700101T000000-[0-9a-f]{8}", ids[0])
    assert ids[1].startswith("20261121T")
    assert ids[2] is True
    checks = fake.lua(SPOOL + "return spool.is_valid_id('-x'), spool.is_valid_id('a.b'), spool.is_valid_id(('a'):rep(65)),"
                      " spool.is_valid_id('a_B-9')")
    assert checks == (False, False, False, True)


def test_spool_dir_comes_from_settings_then_environment_then_home(fake, tmp_path):
    resolve = SPOOL + "return spool.resolve_dir(spool.read_settings(...))"
    scripts = str(fake.scripts_dir) + "/"
    fake.env.update({"REASCRIBE_SPOOL": str(tmp_path / "env"), "HOME": str(tmp_path / "home")})
    assert fake.lua(resolve, scripts) == str(tmp_path / "env")
    fake.env["REASCRIBE_SPOOL"] = None
    assert fake.lua(resolve, scripts) == str(tmp_path / "home/.reascribe/spool")
    (fake.scripts_dir / "reascribe_settings.lua").write_text('return { spool_dir = "~/custom" }')
    assert fake.lua(resolve, scripts) == str(tmp_path / "home/custom")


def test_broken_settings_are_reported_not_fatal(fake):
    (fake.scripts_dir / "reascribe_settings.lua").write_text("return {")
    settings, err = fake.lua(SPOOL + "local s, e = spool.read_settings(...) return next(s) == nil, e",
                             str(fake.scripts_dir) + "/")
    assert settings is True and "reascribe_settings.lua" in err
    (fake.scripts_dir / "reascribe_settings.lua").write_text("os.exit(1)")  # sandboxed: no globals
    settings, err = fake.lua(SPOOL + "local s, e = spool.read_settings(...) return next(s) == nil, e",
                             str(fake.scripts_dir) + "/")
    assert settings is True and err and not fake.violations


def test_atomic_write_replaces_the_file_and_leaves_no_tmp(fake, tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    assert fake.lua(SPOOL + "return spool.write_atomic(..., 'new')", str(target)) is True
    assert target.read_text() == "new" and not list(tmp_path.glob("*.tmp"))
    written = [op for op in fake.file_ops if op[0] == "open" and "x.json" in op[1] and op[2] != "rb"]
    assert written == [("open", str(target) + ".tmp", "wb")]
    ok, err = fake.lua(SPOOL + "return spool.write_atomic(...)", str(tmp_path / "missing/dir/x.json"), "data")
    assert ok is None and err


def test_move_replaces_an_existing_target_but_never_deletes_it_when_the_source_is_gone(fake, tmp_path):
    move = fake.lua(SPOOL + "return function(a, b) return spool.move(a, b) end")
    src, dst = tmp_path / "a.json", tmp_path / "b.json"
    src.write_text("new")
    dst.write_text("old")
    assert move(str(src), str(dst)) is True
    assert dst.read_text() == "new" and not src.exists()

    # Someone else (a second bridge, the daemon) moved the source first: the target is theirs to keep.
    fake.file_ops.clear()
    ok, err = move(str(src), str(dst))
    assert ok is None and err
    assert dst.read_text() == "new"
    assert ("remove", str(dst), None) not in fake.file_ops


def test_windows_rename_refuses_an_existing_target(tmp_path):
    from reaper_fake import FakeReaper

    fake = FakeReaper(tmp_path, scripts=None, windows=True)
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_text("b")
    ok, err, code = fake.lua("return os.rename(...)", str(tmp_path / "a"), str(tmp_path / "b"))
    assert (ok, code) == (None, 13) and "Permission denied" in err and (tmp_path / "b").read_text() == "b"
    assert fake.lua("return os.rename(...)", str(tmp_path / "a"), str(tmp_path / "c")) is True


def test_settings_are_found_next_to_the_script_or_one_folder_up(fake, tmp_path):
    """ReaPack installs into Scripts/reascribe/Items/; `reascribe install-reaper` writes the settings into
    Scripts/reascribe/."""
    items = fake.scripts_dir / "Items"
    items.mkdir()
    read = SPOOL + "local s, e = spool.read_settings(...) return s.spool_dir, e"
    assert fake.lua(read, str(items) + "/") == (None, None)
    (fake.scripts_dir / "reascribe_settings.lua").write_text('return { spool_dir = "/up" }')
    assert fake.lua(read, str(items) + "/") == ("/up", None)
    (items / "reascribe_settings.lua").write_text('return { spool_dir = "/here" }')
    assert fake.lua(read, str(items) + "/") == ("/here", None)


def test_listing_refreshes_the_directory_cache_and_skips_temporary_files(fake, spool):
    outbox = spool / "outbox"
    (outbox / "b-1.json").write_text("{}")
    list_ids = fake.lua(SPOOL + "return function(dir) local t = spool.list(dir) return table.concat(t, ',') end")
    assert list_ids(str(outbox)) == "b-1"
    for name in ("a-1.json", "c-1.json.tmp", ".hidden.json", "bad name.json", "notes.txt"):
        (outbox / name).write_text("{}")
    assert list_ids(str(outbox)) == "a-1,b-1"


def test_heartbeat_age_and_applied_log(fake, spool):
    (spool / "daemon.heartbeat").write_text(json.dumps({"time": 1.0}))
    (spool / "bridge.heartbeat").write_text("{broken")
    out = fake.lua(SPOOL + """
        local dir = ...
        local before = spool.is_applied(dir, 'id-1')
        spool.mark_applied(dir, 'id-1')
        return spool.is_alive(dir, spool.DAEMON_HEARTBEAT), spool.heartbeat_age(dir, spool.BRIDGE_HEARTBEAT),
               spool.heartbeat_age(dir, 'none'), before, spool.is_applied(dir, 'id-1'), spool.is_applied(dir, 'id')
    """, str(spool))
    assert out == (False, None, None, False, True, False)


# -- jobs -----------------------------------------------------------------------------------------


def test_job_changes_are_reported_once_per_state_and_progress_step(fake, spool):
    changes = fake.lua("""
        local jobs = require('reascribe.jobs')
        local seen = {}
        return function(state, progress, message)
          local list = state and {{id = 'j1', kind = 'piano', state = state, progress = progress, message = message}} or {}
          return table.concat(jobs.changes(seen, list), '|')
        end
    """)
    assert changes("queued", 0, "") == "reascribe: piano j1: queued"
    assert changes("queued", 0, "") == ""
    assert changes("running", 0.42, "transcribing") == "reascribe: piano j1: running 42% (transcribing)"
    assert changes("running", 0.45, "transcribing") == ""  # same 10 % step
    assert changes("running", 0.51, "transcribing") == "reascribe: piano j1: running 51% (transcribing)"
    assert changes("done", 1, "") == ""  # finished jobs are reported by their result
    assert changes(None, 0, "") == ""


# -- apply: event mapping -------------------------------------------------------------------------

MAP_EVENTS = """
    local apply = require('reascribe.apply')
    local json = require('reascribe.json')
    local item, timing = json.decode((...)), json.decode((select(2, ...)))
    local notes, ccs, dropped, invalid = apply.map_events(item, timing)
    return json.encode({notes = json.array(notes), ccs = json.array(ccs), dropped = dropped, invalid = invalid})
"""
PLAIN = {"position_s": 10, "length_s": 6, "start_offset_s": 0, "playrate": 1, "semitones": 0}  # project = 10 + source


def map_events(fake, notes=(), cc=(), timing=PLAIN) -> dict:
    doc = {"notes": [list(n) if isinstance(n, (list, tuple)) else n for n in notes], "cc": [list(c) for c in cc]}
    return json.loads(fake.lua(MAP_EVENTS, json.dumps(doc), json.dumps(timing)))


def test_map_events_uses_current_item_values_and_clips_to_the_item(fake):
    out = map_events(fake, notes=[
        [2.0, 2.6, 60, 84], [1.0, 2.0, 61, 80], [10.0, 11.0, 62, 200.4], [10.6, 11, 63, 90], [1.0, 1.4, 65, 80],
        [3, 2, 64, 50], [3, 4, "x", 50], [3, 4, 60.5, 50], "junk", [3, 4, 126, 0],
    ], cc=[[1.0, 64, 127], [1.2, 64, 0], [1.4, 64, 100], [3.0, 64, 0], [11.0, 64, 127], [3, 64, 300]],
        timing={"position_s": 10, "length_s": 6, "start_offset_s": 1.5, "playrate": 1.5, "semitones": 2})
    notes, ccs = out["notes"], out["ccs"]

    def proj(src_s):
        return 10 + (src_s - 1.5) / 1.5

    assert [n[2:] for n in notes] == [[62, 84], [63, 80], [64, 127]]
    assert notes[0][:2] == pytest.approx([proj(2.0), proj(2.6)])
    assert notes[1][:2] == pytest.approx([10.0, proj(2.0)])  # sounding at the item start: starts there
    assert notes[2][:2] == pytest.approx([proj(10.0), 16.0])  # cut at the item end
    assert [c[1:] for c in ccs] == [[64, 100], [64, 0]]  # the pedal held into the item starts it
    assert [c[0] for c in ccs] == pytest.approx([10.0, proj(3.0)])
    # outside: the note at 16.07 s, the note ending before the item, pitch 128 after +2, the CC after the end
    assert (out["dropped"], out["invalid"]) == (4, 5)


def test_a_pedal_still_down_at_the_item_end_is_released_on_its_last_tick(fake):
    out = map_events(fake, cc=[[3.0, 64, 127], [8.0, 64, 0], [4.0, 67, 127]])
    assert out["ccs"] == [[13.0, 64, 127], [14.0, 67, 127], [16.0, 64, 0, True], [16.0, 67, 0, True]]
    assert out["dropped"] == 1  # the release after the end is replaced by the one on the last tick
    assert map_events(fake, cc=[[-1.0, 64, 127]])["ccs"] == [[10.0, 64, 127], [16.0, 64, 0, True]]
    up = map_events(fake, cc=[[3.0, 64, 127], [5.0, 64, 0], [7.0, 64, 127]])  # up at the end: nothing to add
    assert up["ccs"] == [[13.0, 64, 127], [15.0, 64, 0]]


def test_only_a_pedal_held_down_into_the_item_is_carried_to_its_start(fake):
    assert map_events(fake, cc=[[-2.0, 64, 127], [-1.0, 64, 0]])["ccs"] == []  # no redundant CC64=0 at the start
    exactly = map_events(fake, cc=[[-1.0, 64, 127], [0.0, 64, 0]])  # an event at the start says it all
    assert exactly["ccs"] == [[10.0, 64, 0]]


def test_events_at_the_same_time_keep_their_order(fake):
    cc = [[2.0, 67, 127], [2.0, 64, 127], [2.0, 64, 0], [1.0, 67, 0], [2.0, 67, 0]]
    out = map_events(fake, cc=cc)
    assert out["ccs"] == [[11.0, 67, 0], [12.0, 67, 127], [12.0, 64, 127], [12.0, 64, 0], [12.0, 67, 0]]


WITHOUT_OVERLAPS = """
    local apply = require('reascribe.apply')
    local json = require('reascribe.json')
    local notes, dropped = apply.without_overlaps(json.decode((...)))
    return json.encode(json.array(notes)), dropped
"""


def test_same_pitch_notes_end_where_the_next_one_starts(fake):
    # {start_tick, end_tick, pitch, velocity}
    notes, dropped = fake.lua(WITHOUT_OVERLAPS, json.dumps([
        [0, 960, 60, 80], [480, 1440, 60, 90], [100, 2000, 62, 70], [1000, 1100, 64, 60], [1000, 1050, 64, 100],
        [1400, 1500, 60, 50],
    ]))
    assert sorted(map(tuple, json.loads(notes))) == [
        (0, 480, 60, 80), (100, 2000, 62, 70), (480, 1400, 60, 90), (1000, 1050, 64, 100), (1400, 1500, 60, 50),
    ]
    assert dropped == 1  # two notes of pitch 64 start on the same tick: the later one in the list stays
