"""reascribe_Separate.lua and reascribe_Transcribe from mix.lua in the fake REAPER: their requests, the
daemon's real execution (hpss separation; stand-in drum model, onset "piano") and the new tracks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest_lua import (  # noqa: F401  (fake, spool are fixtures)
    copy_back, fake, only_request, result_item, spool, write_daemon_heartbeat, write_result,
)
from daemon_support import OnsetPipeline
from drum_support import Hit, StandInTranscriber
from reascribe.execute_stems import execute_mix_request, execute_separate_request
from reascribe.pipelines import no_progress
from reascribe.pipelines.drums import DrumsPipeline
from reascribe.separation.hpss import HpssSeparator
from reascribe.spool import Spool

SEPARATE = "reascribe_Separate.lua"
MIX = "reascribe_Transcribe from mix.lua"
RATE = 44100
POLL_TICKS = 20


def write_mix(path: Path, seconds: float = 3.0) -> Path:
    """A held chord with a click every half second (stereo, 44.1 kHz)."""
    t = np.arange(int(seconds * RATE)) / RATE
    chord = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)
    clicks = np.zeros_like(t)
    for start in range(0, len(t), RATE // 2):
        clicks[start : start + 64] = np.exp(-np.arange(len(clicks[start : start + 64])) / 8.0)
    sf.write(path, np.stack([chord + clicks, chord + 0.5 * clicks], axis=1), RATE)
    return path


def song(fake, folder_depth=0, length_s=1.6, **kw):
    """Tracks "Intro", "Song" (holding the mix item at 10 s, 1.5x), "Outro"; the item plays from 0.5 s."""
    media = Path(fake.current.record_path)
    write_mix(media / "mix.wav")
    fake.add_track("Intro")
    track = fake.add_track("Song")
    track.folder_depth = folder_depth
    fake.add_track("Outro")
    args = {"start_offset_s": 0.5, "playrate": 1.5, "preserve_pitch": False, "pitch": 2.0, **kw}
    item, take = fake.add_audio_item(track, media / "mix.wav", 10.0, length_s, name="Mix", **args)
    return track, item, take


def daemon_round_trip(fake, spool, action, execute):
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    fake.run_action(action)
    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    daemon.claim(request.id)
    result = execute(request)
    daemon.write_result(result)
    fake.run_ticks(POLL_TICKS)
    return request, result


def snapshot(item, take):
    return (item.position_s, item.length_s, len(item.takes), take.start_offset_s, take.playrate, take.pitch,
            take.source.filename, dict(take.ext))


def test_separate_puts_aligned_stems_in_a_folder_under_the_item(fake, spool):
    _, item, take = song(fake)
    before = snapshot(item, take)
    request, result = daemon_round_trip(
        fake, spool, SEPARATE, lambda r: execute_separate_request(r, HpssSeparator(), no_progress, []))
    assert request.kind == "separate" and request.options == {}

    names = [t.name for t in fake.current.tracks]
    assert names == ["Intro", "Song", "Mix stems", "drums", "harmonic", "residual", "Outro"]
    depths = [t.folder_depth for t in fake.current.tracks]
    assert depths == [0, 0, 1, 0, 0, -1, 0]
    stems = {s["name"]: Path(s["path"]) for s in result.items[0].stems}
    assert list(stems) == ["drums", "harmonic", "residual"]
    media = Path(fake.current.record_path) / "reascribe"
    for stem_track in fake.current.tracks[3:6]:
        (stem_item,) = stem_track.items
        (stem_take,) = stem_item.takes
        assert (stem_item.position_s, stem_item.length_s) == (10.0, 1.6)
        assert (stem_take.start_offset_s, stem_take.playrate, stem_take.pitch, stem_take.preserve_pitch) == (
            0.0, 1.5, 2.0, False)
        assert stem_take.name == f"Mix {stem_track.name}"
        path = Path(stem_take.source.filename)
        assert path == stems[stem_track.name] and path.parent == media
        info = sf.info(path)  # the played section: 1.6 s at 1.5x from 0.5 s is 2.4 s of the file
        assert info.duration == pytest.approx(2.4, abs=1e-3) and info.channels == 2
    total = sum(sf.read(p, dtype="float32")[0] for p in stems.values())
    mix, _ = sf.read(Path(fake.current.record_path) / "mix.wav", dtype="float32")
    np.testing.assert_allclose(total, mix[RATE // 2 : RATE // 2 + len(total)], atol=1e-4)
    assert snapshot(item, take) == before  # the original item is untouched
    (undo,) = fake.undo_log
    assert undo.desc == "reascribe: separate (1 item)"
    assert f"reascribe: {request.id}: added the stems of 1 item on new tracks." in fake.console

    copy_back(spool, request.id)  # applying the same result again adds nothing
    fake.run_ticks(POLL_TICKS)
    assert [t.name for t in fake.current.tracks] == names and len(fake.undo_log) == 1


def test_stems_stay_in_the_folder_the_items_track_closes(fake, spool):
    fake.add_track("Band").folder_depth = 1
    _, item, _ = song(fake, folder_depth=-1)  # "Song" is the last track of the "Band" folder
    entry = {"name": "drums", "path": str(write_mix(Path(fake.current.record_path) / "d.wav"))}
    write_daemon_heartbeat(spool)
    fake.run_action(SEPARATE)
    request = json.loads(only_request(spool).read_text())
    write_result(spool, request["id"], [result_item(item.guid, item.takes[0].guid, section={"start_s": 0.5},
                                                    stems=[entry, {**entry, "name": "rest"}])], kind="separate")
    fake.run_ticks(POLL_TICKS)
    tracks = [(t.name, t.folder_depth) for t in fake.current.tracks]
    assert tracks == [("Band", 1), ("Intro", 0), ("Song", 0), ("Mix stems", 1), ("drums", 0), ("rest", -2),
                      ("Outro", 0)]


@pytest.mark.parametrize("moved, words", [
    (True, '"Mix" now starts elsewhere in its audio file than when it was separated; separate it again'),
    (False, "of \"Mix\" is missing; separate it again"),
])
def test_a_stale_or_broken_separation_fails_with_a_sentence(fake, spool, moved, words):
    _, item, take = song(fake)
    write_daemon_heartbeat(spool)
    fake.run_action(SEPARATE)
    request = json.loads(only_request(spool).read_text())
    stem = Path(fake.current.record_path) / "stem.wav"
    if moved:
        write_mix(stem)
        take.start_offset_s = 0.7
    write_result(spool, request["id"], [result_item(item.guid, take.guid, section={"start_s": 0.5},
                                                    stems=[{"name": "drums", "path": str(stem)}])],
                 kind="separate")
    fake.run_ticks(POLL_TICKS)
    assert len(fake.current.tracks) == 3 and not fake.undo_log
    assert (spool / "failed" / f"{request['id']}.json").exists()
    assert words in fake.console


def test_separation_backend_setting_and_dialog_words(fake, spool):
    _, item, _ = song(fake)
    (fake.scripts_dir / "reascribe_settings.lua").write_text('return { separation_backend = "demucs" }')
    item.selected = False
    fake.run_action(SEPARATE)
    assert 'then run "reascribe: Separate" again' in fake.message_boxes[-1].msg
    item.selected = True
    fake.run_action(SEPARATE)  # no daemon
    assert "The stems appear on new tracks" in fake.message_boxes[-1].msg
    request = json.loads(only_request(spool).read_text())
    assert request["kind"] == "separate" and request["options"] == {"backend": "demucs"}
    assert f"queued separation of 1 item ({request['id']})" in fake.console


def test_transcribe_from_mix_adds_a_midi_track_per_kind(fake, spool):
    (fake.scripts_dir / "reascribe_settings.lua").write_text("return { drum_note_map = { kick = 35 } }")
    _, item, take = song(fake, playrate=1.0, pitch=0.0, preserve_pitch=True, start_offset_s=0.0, length_s=3.0)
    before = snapshot(item, take)
    drums = DrumsPipeline(model=StandInTranscriber([Hit(0.5, "kick", 100), Hit(1.0, "snare", 90)]))
    piano = OnsetPipeline(0.0)
    piano.load()
    pipelines = {"drums": drums, "piano": piano}
    request, result = daemon_round_trip(fake, spool, MIX, lambda r: execute_mix_request(
        r, HpssSeparator(), lambda kind, progress: pipelines[kind], no_progress, []))
    assert request.options["kinds"] == ["drums", "piano"] and request.options["drums"] == {"note_map": {"kick": 35}}

    assert [t.name for t in fake.current.tracks] == ["Intro", "Song", "Mix drums", "Mix piano", "Outro"]
    assert [t.folder_depth for t in fake.current.tracks] == [0] * 5
    drum_take = fake.current.tracks[2].items[0].takes[0]
    piano_take = fake.current.tracks[3].items[0].takes[0]
    for new in (drum_take, piano_take):
        assert (new.item.position_s, new.item.length_s) == (10.0, 3.0)
    notes = fake.take_notes_project_time(drum_take)
    assert [(n.pitch, n.chan) for n in notes] == [(35, 9), (38, 9)]
    assert [n.start_s for n in notes] == pytest.approx([10.5, 11.0], abs=1e-3)
    assert drum_take.name == "Mix drums"
    piano_notes = fake.take_notes_project_time(piano_take)
    assert piano_notes and {n.chan for n in piano_notes} == {0}
    assert snapshot(item, take) == before
    (undo,) = fake.undo_log
    assert undo.desc == "reascribe: transcribe from mix (1 item)"
    assert f"reascribe: {request.id}: added MIDI tracks under 1 item (" in fake.console
    assert Path(result.items[0].artifact).is_file()
    copy_back(spool, request.id)
    fake.run_ticks(POLL_TICKS)
    assert len(fake.current.tracks) == 5 and len(fake.undo_log) == 1


def test_a_stem_reaper_refuses_leaves_no_tracks_behind(fake, spool):
    fake.add_track("Band").folder_depth = 1
    _, item, take = song(fake, folder_depth=-1)
    stem = write_mix(Path(fake.current.record_path) / "d.wav")
    write_daemon_heartbeat(spool)
    fake.run_action(SEPARATE)
    request = json.loads(only_request(spool).read_text())
    write_result(spool, request["id"], [result_item(item.guid, take.guid, section={"start_s": 0.5},
                                                    stems=[{"name": "drums", "path": str(stem)}] * 2)],
                 kind="separate")
    fake.refuse("AddTakeToMediaItem")
    fake.run_ticks(POLL_TICKS)
    assert [(t.name, t.folder_depth) for t in fake.current.tracks] == [
        ("Band", 1), ("Intro", 0), ("Song", -1), ("Outro", 0)]
    assert (spool / "failed" / f"{request['id']}.json").exists()
    assert '"Mix": REAPER did not open the stem file' in fake.console


def test_two_items_get_their_tracks_in_one_undo_block_and_an_empty_part_gets_none(fake, spool):
    media = Path(fake.current.record_path)
    stem = write_mix(media / "stem.wav")
    first = fake.add_audio_item(fake.add_track("A"), write_mix(media / "a.wav"), 1.0, 2.0, name="A")
    second = fake.add_audio_item(fake.add_track("B"), write_mix(media / "b.wav"), 5.0, 2.0, name="B")
    write_daemon_heartbeat(spool)
    fake.run_action(SEPARATE)
    request = json.loads(only_request(spool).read_text())
    stems = [{"name": "drums", "path": str(stem)}, {"name": "harmonic", "path": str(stem)}]
    write_result(spool, request["id"], [result_item(i.guid, t.guid, section={"start_s": 0.0}, stems=stems)
                                        for i, t in (first, second)], kind="separate")
    fake.run_ticks(POLL_TICKS)
    assert [t.name for t in fake.current.tracks] == ["A", "A stems", "drums", "harmonic",
                                                     "B", "B stems", "drums", "harmonic"]
    (undo,) = fake.undo_log
    assert undo.desc == "reascribe: separate (2 items)"

    (spool / "inbox" / f"{request['id']}.json").unlink()
    fake.select_items(first[0])
    fake.run_action(MIX)
    request = json.loads(only_request(spool).read_text())
    parts = [{"kind": "drums", "stem": "drums", "notes": [], "cc": [], "channel": 10, "pitched": False},
             {"kind": "piano", "stem": "harmonic", "notes": [[0.5, 1.0, 60, 80]], "cc": [[0.4, 64, 127]],
              "channel": 1, "pitched": True}]
    write_result(spool, request["id"], [result_item(first[0].guid, first[1].guid, parts=parts)], kind="mix")
    fake.run_ticks(POLL_TICKS)
    assert [t.name for t in fake.current.tracks][:3] == ["A", "A piano", "A stems"]
    piano = fake.current.tracks[1].items[0].takes[0]
    assert [(n.start_s, n.pitch) for n in fake.take_notes_project_time(piano)] == [(1.5, 60)]
    assert [(c.cc, c.value) for c in fake.take_ccs_project_time(piano)] == [(64, 127), (64, 0)]
    assert f"reascribe: {request['id']}: added MIDI tracks under 1 item (1 note, 2 pedal events)." in fake.console
