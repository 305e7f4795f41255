"""reascribe.midi_out: tempo-mapped MIDI files that never replace an existing file."""

from __future__ import annotations

import mido
import pytest

from reascribe.events import ControlEvent, Events, NoteEvent
from reascribe.midi_out import read_events, unique_path, write_midi
from reascribe.tempo import TempoMap, TempoSegment

TEMPO_MAP = TempoMap([TempoSegment(0.0, 120.0, 4, 4), TempoSegment(2.0, 90.0, 3, 4), TempoSegment(5.0, 150.0, 3, 4)])
EVENTS = Events(
    notes=[
        NoteEvent(0.0, 0.5, 60, 100),
        NoteEvent(1.9, 2.7, 64, 80),  # spans the first tempo change
        NoteEvent(3.123, 3.4567, 67, 1),
        NoteEvent(3.4567, 4.0, 67, 127),  # re-strike at the very tick the previous one ends
        NoteEvent(6.3333, 7.0, 108, 64),
    ],
    controls=[
        ControlEvent(1.7, 64, 127),
        ControlEvent(4.2, 64, 0),
        ControlEvent(5.5, 67, 127),
        ControlEvent(6.0, 67, 0),
    ],
)


def test_round_trip_through_a_tempo_change(tmp_path):
    path = write_midi(tmp_path / "take.mid", EVENTS, TEMPO_MAP, track_name="Piano")
    events, tempo_map = read_events(path)
    assert [(n.pitch_midi, n.velocity) for n in events.notes] == [(n.pitch_midi, n.velocity) for n in EVENTS.notes]
    for got, want in zip(events.notes, EVENTS.notes):
        assert got.start_s == pytest.approx(want.start_s, abs=1e-3)
        assert got.end_s == pytest.approx(want.end_s, abs=1e-3)
    assert [(c.controller, c.value) for c in events.controls] == [(c.controller, c.value) for c in EVENTS.controls]
    for got, want in zip(events.controls, EVENTS.controls):
        assert got.time_s == pytest.approx(want.time_s, abs=1e-3)
    assert [(s.num, s.denom) for s in tempo_map.segments] == [(4, 4), (3, 4), (3, 4)]
    assert [s.bpm for s in tempo_map.segments] == pytest.approx([120.0, 90.0, 150.0], rel=1e-6)  # whole microseconds
    assert [s.time_s for s in tempo_map.segments] == pytest.approx([0.0, 2.0, 5.0], abs=1e-4)


def test_file_carries_the_tempo_map_in_its_ticks(tmp_path):
    path = write_midi(tmp_path / "take.mid", EVENTS, TEMPO_MAP, ppq=480, program=5, channel=3, track_name="Keys")
    midi = mido.MidiFile(path)
    assert midi.type == 1 and midi.ticks_per_beat == 480 and len(midi.tracks) == 2
    conductor = [(m.type, m.time) for m in midi.tracks[0] if not m.type == "end_of_track"]
    # 2 s at 120 BPM = 4 QN = 1920 ticks; 3 s at 90 BPM = 4.5 QN = 2160 ticks
    assert conductor == [
        ("time_signature", 0),
        ("set_tempo", 0),
        ("time_signature", 1920),
        ("set_tempo", 0),
        ("set_tempo", 2160),
    ]
    track = list(midi.tracks[1])
    assert track[0].type == "track_name" and track[0].name == "Keys"
    assert track[1].type == "program_change" and track[1].program == 5 and track[1].channel == 3
    ticks, now = {}, 0
    for msg in track:
        now += msg.time
        if msg.type == "note_on":
            ticks.setdefault(msg.note, now)
    assert ticks[64] == round(1.9 * 2 * 480)
    assert ticks[67] == 1920 + round(1.123 * 1.5 * 480)


def test_restrike_at_the_same_tick_keeps_both_notes(tmp_path):
    path = write_midi(tmp_path / "take.mid", EVENTS, TEMPO_MAP)
    events, _ = read_events(path)
    g = [n for n in events.notes if n.pitch_midi == 67]
    assert len(g) == 2 and g[0].end_s == pytest.approx(g[1].start_s, abs=1e-3)
    assert g[1].end_s == pytest.approx(4.0, abs=1e-3)


def test_overlapping_notes_of_one_pitch_are_cut_at_the_next_onset(tmp_path):
    events = Events([NoteEvent(0.0, 2.0, 60, 90), NoteEvent(1.0, 1.5, 60, 70)])
    got, _ = read_events(write_midi(tmp_path / "x.mid", events, TempoMap.constant(120)))
    assert [(round(n.start_s, 3), round(n.end_s, 3), n.velocity) for n in got.notes] == [(0.0, 1.0, 90), (1.0, 1.5, 70)]


def test_zero_velocity_and_zero_length_notes_still_sound(tmp_path):
    events = Events([NoteEvent(1.0, 1.0, 60, 0)])
    got, _ = read_events(write_midi(tmp_path / "x.mid", events, TempoMap.constant(120)))
    assert len(got.notes) == 1 and got.notes[0].velocity == 1 and got.notes[0].end_s > got.notes[0].start_s


def test_never_overwrites(tmp_path):
    path = tmp_path / "take.mid"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="never overwrites"):
        write_midi(path, EVENTS, TEMPO_MAP)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]  # no temporary file left behind


def test_file_appearing_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    path = tmp_path / "take.mid"
    real_save = mido.MidiFile.save

    def save_while_someone_else_writes(self, *args, **kwargs):
        path.write_bytes(b"theirs")
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(mido.MidiFile, "save", save_while_someone_else_writes)
    with pytest.raises(FileExistsError):
        write_midi(path, EVENTS, TEMPO_MAP)
    assert path.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mid"]


def test_unique_path(tmp_path):
    path = tmp_path / "Piano DI-piano.mid"
    assert unique_path(path) == path
    path.touch()
    assert unique_path(path) == tmp_path / "Piano DI-piano (2).mid"
    (tmp_path / "Piano DI-piano (2).mid").touch()
    assert unique_path(path) == tmp_path / "Piano DI-piano (3).mid"
    assert write_midi(unique_path(path), EVENTS, TEMPO_MAP).name == "Piano DI-piano (3).mid"
    reserved = {tmp_path / "Piano DI-piano (4).mid"}  # promised to a job that has not written it yet
    assert unique_path(path, reserved) == tmp_path / "Piano DI-piano (5).mid"
