"""reascribe_Generate fill.lua in the fake REAPER: the request it sends (the notes around the time
selection of the selected track), and the round trip through the daemon's spool and the real generator
back to a new item in the selection with one take per variation, in one undo block."""

from __future__ import annotations

import json

import pytest

from conftest_lua import fake_posix_and_windows, spool  # noqa: F401  (fixtures)
from reaper_fake.model import PPQ, MidiData, Note, Source
from reascribe.pipelines import no_progress
from reascribe.pipelines.generate import GeneratePipeline
from reascribe.spool import Spool

GENERATE = "reascribe_Generate fill.lua"
POLL_TICKS = 20
GAP_S = (6.0, 10.0)  # bars 4-5 at 120 BPM 4/4


def midi_item_with_notes(fake, track, position_s, length_s, notes):
    """A MIDI item whose take holds ``notes`` (start_s, end_s, pitch, velocity: project seconds) on channel 1."""
    tempo = fake.current.tempo
    origin = tempo.time_to_qn(position_s)

    def tick(t):
        return round((tempo.time_to_qn(t) - origin) * PPQ)

    midi = MidiData(notes=[Note(tick(s), tick(e), 0, p, v) for s, e, p, v in notes],
                    length_ticks=tick(position_s + length_s))
    item = fake.add_item(track, position_s, length_s)
    fake.add_take(item, Source("MIDI", midi=midi), name="Melody")
    return item


def settings(fake, text):
    (fake.scripts_dir / "reascribe_settings.lua").write_text(f"return {{ {text} }}")


@pytest.fixture
def keys(fake):
    """A selected track with an 8-bar melody in one MIDI item, silent in the time selection."""
    track = fake.add_track("Keys")
    track.selected = True
    notes = [(i * 0.5, i * 0.5 + 0.4, 60 + (0, 2, 4, 7)[i % 4], 90) for i in range(32) if not 12 <= i < 20]
    item = midi_item_with_notes(fake, track, 0.0, 16.0, notes)
    fake.current.time_selection = GAP_S
    return track, item


def test_the_request_carries_the_notes_around_the_selection(fake, spool, keys):
    track, _ = keys
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    settings(fake, "fill_variations = 2, fill_temperature = 0.8, fill_density = 1.5")
    fake.run_action(GENERATE)
    fake.run_ticks(1)

    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    assert request.kind == "generate" and request.items == []
    assert request.time_selection == GAP_S
    assert request.options == {"variations": 2, "temperature": 0.8, "density": 1.5}
    assert request.context.track_guid == track.guid and request.context.track == "Keys"
    # The whole 8-bar item lies within the 35 bars read each side: everything but the gap.
    assert len(request.context.notes) == 24 and set(request.context.channels) == {1}
    assert request.context.notes[0].start_s == pytest.approx(0.0) and request.context.notes[0].pitch_midi == 60
    assert not fake.undo_log  # sending edits nothing


def test_the_request_reads_35_bars_each_side_to_find_where_the_song_repeats(fake, spool):
    track = fake.add_track("Keys")
    track.selected = True
    # One note in the middle of each 2-second bar of a 50-bar item, none in the gap (6-10 s).
    notes = [(b * 2 + 1.0, b * 2 + 1.5, 60 + b % 40, 90) for b in range(50) if b not in (3, 4)]
    midi_item_with_notes(fake, track, 0.0, 100.0, notes)
    fake.current.time_selection = GAP_S
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    fake.run_action(GENERATE)
    fake.run_ticks(1)

    (name,) = daemon.inbox_names()
    read = [n.start_s for n in daemon.admit(name).context.notes]
    assert read == [1.0, 3.0, 5.0] + [b * 2 + 1.0 for b in range(5, 40)]  # up to 80 s: 35 bars after the gap


def test_without_a_time_selection_it_says_what_to_do(fake, spool, keys):
    fake.current.time_selection = (0.0, 0.0)
    fake.run_action(GENERATE)
    fake.run_ticks(1)
    assert "make a time selection" in fake.message_boxes[-1].msg
    assert not list((spool / "inbox").iterdir())


def test_the_fill_becomes_an_item_with_a_take_per_variation_in_one_undo_block(fake, spool, keys):
    track, original = keys
    before = [(n.start_ppq, n.end_ppq, n.pitch, n.vel) for n in original.active_take.source.midi.notes]
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    settings(fake, "fill_variations = 3")
    fake.run_action(GENERATE)
    fake.run_ticks(1)
    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    daemon.claim(request.id)
    pipeline = GeneratePipeline()
    pipeline.load()
    daemon.write_result(pipeline.run_request(request, no_progress))
    fake.run_ticks(POLL_TICKS)

    new_items = [i for i in track.items if i is not original]
    (item,) = new_items
    assert (item.position_s, item.position_s + item.length_s) == pytest.approx(GAP_S)
    assert [t.name for t in item.takes] == ["fill 1", "fill 2", "fill 3"] and item.active_take is item.takes[0]
    for take in item.takes:
        notes = fake.take_notes_project_time(take)
        assert all(GAP_S[0] - 1e-6 <= n.start_s < GAP_S[1] and n.end_s <= GAP_S[1] + 1e-6 for n in notes)
        assert {n.chan for n in notes} <= {0}
    assert sum(len(fake.take_notes_project_time(t)) for t in item.takes) > 0
    (undo,) = fake.undo_log
    assert undo.desc == "reascribe: generate fill"
    assert [(n.start_ppq, n.end_ppq, n.pitch, n.vel) for n in original.active_take.source.midi.notes] == before
    assert (spool / "done" / f"{request.id}.json").exists()
    assert any("fill with 3 takes" in line for line in fake.console.splitlines())


def fill_result(spool, req_id, track_guid, variations):
    doc = {"protocol": 1, "id": req_id, "kind": "generate", "status": "done", "error": None, "items": [],
           "fill": {"track_guid": track_guid, "start_s": GAP_S[0], "end_s": GAP_S[1], "part": "drums",
                    "channel": 10, "pitched": False, "variations": variations}}
    tmp = spool / "outbox" / f"{req_id}.json.tmp"
    tmp.write_text(json.dumps(doc))
    tmp.rename(spool / "outbox" / f"{req_id}.json")


def test_unknown_tracks_wait_malformed_fills_fail_and_notes_stay_in_the_selection(fake, spool, keys):
    track, original = keys
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    fake.run_action(GENERATE)  # starts the bridge; the request itself is not answered here
    fill_result(spool, "fill-gone", "{00000000-0000-0000-0000-000000000000}", [[[6.0, 6.1, 36, 100]]])
    fill_result(spool, "fill-bad", track.guid, [])
    fill_result(spool, "fill-drums", track.guid, [[[6.0, 6.1, 36, 100], [11.0, 11.1, 38, 90]], [[7.0, 7.1, 42, 80]]])
    fake.run_ticks(POLL_TICKS)
    assert json.loads((spool / "failed" / "fill-bad.json").read_text())["apply_error"] == (
        "The fill in the result is malformed.")
    assert (spool / "outbox" / "fill-gone.json").exists()  # no project recorded it: it may be one not open
    (item,) = [i for i in track.items if i is not original]
    first, second = ([(n.pitch, n.chan) for n in fake.take_notes_project_time(t)] for t in item.takes)
    assert first == [(36, 9)] and second == [(42, 9)]  # the note after the selection is left out
