"""Fill a gap in a part: notes in seconds on a tempo map in, variations of notes in seconds out.

The bar grid comes from the tempo map: bars count from the last time-signature change at or before
the gap (REAPER puts time-signature markers on bar lines), and the meter there holds for the context.
Notes already inside the gap are replaced, not kept. Used by ``reascribe generate``, the daemon's
``generate`` requests and the live session.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reascribe.errors import RequestError
from reascribe.events import Events, NoteEvent
from reascribe.tempo import TempoMap

PARTS = ("auto", "drums", "melodic")
DRUM_CHANNEL = 10
POLYPHONY_SHARE = 0.15  # a part whose notes overlap this often is keys, not a single line


@dataclass(frozen=True)
class FillOptions:
    variations: int = 3
    temperature: float = 0.8  # chosen on the validation split (bench/generate.py --split validation)
    density: float = 1.0  # notes per beat relative to the context: 0.5 half as busy, 2 twice
    part: str = "auto"
    seed: int | None = None


@dataclass(frozen=True)
class Fill:
    part: str  # melody, piano or drums: what the model wrote
    variations: list[list[NoteEvent]]


@dataclass(frozen=True)
class Grid:
    """The sixteenth-note grid of a gap's bars, in quarter notes (QN) of the tempo map."""

    origin_qn: float  # a bar line at or before the context
    steps_per_bar: int

    def step(self, tempo_map: TempoMap, time_s: float) -> float:
        return (tempo_map.time_to_qn(time_s) - self.origin_qn) * 4

    def time(self, tempo_map: TempoMap, step: float) -> float:
        return tempo_map.qn_to_time(self.origin_qn + step / 4)


def grid_for(tempo_map: TempoMap, start_s: float) -> Grid:
    """The bar grid around ``start_s``, with its origin one bar before the first bar the generator reads."""
    from reascribe.models.generator.context import READ_BARS

    segments = tempo_map.segments
    i = max(j for j, s in enumerate(segments) if s.time_s <= start_s or j == 0)
    while i > 0 and (segments[i - 1].num, segments[i - 1].denom) == (segments[i].num, segments[i].denom):
        i -= 1
    seg = segments[i]
    steps = seg.num * 16 / seg.denom
    if steps != int(steps) or not 1 <= steps <= 32:
        raise RequestError(f"The time signature {seg.num}/{seg.denom} is not supported by the generator "
                           "(bars of whole sixteenths, at most 8/4).")
    bar_qn = steps / 4
    meter_qn = tempo_map.time_to_qn(seg.time_s)
    bars_before = math.floor((tempo_map.time_to_qn(start_s) - meter_qn) / bar_qn + 1e-9)
    origin = meter_qn + (bars_before - READ_BARS - 1) * bar_qn
    return Grid(origin, int(steps))


