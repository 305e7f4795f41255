"""The ``context`` of a ``generate`` request: the notes around the time selection (docs/protocol.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from reascribe.errors import RequestError
from reascribe.events import NoteEvent

MAX_CONTEXT_NOTES = 20000  # a few bars of even the densest part are far fewer


@dataclass(frozen=True)
class GenerateContext:
    track_guid: str
    track: str
    notes: list[NoteEvent]  # project seconds
    channels: list[int]  # 1-16, one per note


def parse_context(doc: object) -> GenerateContext:
    if not isinstance(doc, dict):
        raise RequestError("A generate request needs a 'context' object with the notes around the time selection.")
    track_guid, track = doc.get("track_guid"), doc.get("track", "")
    if not isinstance(track_guid, str) or not track_guid or not isinstance(track, str):
        raise RequestError("'context.track_guid' must name the track to fill (a non-empty string).")
    rows = doc.get("notes")
    if not isinstance(rows, list):
        raise RequestError("'context.notes' must be a list of [start_s, end_s, pitch, velocity, channel].")
    if len(rows) > MAX_CONTEXT_NOTES:
        raise RequestError(f"The context has {len(rows)} notes; at most {MAX_CONTEXT_NOTES} are allowed.")
    notes, channels = [], []
    for n, row in enumerate(rows, 1):
        start, end, pitch, velocity, channel = _note(row, n)
        notes.append(NoteEvent(start, end, pitch, velocity))
        channels.append(channel)
    return GenerateContext(track_guid, track, notes, channels)


def _note(row: object, n: int) -> tuple[float, float, int, int, int]:
    where = f"context note {n}"
    if not isinstance(row, list) or len(row) != 5 or any(isinstance(v, bool) for v in row):
        raise RequestError(f"{where} must be [start_s, end_s, pitch, velocity, channel].")
    start, end, pitch, velocity, channel = row
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start, end)) or not 0 <= start <= end:
        raise RequestError(f"{where} has times {start!r}..{end!r}; they must be seconds with 0 <= start <= end.")
    ranges = (("pitch", pitch, 0, 127), ("velocity", velocity, 1, 127), ("channel", channel, 1, 16))
    for name, value, low, high in ranges:
        if not isinstance(value, int) or not low <= value <= high:
            raise RequestError(f"{where} has {name} {value!r}; it must be a whole number from {low} to {high}.")
    return float(start), float(end), pitch, velocity, channel
