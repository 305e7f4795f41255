"""The Lua library in reaper_scripts/reascribe/: json, spool, jobs and the event mapping of apply."""

from __future__ import annotations

import json
import re

import pytest

from conftest_lua import fake, spool  # noqa: F401  (fixtures)

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
    opened = [op for op in fake.file_ops if op[0] == "open" and "x.json" in op[1]]
    assert opened == [("open", str(target) + ".tmp", "wb")]
    ok, err = fake.lua(SPOOL + "return spool.write_atomic(...)", str(tmp_path / "missing/dir/x.json"), "data")
    assert ok is None and err


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


def test_map_events_uses_current_item_values_and_clips_to_the_item(fake):
    notes, ccs, dropped = fake.lua("""
        local apply = require('reascribe.apply')
        local json = require('reascribe.json')
        local item = {
          notes = json.array({{2.0, 2.6, 60, 84}, {1.0, 2.0, 61, 80}, {10.0, 11.0, 62, 200.4}, {10.6, 11, 63, 90},
                              {3, 2, 64, 50}, {3, 4, 'x', 50}, {3, 4, 60.5, 50}, 'junk', {3, 4, 126, 0}}),
          cc = json.array({{1.0, 64, 127}, {1.2, 64, 0}, {1.4, 64, 100}, {3.0, 64, 0}, {11.0, 64, 127}, {3, 64, 300}}),
        }
        local timing = {position_s = 10, length_s = 6, start_offset_s = 1.5, playrate = 1.5, semitones = 2}
        local notes, ccs, dropped = apply.map_events(item, timing)
        return json.encode(json.array(notes)), json.encode(json.array(ccs)), dropped
    """)
    notes, ccs = json.loads(notes), json.loads(ccs)

    def proj(src_s):
        return 10 + (src_s - 1.5) / 1.5

    assert [n[2:] for n in notes] == [[62, 84], [64, 127]]
    assert notes[0][:2] == pytest.approx([proj(2.0), proj(2.6)])
    assert notes[1][:2] == pytest.approx([proj(10.0), 16.0])  # cut at the item end
    assert [c[1:] for c in ccs] == [[64, 100], [64, 0]]  # the pedal held into the item starts it
    assert [c[0] for c in ccs] == pytest.approx([10.0, proj(3.0)])
    assert dropped == 9
