"""Standard MIDI files of pipeline events, carrying a real tempo map, never overwriting a file.

Ticks come from the tempo map (``tick = time_to_qn(t) * ppq``), so a file written with a project's map
lines up with that project's bars; the conductor track holds the map as set_tempo / time_signature
events so any program that reads the file places the notes at the same seconds.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import mido

from reascribe.events import ControlEvent, Events, NoteEvent
from reascribe.tempo import TempoMap, TempoSegment

log = logging.getLogger(__name__)

MAX_UNIQUE_TRIES = 10000

# At one tick, releases come before controller changes and presses, so a re-struck pitch sounds again.
_ORDER_NOTE_OFF, _ORDER_CONTROL, _ORDER_NOTE_ON = 0, 1, 2


def unique_path(path: str | os.PathLike, reserved: Collection[Path] = frozenset()) -> Path:
    """``path`` if no file has that name, else the first free ``name (2).ext``, ``name (3).ext``, ...

    ``reserved``: paths promised to jobs that have not written them yet, treated as taken."""
    path = Path(path)
    for n in range(1, MAX_UNIQUE_TRIES):
        candidate = path if n == 1 else path.with_name(f"{path.stem} ({n}){path.suffix}")
        if candidate not in reserved and not candidate.exists():
            return candidate
    raise FileExistsError(f"{path} and {MAX_UNIQUE_TRIES} numbered copies of it already exist.")


def write_midi(
    path: str | os.PathLike,
    events: Events,
    tempo_map: TempoMap,
    *,
    ppq: int = 960,
    program: int = 0,
    channel: int = 0,
    track_name: str = "",
) -> Path:
    """Write ``events`` (seconds from the file's start) as a type-1 MIDI file at ``path``.

    Raises FileExistsError if ``path`` exists (use ``unique_path``); the file appears complete or not
    at all.
    """
    return write_midi_tracks(path, [MidiPart(events, program, channel, track_name)], tempo_map, ppq=ppq)


@dataclass(frozen=True)
class MidiPart:
    """One track of a MIDI file: its events, General MIDI program, channel (0-15) and name."""

    events: Events
    program: int = 0
    channel: int = 0
    name: str = ""


def write_midi_tracks(path: str | os.PathLike, parts: list[MidiPart], tempo_map: TempoMap, *, ppq: int = 960) -> Path:
    """``write_midi`` with one track per part (after the conductor track)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; reascribe never overwrites a file.")
    midi = mido.MidiFile(type=1, ticks_per_beat=ppq)
    midi.tracks.append(_conductor_track(tempo_map, ppq))
    for part in parts:
        midi.tracks.append(_event_track(part.events, tempo_map, ppq, part.program, part.channel, part.name))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            midi.save(file=tmp)
        _publish_without_replacing(Path(tmp_name), path)
    finally:
        os.unlink(tmp_name)
    log.debug("wrote %s: %d track(s)", path, len(parts))
    return path


def read_events(path: str | os.PathLike) -> tuple[Events, TempoMap]:
    """Notes and controller changes of a MIDI file in seconds, through the file's own tempo map."""
    midi = mido.MidiFile(str(path))
    ppq = midi.ticks_per_beat
    messages = sorted(
        ((tick, order, msg) for order, (tick, msg) in enumerate(_absolute(midi))),
        key=lambda item: (item[0], item[1]),
    )
    tempo_map = _tempo_map(messages, ppq)

    def seconds(tick: int) -> float:
        return tempo_map.qn_to_time(tick / ppq)

    notes: list[NoteEvent] = []
    controls: list[ControlEvent] = []
    sounding: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for tick, _, msg in messages:
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[(msg.channel, msg.note)].append((tick, msg.velocity))
        elif msg.type in ("note_on", "note_off") and sounding[(msg.channel, msg.note)]:
            start, velocity = sounding[(msg.channel, msg.note)].pop(0)
            notes.append(NoteEvent(seconds(start), seconds(tick), msg.note, velocity))
        elif msg.type == "control_change":
            controls.append(ControlEvent(seconds(tick), msg.control, msg.value))
    notes.sort(key=lambda n: (n.start_s, n.pitch_midi))
    return Events(notes, controls), tempo_map


def _publish_without_replacing(tmp: Path, path: Path) -> None:
    """Give the finished temporary file its final name; fail rather than replace an existing file."""
    try:
        os.link(tmp, path)  # atomic, and refuses an existing name
    except FileExistsError:
        raise FileExistsError(f"{path} already exists; reascribe never overwrites a file.") from None
    except OSError as exc:  # file systems without hard links (FAT, some network shares)
        log.debug("hard link to %s failed (%s); creating it exclusively", path, exc)
        with open(path, "xb") as out:
            out.write(tmp.read_bytes())


def _tick(tempo_map: TempoMap, time_s: float, ppq: int) -> int:
    return max(0, round(tempo_map.time_to_qn(max(0.0, time_s)) * ppq))


def _conductor_track(tempo_map: TempoMap, ppq: int) -> mido.MidiTrack:
    track = mido.MidiTrack()
    timed = []
    previous: TempoSegment | None = None
    for seg in tempo_map.segments:
        tick = _tick(tempo_map, seg.time_s, ppq)
        if previous is None or (seg.num, seg.denom) != (previous.num, previous.denom):
            timed.append((tick, mido.MetaMessage("time_signature", numerator=seg.num, denominator=seg.denom)))
        if previous is None or seg.bpm != previous.bpm:
            timed.append((tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(seg.bpm))))
        previous = seg
    return _delta_track(track, timed)


