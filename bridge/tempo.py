"""A project's tempo and time-signature map: seconds <-> quarter notes (QN).

Segments are piecewise constant, as REAPER's square tempo markers are. A gradual (linear) marker is
kept as a flag and treated as a step at its start: only MIDI files written by the daemon use this map;
the notes applied in REAPER are placed by REAPER's own map.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from reascribe.errors import RequestError

MIN_BPM = 1.0
MAX_BPM = 960.0  # REAPER's tempo range


@dataclass(frozen=True)
class TempoSegment:
    time_s: float
    bpm: float
    num: int = 4
    denom: int = 4
    linear: bool = False


class TempoMap:
    def __init__(self, segments: list[TempoSegment]) -> None:
        if not segments:
            raise RequestError("A tempo map needs at least one tempo.")
        segments = sorted(segments, key=lambda s: s.time_s)
        for seg in segments:
            if not (MIN_BPM <= seg.bpm <= MAX_BPM):
                raise RequestError(f"Tempo {seg.bpm} BPM is outside {MIN_BPM:g}-{MAX_BPM:g} BPM.")
            if seg.num < 1 or seg.denom not in (1, 2, 4, 8, 16, 32, 64):
                raise RequestError(f"Time signature {seg.num}/{seg.denom} is not valid.")
            if seg.time_s < 0:
                raise RequestError(f"A tempo marker at {seg.time_s} s is before the project start.")
        if segments[0].time_s > 0:
            first = segments[0]
            segments.insert(0, TempoSegment(0.0, first.bpm, first.num, first.denom))
        self.segments = segments
        self._times = [s.time_s for s in segments]
        self._qns = [0.0]
        for a, b in zip(segments, segments[1:]):
            self._qns.append(self._qns[-1] + (b.time_s - a.time_s) * a.bpm / 60.0)

    @classmethod
    def constant(cls, bpm: float, num: int = 4, denom: int = 4) -> "TempoMap":
        return cls([TempoSegment(0.0, float(bpm), num, denom)])

    @classmethod
    def from_beats(cls, beat_times_s: list[float], fallback_bpm: float, num: int = 4) -> "TempoMap":
        """A map whose quarter notes fall on detected beats (a beat grid), constant outside them."""
        beats = sorted(t for t in beat_times_s if t >= 0)
        if len(beats) < 2:
            return cls.constant(fallback_bpm, num)
        segments = []
        first_bpm = 60.0 / (beats[1] - beats[0])
        if beats[0] > 0:
            segments.append(TempoSegment(0.0, _clamp_bpm(first_bpm), num))
        for a, b in zip(beats, beats[1:]):
            segments.append(TempoSegment(a, _clamp_bpm(60.0 / (b - a)), num))
        segments.append(TempoSegment(beats[-1], segments[-1].bpm, num))
        return cls(segments)

    def _index(self, time_s: float) -> int:
        return max(0, bisect.bisect_right(self._times, time_s) - 1)

    def at(self, time_s: float) -> TempoSegment:
        return self.segments[self._index(time_s)]

    def time_to_qn(self, time_s: float) -> float:
        i = self._index(time_s)
        return self._qns[i] + (time_s - self._times[i]) * self.segments[i].bpm / 60.0

    def qn_to_time(self, qn: float) -> float:
        i = max(0, bisect.bisect_right(self._qns, qn) - 1)
        return self._times[i] + (qn - self._qns[i]) * 60.0 / self.segments[i].bpm

    def shifted(self, origin_s: float) -> "TempoMap":
        """The map as seen from ``origin_s`` (that time becomes 0), e.g. from an item's start."""
        first = self.at(origin_s)
        segments = [TempoSegment(0.0, first.bpm, first.num, first.denom, first.linear)]
        segments += [
            TempoSegment(s.time_s - origin_s, s.bpm, s.num, s.denom, s.linear)
            for s in self.segments
            if s.time_s > origin_s
        ]
        return TempoMap(segments)

    @classmethod
    def from_dict(cls, data: object) -> "TempoMap":
        """Parse the ``tempo_map`` object of a request (see docs/protocol.md)."""
        if not isinstance(data, dict):
            raise RequestError("tempo_map must be an object.")
        try:
            base = TempoSegment(0.0, float(data["bpm"]), int(data.get("num", 4)), int(data.get("denom", 4)))
            markers = [
                TempoSegment(
                    float(m["time_s"]),
                    float(m["bpm"]),
                    int(m.get("num", base.num)),
                    int(m.get("denom", base.denom)),
                    bool(m.get("linear", False)),
                )
                for m in data.get("markers", [])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"tempo_map is malformed ({exc!r}).") from None
        if markers and markers[0].time_s <= 0:
            return cls(markers)
        return cls([base] + markers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TempoMap) and self.segments == other.segments

    def __repr__(self) -> str:
        return f"TempoMap({self.segments!r})"


def _clamp_bpm(bpm: float) -> float:
    return min(MAX_BPM, max(MIN_BPM, bpm))