def detect_part(notes: list[NoteEvent], channels: list[int] | None = None) -> str:
    """drums (channel 10, or every note a kit piece and short), piano (overlapping notes) or melody."""
    from reascribe.models.generator.vocab import drum_class_of

    if channels and sum(c == DRUM_CHANNEL for c in channels) * 2 >= len(channels):
        return "drums"
    if notes and all(drum_class_of(n.pitch_midi) is not None for n in notes):
        durations = sorted(n.end_s - n.start_s for n in notes)
        if durations[len(durations) // 2] <= 0.15:  # drum programming: short hits, not held notes
            return "drums"
    return "piano" if overlap_share(notes) >= POLYPHONY_SHARE else "melody"


def overlap_share(notes: list[NoteEvent]) -> float:
    ordered = sorted(notes, key=lambda n: n.start_s)
    overlaps = sum(b.start_s < a.end_s - 0.02 for a, b in zip(ordered, ordered[1:]))
    return overlaps / max(1, len(ordered) - 1)


def fill_gap(infiller, notes: list[NoteEvent], tempo_map: TempoMap, start_s: float, end_s: float,
             options: FillOptions, channels: list[int] | None = None) -> Fill:
    """Variations of notes for ``[start_s, end_s)``, in seconds on ``tempo_map``."""
    from reascribe.models.generator.vocab import MAX_GAP_BARS, Gap, GridNote, drum_class_of, drum_note_of

    grid = grid_for(tempo_map, start_s)
    gap = Gap(math.ceil(grid.step(tempo_map, start_s) - 1e-6), math.floor(grid.step(tempo_map, end_s) + 1e-6),
              grid.steps_per_bar)
    if gap.end <= gap.start:
        raise RequestError("The time selection is shorter than a sixteenth note; select the bars to fill.")
    if gap.n_bars > MAX_GAP_BARS:
        raise RequestError(f"The time selection spans {gap.n_bars} bars; the generator fills at most {MAX_GAP_BARS}.")
    part = detect_part(notes, channels) if options.part == "auto" else options.part
    if part == "melodic":
        part = "piano" if overlap_share(notes) >= POLYPHONY_SHARE else "melody"
    drum_notes: dict[int, int] = {}  # drum class -> the note this part uses for it
    context = []
    for n in notes:
        pitch = n.pitch_midi
        if part == "drums":
            pitch = drum_class_of(n.pitch_midi)
            if pitch is None:
                continue
            drum_notes.setdefault(pitch, n.pitch_midi)
        onset = round(grid.step(tempo_map, n.start_s))
        if onset >= 0:
            duration = max(1, round(grid.step(tempo_map, n.end_s)) - onset)
            context.append(GridNote(onset, pitch, duration, n.velocity))
    fills = infiller.fill(context, gap, part, variations=options.variations, temperature=options.temperature,
                          density=options.density, seed=options.seed)
    variations = []
    for fill in fills:
        events = []
        for n in fill:
            pitch = drum_notes.get(n.pitch, drum_note_of(n.pitch)) if part == "drums" else n.pitch
            start = max(start_s, grid.time(tempo_map, n.onset))
            end = min(end_s, grid.time(tempo_map, n.onset + n.duration))
            if end > start:
                events.append(NoteEvent(start, end, pitch, n.velocity))
        variations.append(events)
    return Fill(part, variations)


def generate_file(context_path: Path, start_s: float, end_s: float, out_path: Path, options: FillOptions) -> Path:
    """``reascribe generate``: fill ``[start_s, end_s)`` of a MIDI file; one track per variation in OUT."""
    import mido

    from reascribe import midi_out
    from reascribe.models.generator.infill import Infiller

    if Path(out_path).exists():
        raise RequestError(f"{out_path} already exists; reascribe never overwrites a file.")
    if not Path(context_path).is_file():
        raise RequestError(f"{context_path} does not exist.")
    if not (0 <= start_s < end_s):
        raise RequestError(f"--start {start_s} and --end {end_s} must satisfy 0 <= start < end.")
    try:
        events, tempo_map = midi_out.read_events(context_path)
        channels = [m.channel + 1 for t in mido.MidiFile(context_path).tracks for m in t
                    if m.type == "note_on" and m.velocity > 0]
    except (OSError, ValueError, EOFError, KeyError) as exc:
        raise RequestError(f"{context_path} is not a readable MIDI file ({exc}).") from None
    fill = fill_gap(Infiller(), events.notes, tempo_map, start_s, end_s, options, channels)
    common = Counter(channels).most_common(1)
    channel = DRUM_CHANNEL - 1 if fill.part == "drums" else (common[0][0] - 1 if common else 0)
    tracks = [midi_out.MidiPart(Events(notes), 0, channel, f"fill {i}") for i, notes in enumerate(fill.variations, 1)]
    return midi_out.write_midi_tracks(out_path, tracks, tempo_map)


def execute_generate_request(request, infiller, progress):
    """A daemon ``generate`` request: the fill's variations in project seconds, or a failed result."""
    from reascribe.protocol import GENERATE, Result, Status

    context = request.context
    start_s, end_s = request.time_selection
    progress(0.1, "Writing the fill.")
    try:
        fill = fill_gap(infiller, context.notes, request.tempo_map, start_s, end_s,
                        FillOptions(**request.options), context.channels)
    except RequestError as exc:
        return Result.failure(request.id, GENERATE, str(exc))
    channels = Counter(context.channels).most_common(1)
    channel = DRUM_CHANNEL if fill.part == "drums" else (channels[0][0] if channels else 1)
    progress(1.0, "Fill ready.")
    return Result(request.id, GENERATE, Status.DONE, None, [], fill={
        "track_guid": context.track_guid, "start_s": start_s, "end_s": end_s, "part": fill.part,
        "channel": channel, "pitched": fill.part != "drums",
        "variations": [[n.as_row() for n in notes] for notes in fill.variations],
    })