def _event_track(
    events: Events, tempo_map: TempoMap, ppq: int, program: int, channel: int, track_name: str
) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if track_name:
        track.append(mido.MetaMessage("track_name", name=track_name))
    track.append(mido.Message("program_change", program=program, channel=channel))
    timed = []
    for note in _without_overlaps(events.notes):
        start = _tick(tempo_map, note.start_s, ppq)
        end = max(start + 1, _tick(tempo_map, note.end_s, ppq))  # a note shorter than a tick still sounds
        velocity = min(127, max(1, note.velocity))  # velocity 0 would mean note-off
        timed.append(((start, _ORDER_NOTE_ON), _note_message("note_on", note.pitch_midi, velocity, channel)))
        timed.append(((end, _ORDER_NOTE_OFF), _note_message("note_off", note.pitch_midi, 0, channel)))
    for cc in events.controls:
        msg = mido.Message("control_change", control=cc.controller, value=cc.value, channel=channel)
        timed.append(((_tick(tempo_map, cc.time_s, ppq), _ORDER_CONTROL), msg))
    for chord in events.chords or ():  # chord names as markers, shown by DAWs that import the file
        timed.append(((_tick(tempo_map, chord.start_s, ppq), _ORDER_CONTROL), mido.MetaMessage("marker", text=chord.label)))
    timed.sort(key=lambda item: item[0])
    return _delta_track(track, [(key[0], msg) for key, msg in timed])


def _note_message(kind: str, pitch_midi: int, velocity: int, channel: int) -> mido.Message:
    return mido.Message(kind, note=pitch_midi, velocity=velocity, channel=channel)


def _without_overlaps(notes: list[NoteEvent]) -> list[NoteEvent]:
    """End each note no later than the next onset of its pitch: on one channel they would cut each other."""
    by_pitch: dict[int, list[NoteEvent]] = defaultdict(list)
    for note in sorted(notes, key=lambda n: n.start_s):
        by_pitch[note.pitch_midi].append(note)
    result = []
    for same in by_pitch.values():
        for note, following in zip(same, same[1:] + [None]):
            if following is not None and note.end_s > following.start_s:
                note = NoteEvent(note.start_s, following.start_s, note.pitch_midi, note.velocity)
            result.append(note)
    return result


def _delta_track(track: mido.MidiTrack, timed: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    now = 0
    for tick, msg in timed:
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def _absolute(midi: mido.MidiFile):
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            yield tick, msg


def _tempo_map(messages: list, ppq: int) -> TempoMap:
    """The file's tempo and time-signature changes as a TempoMap (120 BPM 4/4 where it sets none)."""
    bpm, num, denom = 120.0, 4, 4
    changes: dict[int, tuple[float, int, int]] = {0: (bpm, num, denom)}
    for tick, _, msg in messages:
        if msg.type == "set_tempo":
            bpm = mido.tempo2bpm(msg.tempo)
        elif msg.type == "time_signature":
            num, denom = msg.numerator, msg.denominator
        else:
            continue
        changes[tick] = (bpm, num, denom)
    segments, time_s, last_tick, last_bpm = [], 0.0, 0, changes[0][0]
    for tick in sorted(changes):
        time_s += (tick - last_tick) / ppq * 60.0 / last_bpm
        bpm, num, denom = changes[tick]
        segments.append(TempoSegment(time_s, bpm, num, denom))
        last_tick, last_bpm = tick, bpm
    return TempoMap(segments)
