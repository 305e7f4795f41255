"""The data a fake REAPER holds: projects, tracks, items, takes, sources, MIDI events, the tempo map.

Plain Python objects; the ``reaper`` functions in ``api.py`` read and change them, and tests build them
through ``FakeReaper`` (``fake.py``). Objects handed to Lua are these instances themselves (lupa wraps
each in one userdata, so pointer equality holds in Lua). A deleted object has ``alive = False``.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

PPQ = 960  # ticks per quarter note of every MIDI source the fake creates (REAPER's default)


class GuidFactory:
    """REAPER-style GUID strings ("{8-4-4-4-12}", upper-case hex), reproducible per fake."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def __call__(self) -> str:
        h = f"{self._rng.getrandbits(128):032X}"
        return "{" + f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" + "}"


@dataclass(eq=False)
class Note:
    start_ppq: int
    end_ppq: int
    chan: int
    pitch: int
    vel: int
    selected: bool = False
    muted: bool = False


@dataclass(eq=False)
class CC:
    ppq: int
    chanmsg: int
    chan: int
    msg2: int
    msg3: int
    selected: bool = False
    muted: bool = False


@dataclass(eq=False)
class MidiData:
    ppq: int = PPQ
    notes: list[Note] = field(default_factory=list)
    ccs: list[CC] = field(default_factory=list)
    unsorted: bool = False  # events inserted with noSort and not yet MIDI_Sort-ed
    # False for a fresh PCM_Source_CreateFromType("MIDI"): REAPER gives such a take no PPQ map
    # (MIDI_GetPPQPosFromProjTime returns -1, MIDI_Insert* fail) until its state chunk has HASDATA 1.
    has_data: bool = True
    length_ticks: int | None = None  # where the source ends (its final all-notes-off), if known

    def copy(self) -> "MidiData":
        return MidiData(
            self.ppq,
            [Note(**vars(n)) for n in self.notes],
            [CC(**vars(c)) for c in self.ccs],
            self.unsorted,
            self.has_data,
            self.length_ticks,
        )

    def sort(self) -> None:
        self.notes.sort(key=lambda n: (n.start_ppq, n.pitch, n.chan))
        self.ccs.sort(key=lambda c: (c.ppq, c.chan, c.msg2))
        self.unsorted = False


@dataclass(eq=False)
class Source:
    """A PCM_source: WAVE/MP3/FLAC/... with a file, MIDI (in-project events) or SECTION of a parent."""

    type: str
    filename: str = ""
    length_s: float = 0.0
    parent: "Source | None" = None
    midi: MidiData | None = None
    take: "Take | None" = None  # the take this source is attached to
    alive: bool = True  # False after PCM_Source_Destroy
    reversed: bool = False  # a SECTION that plays its parent backwards (Item > Reverse: MODE 2)

    def root(self) -> "Source":
        src = self
        while src.parent is not None:
            src = src.parent
        return src

    def duplicate(self) -> "Source":
        return Source(self.type, self.filename, self.length_s, self.parent, self.midi.copy() if self.midi else None,
                      reversed=self.reversed)

    def __repr__(self) -> str:
        return f"<PCM_source {self.type} {self.filename!r}>"


@dataclass(eq=False)
class Take:
    guid: str
    name: str = ""
    source: Source | None = None
    start_offset_s: float = 0.0
    playrate: float = 1.0
    pitch: float = 0.0  # D_PITCH, semitones
    preserve_pitch: bool = True  # B_PPITCH
    stretch_markers: int = 0
    volume: float = 1.0
    ext: dict[str, str] = field(default_factory=dict)  # P_EXT:<key>
    item: "Item | None" = None
    alive: bool = True
    markers: list["TakeMarker"] = field(default_factory=list)  # kept in source-position order, as REAPER does

    def is_midi(self) -> bool:
        return self.source is not None and self.source.root().type == "MIDI"

    def __repr__(self) -> str:
        return f"<MediaItem_Take {self.name!r} {self.guid}>"


@dataclass(eq=False)
class Item:
    guid: str
    position_s: float = 0.0
    length_s: float = 1.0
    loop: bool = False
    selected: bool = False
    mute: bool = False
    takes: list[Take] = field(default_factory=list)
    active: int = 0  # I_CURTAKE
    notes: str = ""  # P_NOTES
    ext: dict[str, str] = field(default_factory=dict)
    track: "Track | None" = None
    alive: bool = True

    @property
    def active_take(self) -> Take | None:
        return self.takes[self.active] if 0 <= self.active < len(self.takes) else None

    @property
    def project(self) -> "Project":
        assert self.track is not None and self.track.project is not None
        return self.track.project

    def __repr__(self) -> str:
        return f"<MediaItem {self.guid} at {self.position_s}>"


@dataclass(eq=False)
class Track:
    name: str = ""
    guid: str = ""
    items: list[Item] = field(default_factory=list)
    project: "Project | None" = None
    alive: bool = True
    folder_depth: int = 0  # I_FOLDERDEPTH: 1 opens a folder, -n closes n folders after this track
    selected: bool = False  # I_SELECTED
    ext: dict[str, str] = field(default_factory=dict)  # P_EXT:<key>

    def __repr__(self) -> str:
        return f"<MediaTrack {self.name!r}>"


