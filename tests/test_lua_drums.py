"""reascribe_Transcribe drums.lua in the fake REAPER: its request, and the round trip through the daemon's
own spool and execution (with the stand-in drum model) back to a take on channel 10."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest

from conftest_lua import (  # noqa: F401  (fake_posix_and_windows, spool are fixtures)
    BRIDGE, TRANSCRIBE_DRUMS, fake_posix_and_windows, only_request, result_item, spool, write_daemon_heartbeat,
    write_result,
)
from daemon_support import write_clicks
from drum_support import Hit, StandInTranscriber
from reascribe.execute import execute_request
from reascribe.pipelines import no_progress
from reascribe.pipelines.drums import DrumsPipeline
from reascribe.protocol import parse_request_bytes
from reascribe.spool import Spool

TOLERANCE_S = 1e-3
POLL_TICKS = 20


def drum_item(fake, length_s=2.0, start_offset_s=0.5, playrate=1.5, **kw):
    """An item at 10 s playing a real WAV of clicks (tests/daemon_support.py), 1.5x without preserved pitch."""
    media = Path(fake.current.record_path)
    media.mkdir(parents=True, exist_ok=True)
    write_clicks(media / "beat.wav")
    track = fake.add_track("Drums")
    return fake.add_audio_item(track, media / "beat.wav", 10.0, length_s, start_offset_s=start_offset_s,
                               playrate=playrate, name="Beat", preserve_pitch=False, pitch=-2.0, **kw)


def settings(fake, text):
    (fake.scripts_dir / "reascribe_settings.lua").write_text(f"return {{ {text} }}")


def test_a_drum_take_lands_on_channel_10_untransposed_in_one_undo_block(fake, spool):
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    settings(fake, "drum_note_map = { kick = 35 }")
    fake.current.tempo.add_marker(10.4, 90.0)  # a tempo change inside the item
    item, _ = drum_item(fake)
    fake.run_action(TRANSCRIBE_DRUMS)
    fake.run_ticks(1)

    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    assert request.kind == "drums" and request.options == {"note_map": {"kick": 35}}
    daemon.claim(request.id)
    # Hits in seconds of the section the model hears, which starts at the item's start offset (0.5 s).
    model = StandInTranscriber([Hit(0.1, "kick", 100), Hit(0.4, "snare", 90), Hit(0.4, "hihat_closed", 60),
                                Hit(1.0, "kick", 110)])
    result = execute_request(request, DrumsPipeline(model=model), no_progress, [])
    daemon.write_result(result)
    fake.run_ticks(POLL_TICKS)

    (take,) = [t for t in item.takes if "reascribe_result" in t.ext]
    assert take.name == "Beat drums" and item.active_take is take
    notes = sorted(fake.take_notes_project_time(take), key=lambda n: (n.start_s, n.pitch))
    project_s = [10.0 + (0.5 + t - 0.5) / 1.5 for t in (0.1, 0.4, 0.4, 1.0)]
    assert [(n.pitch, n.vel, n.chan) for n in notes] == [(35, 100, 9), (38, 90, 9), (42, 60, 9), (35, 110, 9)]
    for note, start_s in zip(notes, project_s):  # 0.1 s of source audio is 0.067 s at 1.5x
        assert note.start_s == pytest.approx(start_s, abs=TOLERANCE_S)
        assert note.end_s == pytest.approx(start_s + 0.1 / 1.5, abs=TOLERANCE_S)
    (undo,) = fake.undo_log
    assert (undo.desc, undo.project) == ("reascribe: transcribe drums (1 item)", fake.current)
    assert f"reascribe: {request.id}: added a drums take to 1 item (4 notes)." in fake.console
    artifact = result.items[0].artifact
    assert {m.channel for m in mido.MidiFile(artifact) if m.type == "note_on"} == {9}


def test_drum_settings_become_the_requests_options(fake, spool):
    write_daemon_heartbeat(spool)
    drum_item(fake)
    fake.run_action(TRANSCRIBE_DRUMS)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert request.kind == "drums" and request.options == {}  # the daemon's defaults
    only_request(spool).unlink()

    settings(fake, "drum_note_length = 0.05, drum_channel = 1, drum_note_map = {}, pedal_extend = true")
    fake.run_action(TRANSCRIBE_DRUMS)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert request.options == {"note_length": 0.05, "channel": 1, "note_map": {}}
    assert f"queued drums transcription of 1 item ({request.id})" in fake.console


def test_dialogs_name_the_drums_action(fake, spool):
    item, _ = drum_item(fake)
    item.selected = False
    fake.run_action(TRANSCRIBE_DRUMS)
    (box,) = fake.message_boxes
    assert 'then run "reascribe: Transcribe drums" again' in box.msg
    item.selected = True
    fake.run_action(TRANSCRIBE_DRUMS)  # no daemon heartbeat
    assert "The drums take appears on the item" in fake.message_boxes[-1].msg
    assert fake.running(BRIDGE) is not None


@pytest.mark.parametrize("channel, chan", [(16, 15), (1, 0)])
def test_the_take_uses_the_results_channel(fake, spool, channel, chan):
    item, _ = drum_item(fake, playrate=1.0)
    write_daemon_heartbeat(spool)
    fake.run_action(TRANSCRIBE_DRUMS)
    request = json.loads(only_request(spool).read_text())
    entry = request["items"][0]
    write_result(spool, request["id"], [result_item(entry["item_guid"], entry["take_guid"], [[1.0, 1.1, 36, 90]],
                                                    channel=channel, pitched=False)], kind="drums")
    fake.run_ticks(POLL_TICKS)
    (take,) = [t for t in item.takes if "reascribe_result" in t.ext]
    assert [(n.pitch, n.chan) for n in fake.take_notes_project_time(take)] == [(36, chan)]


@pytest.mark.parametrize("channel", [0, 17, 9.5, "10"])
def test_a_result_with_a_bad_channel_fails_with_a_sentence(fake, spool, channel):
    item, _ = drum_item(fake)
    write_daemon_heartbeat(spool)
    fake.run_action(TRANSCRIBE_DRUMS)
    request = json.loads(only_request(spool).read_text())
    entry = request["items"][0]
    write_result(spool, request["id"], [result_item(entry["item_guid"], entry["take_guid"], [[1.0, 1.1, 36, 90]],
                                                    channel=channel)], kind="drums")
    fake.run_ticks(POLL_TICKS)
    assert len(item.takes) == 1 and not fake.undo_log
    assert (spool / "failed" / f"{request['id']}.json").exists()
    assert f'the result for "Beat" names MIDI channel {channel}, not 1-16' in fake.console
