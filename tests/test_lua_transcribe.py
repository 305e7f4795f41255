"""reascribe_Transcribe piano.lua: the request it writes, its dialogs, and starting the bridge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest_lua import (  # noqa: F401  (fake_posix_and_windows, spool are fixtures)
    BRIDGE, TRANSCRIBE, fake_posix_and_windows, only_request, spool, write_daemon_heartbeat,
)
from reascribe.protocol import parse_request_bytes


def piano_item(fake, name="Piano DI", position_s=10.0, length_s=6.0, start_offset_s=1.5, **kw):
    track = fake.add_track("Keys")
    media = Path(fake.current.record_path)
    return fake.add_audio_item(track, media / "piano.wav", position_s, length_s, start_offset_s=start_offset_s,
                               name=name, **kw)


def test_writes_a_request_the_daemon_accepts(fake, spool):
    fake.current.tempo.add_marker(12.0, 90.0)  # a tempo change inside the item (10 s - 16 s)
    fake.current.tempo.add_marker(20.0, 90.0, 3, 4)
    fake.current.time_selection = (8.0, 16.0)
    item, take = piano_item(fake)
    write_daemon_heartbeat(spool)

    fake.run_action(TRANSCRIBE)

    path = only_request(spool)
    request = parse_request_bytes(path.read_bytes())
    assert path.name == f"{request.id}.json"
    assert request.kind == "piano" and request.options == {"pedal_extend": False, "soft_pedal": True}
    assert request.project.file == fake.current.file
    assert str(request.project.media_dir) == fake.current.record_path
    assert request.time_selection == (8.0, 16.0)
    (entry,) = request.items
    assert (entry.item_guid, entry.take_guid, entry.name, entry.track) == (item.guid, take.guid, "Piano DI", "Keys")
    assert str(entry.source_path) == take.source.filename
    assert entry.source_size_bytes == Path(take.source.filename).stat().st_size
    assert (entry.position_s, entry.length_s, entry.start_offset_s, entry.playrate) == (10.0, 6.0, 1.5, 1.0)
    assert entry.loop is False and entry.stretch_markers == 0
    tempo = request.tempo_map
    assert tempo.time_to_qn(12.0) == pytest.approx(24.0)
    assert tempo.time_to_qn(14.0) == pytest.approx(27.0)
    assert [(s.time_s, s.bpm, s.num) for s in tempo.segments] == [(0.0, 120.0, 4), (12.0, 90.0, 4), (20.0, 90.0, 3)]
    assert not fake.message_boxes
    assert f"queued piano transcription of 1 item ({request.id})" in fake.console


def test_the_request_appears_atomically(fake, spool):
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    final = only_request(spool)
    assert not list(spool.rglob("*.tmp"))
    writes = [op for op in fake.file_ops if op[0] == "open" and "inbox" in op[1]]
    assert writes == [("open", str(final) + ".tmp", "wb")]  # never written in place
    assert ("rename", str(final) + ".tmp", str(final)) in fake.file_ops


def test_no_daemon_is_said_once_with_how_to_start_it(fake, spool):
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    fake.run_action(TRANSCRIBE)
    assert len(list((spool / "inbox").iterdir())) == 2  # still queued both times
    (box,) = fake.message_boxes
    assert "not running" in box.msg and "reascribe daemon" in box.msg and not box.background
    assert 'start it with "reascribe daemon"' in fake.console

    write_daemon_heartbeat(spool, age_s=60)  # a stale heartbeat is no daemon either
    fake.run_action(TRANSCRIBE)
    assert len(fake.message_boxes) == 1
    write_daemon_heartbeat(spool)  # the daemon came back, then died again: tell the user again
    fake.run_action(TRANSCRIBE)
    (spool / "daemon.heartbeat").unlink()
    fake.run_action(TRANSCRIBE)
    assert len(fake.message_boxes) == 2


def test_nothing_selected_says_so_and_writes_nothing(fake, spool):
    item, _ = piano_item(fake)
    item.selected = False
    fake.run_action(TRANSCRIBE)
    (box,) = fake.message_boxes
    assert "Select one or more audio items" in box.msg
    assert not list((spool / "inbox").iterdir())
    assert fake.running(BRIDGE) is None


def test_midi_and_empty_items_are_skipped_with_a_reason(fake, spool):
    track = fake.add_track("Synth")
    midi = fake.add_item(track, 0.0, 4.0, selected=True)
    fake.add_take(midi, fake.midi_source(), "Synth line")
    fake.add_item(track, 5.0, 1.0, selected=True)  # no take at all
    fake.run_action(TRANSCRIBE)
    (box,) = fake.message_boxes
    assert '"Synth line" is a MIDI item.' in box.msg and "empty item at 5.00 s" in box.msg
    assert not list((spool / "inbox").iterdir())

    piano_item(fake)
    fake.message_boxes.clear()
    fake.run_action(TRANSCRIBE)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert [i.name for i in request.items] == ["Piano DI"]
    assert "skipped: " in fake.console


def play_as_section(fake, take, reverse=False):
    """Make the take play a SECTION of its file (Item properties > Section, or a reversed take)."""
    root = take.source
    root.take = None
    section = fake.section_source(root, reversed=reverse)
    section.take, take.source = take, section


@pytest.mark.parametrize("reverse", [False, True], ids=["section", "reversed"])
def test_sections_and_reversed_takes_are_skipped_with_how_to_glue_them(fake, spool, reverse):
    """D_STARTOFFS counts inside the section, so sending the root file would transcribe the wrong part."""
    _, take = piano_item(fake)
    play_as_section(fake, take, reverse)
    fake.run_action(TRANSCRIBE)
    (box,) = fake.message_boxes
    assert '"Piano DI" plays a section of its file or is reversed; glue it (Item > Glue items) first.' in box.msg
    assert not list((spool / "inbox").iterdir())


def test_a_looped_item_that_repeats_its_audio_is_skipped(fake, spool):
    looped, take = piano_item(fake, name="Looped", length_s=6.0, start_offset_s=1.5)
    looped.loop, take.source.length_s = True, 7.0  # plays 1.5 s - 7.5 s of a 7 s file: wraps around
    wrapped, take = piano_item(fake, name="Wrapped", position_s=20.0, length_s=2.0, start_offset_s=8.0)
    wrapped.loop, take.source.length_s = True, 7.0  # starts after the end: REAPER wraps the offset
    fits, take = piano_item(fake, name="Fits", position_s=30.0, length_s=2.0, start_offset_s=1.0)
    fits.loop, take.source.length_s = True, 7.0  # loop is on but the item plays less than one pass
    unlooped, take = piano_item(fake, name="Past the end", position_s=40.0, length_s=6.0, start_offset_s=4.0)
    take.source.length_s = 7.0  # no loop: silence after the file's end, which the daemon clips off
    fake.run_action(TRANSCRIBE)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert [i.name for i in request.items] == ["Fits", "Past the end"]
    assert [i.loop for i in request.items] == [True, False]
    sentence = "loops its audio; reascribe transcribes one pass — trim the item to one pass or glue it first."
    assert f'skipped: "Looped" {sentence}' in fake.console and f'skipped: "Wrapped" {sentence}' in fake.console


def test_an_item_starting_past_the_end_of_its_file_is_skipped(fake, spool):
    item, take = piano_item(fake, start_offset_s=8.0)
    take.source.length_s = 7.0
    fake.run_action(TRANSCRIBE)
    (box,) = fake.message_boxes
    assert '"Piano DI" starts after the end of its audio file, so it plays nothing' in box.msg


def test_pedal_options_come_from_the_settings(fake, spool):
    (fake.scripts_dir / "reascribe_settings.lua").write_text("return { pedal_extend = true, soft_pedal = false }")
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert request.options == {"pedal_extend": True, "soft_pedal": False}


def test_a_reapack_install_reads_the_settings_of_install_reaper(tmp_path, spool):
    """ReaPack puts the scripts into Scripts/reascribe/Items/; install-reaper the settings into Scripts/reascribe/."""
    from reaper_fake import FakeReaper
    from reaper_fake.fake import REAPACK_SUBDIR

    fake = FakeReaper(tmp_path, env={"REASCRIBE_SPOOL": str(spool)}, scripts_subdir=REAPACK_SUBDIR)
    other = tmp_path / "configured spool"
    settings = fake.resource_dir / "Scripts" / "reascribe" / "reascribe_settings.lua"
    settings.write_text(f"return {{ spool_dir = {json.dumps(str(other))} }}")
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    assert len(list((other / "inbox").iterdir())) == 1 and not list((spool / "inbox").iterdir())
    fake.stop_all()
    fake.assert_clean()


def test_unsaved_project_uses_the_recording_folder(tmp_path, spool):
    from reaper_fake import FakeReaper

    fake = FakeReaper(tmp_path, env={"REASCRIBE_SPOOL": str(spool)}, project_file=None)
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    request = parse_request_bytes(only_request(spool).read_bytes())
    assert request.project.file == "" and str(request.project.dir) == fake.current.record_path
    fake.stop_all()
    fake.assert_clean()


def test_settings_file_chooses_the_spool(fake, spool, tmp_path):
    other = tmp_path / "other spool"
    (fake.scripts_dir / "reascribe_settings.lua").write_text(f"return {{ spool_dir = {json.dumps(str(other))} }}")
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    assert len(list((other / "inbox").iterdir())) == 1
    assert not list((spool / "inbox").iterdir())


def test_starts_the_bridge_once_and_never_toggles_it_off(fake, spool):
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    bridge = fake.running(BRIDGE)
    assert bridge is not None
    assert fake.toggle_states[(0, fake.command_id(BRIDGE))] == 1
    assert json.loads((spool / "bridge.heartbeat").read_text())["apply_action"].startswith("_RS")
    fake.run_ticks(5)
    fake.run_action(TRANSCRIBE)  # the bridge runs: relaunching it would stop it
    assert fake.running(BRIDGE) is bridge
    fake.stop_all()


def test_a_fresh_bridge_heartbeat_from_elsewhere_is_enough(fake, spool):
    (spool / "bridge.heartbeat").write_text(json.dumps({"time": __import__("time").time(), "reaper": "x",
                                                        "apply_action": "_RSx"}))
    piano_item(fake)
    fake.run_action(TRANSCRIBE)
    assert fake.running(BRIDGE) is None


def test_the_project_remembers_the_request(fake, spool):
    _, take = piano_item(fake)
    fake.run_action(TRANSCRIBE)
    request_id = only_request(spool).stem
    marker = json.loads(fake.current.ext_state["reascribe"][f"request:{request_id}"])
    assert marker == {"sources": {take.guid: take.source.filename}}