@dataclass
class TempoMarker:
    time_s: float
    bpm: float
    num: int = 0  # 0: the marker changes the tempo only, as REAPER reports it
    denom: int = 0
    linear: bool = False


class TempoMap:
    """Base tempo/time signature plus markers; tempo is constant between markers (square markers).

    A ``linear`` flag is stored and reported but the fake integrates every segment as constant.
    """

    def __init__(self, bpm: float = 120.0, num: int = 4, denom: int = 4) -> None:
        self.bpm, self.num, self.denom = float(bpm), int(num), int(denom)
        self.markers: list[TempoMarker] = []

    def add_marker(self, time_s: float, bpm: float, num: int = 0, denom: int = 0, linear: bool = False) -> None:
        if time_s < 0 or bpm <= 0:
            raise ValueError(f"tempo marker at {time_s} s with {bpm} BPM is not valid")
        self.markers.append(TempoMarker(float(time_s), float(bpm), int(num), int(denom), bool(linear)))
        self.markers.sort(key=lambda m: m.time_s)

    # Segments: (time_s, qn at time_s, bpm). The first starts at 0 with the base tempo unless a marker is at 0.
    def _segments(self) -> list[tuple[float, float, float]]:
        segs: list[tuple[float, float, float]] = [(0.0, 0.0, self.bpm)]
        for m in self.markers:
            t0, q0, bpm0 = segs[-1]
            if m.time_s <= t0:
                segs[-1] = (t0, q0, m.bpm)
            else:
                segs.append((m.time_s, q0 + (m.time_s - t0) * bpm0 / 60.0, m.bpm))
        return segs

    def time_to_qn(self, time_s: float) -> float:
        segs = self._segments()
        i = max(0, bisect.bisect_right([s[0] for s in segs], time_s) - 1)
        t0, q0, bpm = segs[i]
        return q0 + (time_s - t0) * bpm / 60.0

    def qn_to_time(self, qn: float) -> float:
        segs = self._segments()
        i = max(0, bisect.bisect_right([s[1] for s in segs], qn) - 1)
        t0, q0, bpm = segs[i]
        return t0 + (qn - q0) * 60.0 / bpm

    def bpm_at(self, time_s: float) -> float:
        segs = self._segments()
        return segs[max(0, bisect.bisect_right([s[0] for s in segs], time_s) - 1)][2]

    def timesig_at(self, time_s: float) -> tuple[int, int]:
        num, denom = self.num, self.denom
        for m in self.markers:
            if m.time_s <= time_s and m.num > 0:
                num, denom = m.num, m.denom
        return num, denom

    def measure_and_beat(self, time_s: float) -> tuple[int, float]:
        """Measure index (from 0) and beat within it, walking the time signature changes in QN."""
        qn = self.time_to_qn(time_s)
        measure, region_qn = 0, 0.0
        num, denom = self.num, self.denom
        for m in self.markers:
            if m.num <= 0 or m.time_s > time_s:
                continue
            m_qn = self.time_to_qn(m.time_s)
            measure += math.floor((m_qn - region_qn) / (num * 4.0 / denom) + 1e-9)
            region_qn, num, denom = m_qn, m.num, m.denom
        measure_qn = num * 4.0 / denom
        whole = math.floor((qn - region_qn) / measure_qn + 1e-9)
        beat = (qn - region_qn - whole * measure_qn) * denom / 4.0
        return measure + whole, beat


@dataclass
class TakeMarker:
    """A take marker: a name at a position in the take's source, in seconds."""

    srcpos_s: float
    name: str = ""
    color: int = 0


@dataclass
class Marker:
    """A project marker or region."""

    index: int
    pos_s: float
    end_s: float = 0.0
    name: str = ""
    is_region: bool = False
    color: int = 0


@dataclass(eq=False)
class Project:
    file: str = ""  # the .rpp path; "" for an unsaved project
    record_path: str = ""  # absolute recording (media) path
    tracks: list[Track] = field(default_factory=list)
    tempo: TempoMap = field(default_factory=TempoMap)
    markers: list[Marker] = field(default_factory=list)
    time_selection: tuple[float, float] = (0.0, 0.0)
    loop_range: tuple[float, float] = (0.0, 0.0)
    ext_state: dict[str, dict[str, str]] = field(default_factory=dict)  # ProjExtState[ext][key]
    dirty: bool = False
    state_count: int = 0
    alive: bool = True

    def items(self) -> list[Item]:
        return [item for track in self.tracks for item in sorted(track.items, key=lambda it: it.position_s)
                if item.alive]

    def takes(self) -> list[Take]:
        return [take for item in self.items() for take in item.takes if take.alive]

    def touch(self) -> None:
        self.dirty = True
        self.state_count += 1

    def __repr__(self) -> str:
        return f"<ReaProject {self.file or '(unsaved)'} at 0x{id(self):x}>"
