"""The ``reaper.*`` functions of the fake, one ``Api`` object per running script.

Signatures and return types follow the Lua forms in REAPER's ReaScript help (see
shared/docs/reaper-integration.md): integers where the doc says ``integer``, floats for ``*_Value``
getters and positions. Misuse that REAPER rejects raises ``ReaperError``; ``FakeReaper`` records every
raised error as a violation, so a test fails even when a script swallows the error with pcall.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, Callable

from .chunk import ChunkError, apply_item_chunk, item_chunk
from .model import CC, PPQ, Item, Marker, MidiData, Note, Project, Source, Take, TakeMarker, Track

if TYPE_CHECKING:
    from .fake import FakeReaper, ScriptInstance

EXPORTED: dict[str, Callable[..., Any]] = {}


class ReaperError(Exception):
    """A call REAPER would refuse (bad pointer, out-of-range MIDI data, unsupported take shape...)."""


def export(fn: Callable[..., Any]) -> Callable[..., Any]:
    EXPORTED[fn.__name__] = fn
    return fn


ITEM_KEYS = {"D_POSITION", "D_LENGTH", "B_LOOPSRC", "I_CURTAKE", "B_UISEL", "B_MUTE", "IP_ITEMNUMBER"}
TAKE_KEYS = {"D_STARTOFFS", "D_PLAYRATE", "D_PITCH", "B_PPITCH", "IP_TAKENUMBER", "D_VOL"}
CC_STATUS = {0xA0, 0xB0, 0xC0, 0xD0, 0xE0}

# What a call returns when REAPER refuses it (FakeReaper.refuse): tests use it to make REAPER say no.
REFUSED_VALUES: dict[str, Any] = {
    "AddTakeToMediaItem": None,
    "GetItemStateChunk": (False, ""),
    "SetItemStateChunk": False,
    "MIDI_InsertNote": False,
    "MIDI_InsertCC": False,
}


def named_id(section: int, path: str) -> str:
    """A stable "RS<40 hex>" command name for a script, like REAPER's reaper-kb.ini entries."""
    return "RS" + hashlib.sha1(f"{section}:{path}".encode()).hexdigest()


class Api:
    """The functions one script sees as ``reaper.*``. ``script`` is the ScriptInstance calling."""

    def __init__(self, fake: "FakeReaper", script: "ScriptInstance") -> None:
        self.fake = fake
        self.script = script

    # -- argument checks ------------------------------------------------------------------------

    def _proj(self, proj: object) -> Project:
        if proj is None or (isinstance(proj, (int, float)) and not isinstance(proj, bool) and proj == 0):
            return self.fake.current
        if isinstance(proj, Project) and proj.alive and proj in self.fake.projects:
            return proj
        raise ReaperError(f"{proj!r} is not an open ReaProject (pass 0 for the current project)")

    @staticmethod
    def _live(obj: object, cls: type, what: str) -> Any:
        if not isinstance(obj, cls):
            raise ReaperError(f"expected a {what}, got {obj!r}")
        if not obj.alive:
            raise ReaperError(f"the {what} {obj!r} was deleted")
        return obj

    def _item(self, obj: object) -> Item:
        return self._live(obj, Item, "MediaItem")

    def _take(self, obj: object) -> Take:
        return self._live(obj, Take, "MediaItem_Take")

    def _track(self, obj: object) -> Track:
        return self._live(obj, Track, "MediaTrack")

    def _source(self, obj: object) -> Source:
        return self._live(obj, Source, "PCM_source")

    @staticmethod
    def _int(value: object, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReaperError(f"{what} must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ReaperError(f"{what} {value!r} has no integer representation")
            value = int(value)
        return value

    @staticmethod
    def _num(value: object, what: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ReaperError(f"{what} must be a number, got {value!r}")
        return float(value)

    @staticmethod
    def _str(value: object, what: str) -> str:
        if not isinstance(value, str):
            raise ReaperError(f"{what} must be a string, got {value!r}")
        return value

    def _midi(self, take: object, fn: str) -> tuple[Take, MidiData]:
        tk = self._take(take)
        if tk.source is None or tk.source.midi is None:
            raise ReaperError(f"{fn}: the take {tk!r} has no MIDI source")
        return tk, tk.source.midi

    # -- projects ---------------------------------------------------------------------------------

    @export
    def EnumProjects(self, idx, projfn=None):
        idx = self._int(idx, "idx")
        if idx == -1:
            proj = self.fake.current
        elif 0 <= idx < len(self.fake.projects):
            proj = self.fake.projects[idx]
        else:
            return None
        return proj, proj.file

    @export
    def GetProjectPathEx(self, proj, buf=""):
        return self._proj(proj).record_path

    @export
    def GetProjectPath(self, buf=""):
        return self.fake.current.record_path

    @export
    def GetProjectName(self, proj, buf=""):
        return os.path.basename(self._proj(proj).file)

    @export
    def GetProjectStateChangeCount(self, proj):
        return self._proj(proj).state_count

    @export
    def GetResourcePath(self):
        return str(self.fake.resource_dir)

    # -- items, takes, tracks ---------------------------------------------------------------------

    @export
    def CountMediaItems(self, proj):
        return len(self._proj(proj).items())

    @export
    def GetMediaItem(self, proj, idx):
        items = self._proj(proj).items()
        idx = self._int(idx, "itemidx")
        return items[idx] if 0 <= idx < len(items) else None

    @export
    def CountSelectedMediaItems(self, proj):
        return sum(1 for item in self._proj(proj).items() if item.selected)

    @export
    def GetSelectedMediaItem(self, proj, idx):
        items = [item for item in self._proj(proj).items() if item.selected]
        idx = self._int(idx, "selitem")
        return items[idx] if 0 <= idx < len(items) else None

    @export
    def IsMediaItemSelected(self, item):
        return self._item(item).selected

    @export
    def SetMediaItemSelected(self, item, selected):
        it = self._item(item)
        it.selected = bool(selected)
        it.project.touch()

    @export
    def GetMediaItem_Track(self, item):
        return self._item(item).track

    @export
    def CountTracks(self, proj):
        return len(self._proj(proj).tracks)

    @export
    def GetTrack(self, proj, idx):
        tracks = self._proj(proj).tracks
        idx = self._int(idx, "trackidx")
        return tracks[idx] if 0 <= idx < len(tracks) else None

    @export
    def CountSelectedTracks(self, proj):
        return sum(1 for tr in self._proj(proj).tracks if tr.selected)

    @export
    def GetSelectedTrack(self, proj, seltrackidx):
        # In track order, as REAPER's own selection index is (the master track is never counted here).
        selected = [tr for tr in self._proj(proj).tracks if tr.selected]
        idx = self._int(seltrackidx, "seltrackidx")
        return selected[idx] if 0 <= idx < len(selected) else None

    @export
    def GetSetMediaTrackInfo_String(self, track, parmname, value, set_new):
        tr = self._track(track)
        return self._get_set_string("GetSetMediaTrackInfo_String", tr, tr.project, parmname, value, set_new,
                                    {"P_NAME": "name"})

    @export
    def GetMediaTrackInfo_Value(self, track, parmname):
        tr = self._track(track)
        key = self._str(parmname, "parmname")
        if key == "I_FOLDERDEPTH":
            return float(tr.folder_depth)
        if key == "IP_TRACKNUMBER":  # 1-based
            return float(tr.project.tracks.index(tr) + 1)
        self.fake.unknown_key("GetMediaTrackInfo_Value", key)
        return 0.0

    @export
    def SetMediaTrackInfo_Value(self, track, parmname, value):
        tr = self._track(track)
        key = self._str(parmname, "parmname")
        if key != "I_FOLDERDEPTH":
            self.fake.unknown_key("SetMediaTrackInfo_Value", key)
            return False
        tr.folder_depth = self._int(value, "I_FOLDERDEPTH")
        tr.project.touch()
        return True

    def _insert_track(self, proj: Project, idx: object) -> None:
        # The new track has folder depth 0 and no other track's depth changes, so a track inserted
        # inside a folder joins it (verify in REAPER).
        i = min(max(0, self._int(idx, "idx")), len(proj.tracks))
        proj.tracks.insert(i, Track(guid=self.fake.new_guid(), project=proj))
        proj.touch()

    @export
    def InsertTrackAtIndex(self, idx, wantDefaults):
        self._insert_track(self.fake.current, idx)

    @export
    def InsertTrackInProject(self, proj, idx, flags):
        self._insert_track(self._proj(proj), idx)

    @export
    def DeleteTrack(self, track):
        tr = self._track(track)
        tr.project.tracks.remove(tr)
        tr.alive = False
        for item in tr.items:
            item.alive = False
            for take in item.takes:
                take.alive = False
        tr.project.touch()

    @export
    def DeleteTrackMediaItem(self, tr, it):
        track, item = self._track(tr), self._item(it)
        if item.track is not track:
            return False
        self.fake.delete_item(item)
        return True

    @export
    def AddMediaItemToTrack(self, track):
        # An empty item at 0 s with no length and no take (verify in REAPER); scripts set the rest.
        tr = self._track(track)
        return self.fake.add_item(tr, 0.0, 0.0)

    @export
    def CreateNewMIDIItemInProj(self, track, starttime, endtime, qnIn=False):
        tr = self._track(track)
        if qnIn:
            raise ReaperError("CreateNewMIDIItemInProj: the fake takes times in seconds only")
        start, end = self._num(starttime, "starttime"), self._num(endtime, "endtime")
        if end <= start:
            raise ReaperError(f"CreateNewMIDIItemInProj: end {end} is not after start {start}")
        tempo = tr.project.tempo
        length = round((tempo.time_to_qn(end) - tempo.time_to_qn(start)) * PPQ)
        item = self.fake.add_item(tr, start, end - start)
        self.fake.add_take(item, Source("MIDI", midi=MidiData(length_ticks=length)))
        tr.project.touch()
        return item

    @export
    def GetActiveTake(self, item):
        return self._item(item).active_take

    @export
    def CountTakes(self, item):
        return len(self._item(item).takes)

    @export
    def GetTake(self, item, idx):
        takes = self._item(item).takes
        idx = self._int(idx, "takeidx")
        return takes[idx] if 0 <= idx < len(takes) else None

    @export
    def SetActiveTake(self, take):
        tk = self._take(take)
        tk.item.active = tk.item.takes.index(tk)
        tk.item.project.touch()

    @export
    def GetMediaItemTake_Item(self, take):
        return self._take(take).item

    @export
    def GetMediaItemTakeByGUID(self, proj, guid):
        wanted = self._str(guid, "guid").upper()
        for take in self._proj(proj).takes():
            if take.guid == wanted:
                return take
        return None

    @export
    def TakeIsMIDI(self, take):
        return self._take(take).is_midi()

    @export
    def GetTakeNumStretchMarkers(self, take):
        return self._take(take).stretch_markers

    @export
    def AddTakeToMediaItem(self, item):
        # The new take is appended and the active take stays (whether REAPER makes the new take active:
        # verify in REAPER; the scripts set the active take themselves either way).
        it = self._item(item)
        take = Take(guid=self.fake.new_guid(), item=it)
        it.takes.append(take)
        it.project.touch()
        return take

    @export
    def GetMediaItemInfo_Value(self, item, parmname):
        it = self._item(item)
        key = self._str(parmname, "parmname")
        values = {
            "D_POSITION": it.position_s,
            "D_LENGTH": it.length_s,
            "B_LOOPSRC": it.loop,
            "I_CURTAKE": it.active,
            "B_UISEL": it.selected,
            "B_MUTE": it.mute,
            "IP_ITEMNUMBER": it.track.items.index(it) if it.track else -1,
        }
        if key not in values:
            self.fake.unknown_key("GetMediaItemInfo_Value", key)
            return 0.0
        return float(values[key])

    @export
    def SetMediaItemInfo_Value(self, item, parmname, value):
        it = self._item(item)
        key = self._str(parmname, "parmname")
        v = self._num(value, "newvalue")
        if key == "D_POSITION":
            it.position_s = v
        elif key == "D_LENGTH":
            it.length_s = max(0.0, v)
        elif key == "B_LOOPSRC":
            it.loop = v != 0
        elif key == "B_UISEL":
            it.selected = v != 0
        elif key == "B_MUTE":
            it.mute = v != 0
        elif key == "I_CURTAKE":
            it.active = int(v)
        else:
            self.fake.unknown_key("SetMediaItemInfo_Value", key)
            return False
        it.project.touch()
        return True

    @export
    def GetMediaItemTakeInfo_Value(self, take, parmname):
        tk = self._take(take)
        key = self._str(parmname, "parmname")
        values = {
            "D_STARTOFFS": tk.start_offset_s,
            "D_PLAYRATE": tk.playrate,
            "D_PITCH": tk.pitch,
            "B_PPITCH": tk.preserve_pitch,
            "IP_TAKENUMBER": tk.item.takes.index(tk),
            "D_VOL": tk.volume,
        }
        if key not in values:
            self.fake.unknown_key("GetMediaItemTakeInfo_Value", key)
            return 0.0
        return float(values[key])

    @export
    def SetMediaItemTakeInfo_Value(self, take, parmname, value):
        tk = self._take(take)
        key = self._str(parmname, "parmname")
        v = self._num(value, "newvalue")
        if key == "D_STARTOFFS":
            tk.start_offset_s = v
        elif key == "D_PLAYRATE":
            if v <= 0:
                raise ReaperError(f"D_PLAYRATE {v} must be positive")
            tk.playrate = v
        elif key == "D_PITCH":
            tk.pitch = v
        elif key == "B_PPITCH":
            tk.preserve_pitch = v != 0
        elif key == "D_VOL":
            tk.volume = v
        else:
            self.fake.unknown_key("SetMediaItemTakeInfo_Value", key)
            return False
        tk.item.project.touch()
        return True

    def _get_set_string(self, fn, obj, owner_proj, parmname, value, set_new, fields):
        key = self._str(parmname, "parmname")
        if key.startswith("P_EXT:") and len(key) > 6:
            name = key[6:]
            if set_new:
                text = self._str(value, "value")
                if text:
                    obj.ext[name] = text
                else:
                    obj.ext.pop(name, None)
                owner_proj.touch()
                return True, text
            return (True, obj.ext[name]) if name in obj.ext else (False, "")
        if key == "GUID":
            if set_new:
                raise ReaperError(f"{fn}: setting GUID is not supported by the fake")
            return True, obj.guid
        if key in fields:
            attr = fields[key]
            if set_new:
                setattr(obj, attr, self._str(value, "value"))
                owner_proj.touch()
            return True, getattr(obj, attr)
        self.fake.unknown_key(fn, key)
        return False, ""

    @export
    def GetSetMediaItemTakeInfo_String(self, take, parmname, value, set_new):
        tk = self._take(take)
        return self._get_set_string(
            "GetSetMediaItemTakeInfo_String", tk, tk.item.project, parmname, value, set_new, {"P_NAME": "name"}
        )

    @export
    def GetSetMediaItemInfo_String(self, item, parmname, value, set_new):
        it = self._item(item)
        return self._get_set_string(
            "GetSetMediaItemInfo_String", it, it.project, parmname, value, set_new, {"P_NOTES": "notes"}
        )

    @export
    def ValidatePtr2(self, proj, pointer, ctypename):
        kinds = {"MediaItem*": Item, "MediaItem_Take*": Take, "MediaTrack*": Track, "PCM_source*": Source,
                 "ReaProject*": Project}
        cls = kinds.get(self._str(ctypename, "ctypename"))
        if cls is None or not isinstance(pointer, cls) or not pointer.alive:
            return False
        if cls is Project:
            return pointer in self.fake.projects
        p = self._proj(proj) if proj not in (None, 0) else None
        if p is None:
            return True
        owner = {Item: lambda o: o.project, Take: lambda o: o.item.project, Track: lambda o: o.project}.get(cls)
        return owner is None or owner(pointer) is p

    @export
    def ValidatePtr(self, pointer, ctypename):
        return self.ValidatePtr2(None, pointer, ctypename)

    # -- sources ----------------------------------------------------------------------------------

    @export
    def GetMediaItemTake_Source(self, take):
        return self._take(take).source

    @export
    def GetMediaSourceParent(self, src):
        return self._source(src).parent

    @export
    def GetMediaSourceFileName(self, src, buf=""):
        s = self._source(src)
        return "" if s.type in ("MIDI", "SECTION") else s.filename

    @export
    def GetMediaSourceType(self, src, buf=""):
        return self._source(src).type

    @export
    def GetMediaSourceLength(self, src):
        return float(self._source(src).length_s), False

    @export
    def PCM_Source_CreateFromFile(self, filename):
        # A missing or unreadable file still gives a source (REAPER shows it offline: verify in REAPER).
        path = self._str(filename, "filename")
        if path.lower().endswith((".mid", ".midi")):
            raise ReaperError("PCM_Source_CreateFromFile: the fake does not import MIDI files")
        try:
            import soundfile

            length = float(soundfile.info(path).duration)
        except Exception:
            length = 0.0
        return self.fake.audio_source(path, length_s=length, size_bytes=None)

    @export
    def PCM_Source_CreateFromType(self, sourcetype):
        kind = self._str(sourcetype, "sourcetype")
        return Source(kind, midi=MidiData(has_data=False) if kind == "MIDI" else None)

    @export
    def PCM_Source_Destroy(self, src):
        s = self._source(src)
        if s.take is not None:
            raise ReaperError(f"PCM_Source_Destroy: {s!r} is still the source of {s.take!r}")
        s.alive = False

    @export
    def SetMediaItemTake_Source(self, take, src):
        tk = self._take(take)
        s = self._source(src)
        if s.take is not None and s.take is not tk:
            s = s.duplicate()  # "If source already exists in any project, it will be duplicated"
        if tk.source is not None and tk.source is not s:
            tk.source.take = None  # the old source is not destroyed; the caller owns it now
        s.take = tk
        tk.source = s
        tk.item.project.touch()
        return True

    # -- item state chunks ------------------------------------------------------------------------

    @export
    def GetItemStateChunk(self, item, str_buf="", isundo=False):
        return True, item_chunk(self._item(item))

    @export
    def SetItemStateChunk(self, item, chunk, isundo=False):
        it = self._item(item)
        try:
            apply_item_chunk(it, self._str(chunk, "str"), self.fake.new_guid)
        except ChunkError as exc:
            raise ReaperError(f"SetItemStateChunk: {exc}") from None
        it.project.touch()
        return True

    # -- MIDI -------------------------------------------------------------------------------------

    def _has_data(self, take: Take, midi: MidiData, fn: str) -> bool:
        if midi.has_data:
            return True
        self.fake.violation(
            f"{fn}: {take!r} has a MIDI source without data (a fresh PCM_Source_CreateFromType('MIDI')); "
            "REAPER fails this silently until the source gets HASDATA through the item state chunk"
        )
        return False

    def _check_mappable(self, take: Take, fn: str) -> None:
        if take.start_offset_s != 0.0 or take.playrate != 1.0:
            raise ReaperError(
                f"{fn}: the fake maps PPQ only for takes with start offset 0 and playrate 1 "
                f"(this take has {take.start_offset_s} s and {take.playrate})"
            )

    @export
    def MIDI_GetPPQPosFromProjTime(self, take, projtime):
        tk, midi = self._midi(take, "MIDI_GetPPQPosFromProjTime")
        if not midi.has_data:
            return -1.0
        self._check_mappable(tk, "MIDI_GetPPQPosFromProjTime")
        tempo = tk.item.project.tempo
        t = self._num(projtime, "projtime")
        return (tempo.time_to_qn(t) - tempo.time_to_qn(tk.item.position_s)) * midi.ppq

    @export
    def MIDI_GetProjTimeFromPPQPos(self, take, ppqpos):
        tk, midi = self._midi(take, "MIDI_GetProjTimeFromPPQPos")
        if not midi.has_data:
            return -1.0
        self._check_mappable(tk, "MIDI_GetProjTimeFromPPQPos")
        tempo = tk.item.project.tempo
        return tempo.qn_to_time(tempo.time_to_qn(tk.item.position_s) + self._num(ppqpos, "ppqpos") / midi.ppq)

    def _checked_event(self, fn: str, chan: object, values: dict[str, object], lo: int = 0) -> tuple[int, ...]:
        c = self._int(chan, "chan")
        if not 0 <= c <= 15:
            raise ReaperError(f"{fn}: chan {c} is outside 0-15")
        out = [c]
        for name, value in values.items():
            v = self._int(value, name)
            low = lo if name == "vel" else 0
            if not low <= v <= 127:
                raise ReaperError(f"{fn}: {name} {v} is outside {low}-127")
            out.append(v)
        return tuple(out)

    @export
    def MIDI_InsertNote(self, take, selected, muted, startppqpos, endppqpos, chan, pitch, vel, noSort=False):
        tk, midi = self._midi(take, "MIDI_InsertNote")
        if not self._has_data(tk, midi, "MIDI_InsertNote"):
            return False
        start = self._num(startppqpos, "startppqpos")
        end = self._num(endppqpos, "endppqpos")
        if end < start:
            raise ReaperError(f"MIDI_InsertNote: endppqpos {end} is before startppqpos {start}")
        c, p, v = self._checked_event("MIDI_InsertNote", chan, {"pitch": pitch, "vel": vel}, lo=1)
        midi.notes.append(Note(round(start), round(end), c, p, v, bool(selected), bool(muted)))
        if noSort:
            midi.unsorted = True
        else:
            midi.sort()
        tk.item.project.touch()
        return True

    @export
    def MIDI_InsertCC(self, take, selected, muted, ppqpos, chanmsg, chan, msg2, msg3):
        tk, midi = self._midi(take, "MIDI_InsertCC")
        if not self._has_data(tk, midi, "MIDI_InsertCC"):
            return False
        status = self._int(chanmsg, "chanmsg")
        if status not in CC_STATUS:
            raise ReaperError(f"MIDI_InsertCC: chanmsg 0x{status:X} is not a CC-lane message type")
        c, m2, m3 = self._checked_event("MIDI_InsertCC", chan, {"msg2": msg2, "msg3": msg3})
        midi.ccs.append(CC(round(self._num(ppqpos, "ppqpos")), status, c, m2, m3, bool(selected), bool(muted)))
        if not midi.unsorted:
            midi.sort()
        tk.item.project.touch()
        return True

    @export
    def MIDI_Sort(self, take):
        self._midi(take, "MIDI_Sort")[1].sort()

    @export
    def MIDI_CountEvts(self, take):
        midi = self._midi(take, "MIDI_CountEvts")[1]
        return len(midi.notes) + len(midi.ccs), len(midi.notes), len(midi.ccs), 0

    @export
    def MIDI_GetNote(self, take, noteidx):
        midi = self._midi(take, "MIDI_GetNote")[1]
        i = self._int(noteidx, "noteidx")
        if not 0 <= i < len(midi.notes):
            return False, False, False, -1.0, -1.0, 0, 0, 0
        n = midi.notes[i]
        return True, n.selected, n.muted, float(n.start_ppq), float(n.end_ppq), n.chan, n.pitch, n.vel

    @export
    def MIDI_GetCC(self, take, ccidx):
        midi = self._midi(take, "MIDI_GetCC")[1]
        i = self._int(ccidx, "ccidx")
        if not 0 <= i < len(midi.ccs):
            return False, False, False, -1.0, 0, 0, 0, 0
        c = midi.ccs[i]
        return True, c.selected, c.muted, float(c.ppq), c.chanmsg, c.chan, c.msg2, c.msg3

    # -- tempo map, time selection, markers -------------------------------------------------------

    @export
    def TimeMap2_timeToQN(self, proj, tpos):
        return self._proj(proj).tempo.time_to_qn(self._num(tpos, "tpos"))

    @export
    def TimeMap2_QNToTime(self, proj, qn):
        return self._proj(proj).tempo.qn_to_time(self._num(qn, "qn"))

    @export
    def TimeMap_timeToQN(self, tpos):
        return self.TimeMap2_timeToQN(None, tpos)

    @export
    def TimeMap_QNToTime(self, qn):
        return self.TimeMap2_QNToTime(None, qn)

    @export
    def CountTempoTimeSigMarkers(self, proj):
        return len(self._proj(proj).tempo.markers)

    @export
    def GetTempoTimeSigMarker(self, proj, ptidx):
        tempo = self._proj(proj).tempo
        i = self._int(ptidx, "ptidx")
        if not 0 <= i < len(tempo.markers):
            return False, -1.0, -1, -1.0, 0.0, 0, 0, False
        m = tempo.markers[i]
        measure, beat = tempo.measure_and_beat(m.time_s)
        return True, m.time_s, measure, beat, m.bpm, m.num, m.denom, m.linear

    @export
    def TimeMap_GetTimeSigAtTime(self, proj, time):
        tempo = self._proj(proj).tempo
        t = self._num(time, "time")
        num, denom = tempo.timesig_at(t)
        return num, denom, tempo.bpm_at(t)

    @export
    def TimeMap2_GetDividedBpmAtTime(self, proj, time):
        tempo = self._proj(proj).tempo
        t = self._num(time, "time")
        return tempo.bpm_at(t) * tempo.timesig_at(t)[1] / 4.0

    @export
    def GetSet_LoopTimeRange2(self, proj, isSet, isLoop, start, end, allowautoseek=False):
        p = self._proj(proj)
        attr = "loop_range" if isLoop else "time_selection"
        if isSet:
            s, e = self._num(start, "start"), self._num(end, "end")
            setattr(p, attr, (min(s, e), max(s, e)))
            p.touch()
        s, e = getattr(p, attr)
        return float(s), float(e)

    @export
    def GetSet_LoopTimeRange(self, isSet, isLoop, start, end, allowautoseek=False):
        return self.GetSet_LoopTimeRange2(None, isSet, isLoop, start, end, allowautoseek)

    @export
    def CountProjectMarkers(self, proj):
        markers = self._proj(proj).markers
        regions = sum(1 for m in markers if m.is_region)
        return len(markers), len(markers) - regions, regions

    @export
    def EnumProjectMarkers3(self, proj, idx):
        markers = sorted(self._proj(proj).markers, key=lambda m: (m.pos_s, m.is_region))
        i = self._int(idx, "idx")
        if not 0 <= i < len(markers):
            return 0, False, 0.0, 0.0, "", 0, 0
        m = markers[i]
        return i + 1, m.is_region, m.pos_s, m.end_s, m.name, m.index, m.color

    @export
    def AddProjectMarker2(self, proj, isrgn, pos, rgnend, name, wantidx, color):
        # "Returns the index of the created marker/region, or -1 on failure. Supply wantidx>=0 if you
        # want a particular index number, but you'll get a different index number a region and wantidx
        # is already in use." Markers and regions are numbered apart.
        p = self._proj(proj)
        is_region, pos_s, end_s = bool(isrgn), self._num(pos, "pos"), self._num(rgnend, "rgnend")
        want = self._int(wantidx, "wantidx")
        used = {m.index for m in p.markers if m.is_region == is_region}
        index = want if want >= 0 and want not in used else max(used | {0}) + 1
        p.markers.append(Marker(index, pos_s, end_s if is_region else 0.0, self._str(name, "name"), is_region,
                                self._int(color, "color")))  # fmt: skip
        p.touch()
        return index

    @export
    def GetNumTakeMarkers(self, take):
        return len(self._take(take).markers)

    @export
    def GetTakeMarker(self, take, idx):
        # "Returns the position in media item source time, or -1 if the take marker does not exist."
        markers = self._take(take).markers
        i = self._int(idx, "idx")
        if not 0 <= i < len(markers):
            return -1.0, "", 0
        m = markers[i]
        return m.srcpos_s, m.name, m.color

    @export
    def SetTakeMarker(self, take, idx, nameIn, srcposInOptional=None, colorInOptional=None):
        # "If idx<0, a take marker will be added, otherwise an existing take marker will be updated.
        # Returns the index of the new or updated take marker (which may change if another marker is
        # modified)." A new marker needs a position.
        tk = self._take(take)
        i = self._int(idx, "idx")
        name = self._str(nameIn, "nameIn")
        if i < 0:
            if srcposInOptional is None:
                raise ReaperError("SetTakeMarker: a new take marker needs srcposIn")
            marker = TakeMarker(self._num(srcposInOptional, "srcposIn"), name,
                                0 if colorInOptional is None else self._int(colorInOptional, "colorIn"))  # fmt: skip
            tk.markers.append(marker)
        elif i < len(tk.markers):
            marker = tk.markers[i]
            marker.name = name
            if srcposInOptional is not None:
                marker.srcpos_s = self._num(srcposInOptional, "srcposIn")
            if colorInOptional is not None:
                marker.color = self._int(colorInOptional, "colorIn")
        else:
            return -1
        tk.markers.sort(key=lambda m: m.srcpos_s)
        tk.item.project.touch()
        return tk.markers.index(marker)

    # -- undo, UI ---------------------------------------------------------------------------------

    @export
    def Undo_BeginBlock(self):
        self.fake.undo_begin(self.script, None)

    @export
    def Undo_BeginBlock2(self, proj):
        self.fake.undo_begin(self.script, self._proj(proj))

    @export
    def Undo_EndBlock(self, descchange, extraflags):
        self.fake.undo_end(self.script, None, self._str(descchange, "descchange"), self._int(extraflags, "flags"))

    @export
    def Undo_EndBlock2(self, proj, descchange, extraflags):
        self.fake.undo_end(
            self.script, self._proj(proj), self._str(descchange, "descchange"), self._int(extraflags, "flags")
        )

    @export
    def PreventUIRefresh(self, prevent_count):
        self.fake.ui_refresh += self._int(prevent_count, "prevent_count")
        if self.fake.ui_refresh < 0:
            self.fake.ui_refresh = 0
            raise ReaperError("PreventUIRefresh: more -1 than +1 calls")

    @export
    def UpdateArrange(self):
        self.fake.ui_updates.append(("arrange", None))

    @export
    def UpdateItemInProject(self, item):
        self.fake.ui_updates.append(("item", self._item(item)))

    # -- ExtState ---------------------------------------------------------------------------------

    @export
    def SetExtState(self, section, key, value, persist):
        s, k, v = self._str(section, "section"), self._str(key, "key"), self._str(value, "value")
        if persist and ("\n" in v or "\r" in v):
            raise ReaperError("SetExtState: persistent values must not contain newlines")
        self.fake.ext_state[(s, k)] = v
        self.fake.ext_state_persist[(s, k)] = bool(persist)

    @export
    def GetExtState(self, section, key):
        return self.fake.ext_state.get((self._str(section, "section"), self._str(key, "key")), "")

    @export
    def HasExtState(self, section, key):
        return (self._str(section, "section"), self._str(key, "key")) in self.fake.ext_state

    @export
    def DeleteExtState(self, section, key, persist):
        self.fake.ext_state.pop((self._str(section, "section"), self._str(key, "key")), None)

    @export
    def SetProjExtState(self, proj, extname, key, value):
        p = self._proj(proj)
        ext, k = self._str(extname, "extname"), key
        section = p.ext_state.setdefault(ext, {})
        if k is None or k == "":
            section.clear()
        elif value is None or value == "":
            section.pop(self._str(k, "key"), None)
        else:
            section[self._str(k, "key")] = self._str(value, "value")
        p.touch()
        return sum(len(a) + len(b) for a, b in section.items())

    @export
    def GetProjExtState(self, proj, extname, key):
        value = self._proj(proj).ext_state.get(self._str(extname, "extname"), {}).get(self._str(key, "key"), "")
        return len(value), value

    @export
    def EnumProjExtState(self, proj, extname, idx):
        section = list(self._proj(proj).ext_state.get(self._str(extname, "extname"), {}).items())
        i = self._int(idx, "idx")
        if not 0 <= i < len(section):
            return False, "", ""
        return True, section[i][0], section[i][1]

    # -- actions ----------------------------------------------------------------------------------

    @export
    def AddRemoveReaScript(self, add, sectionID, scriptfn, commit):
        section = self._int(sectionID, "sectionID")
        path = self._str(scriptfn, "scriptfn")
        if add:
            if not os.path.isfile(path):
                return 0
            return self.fake.register_script(path, section).cmd_id
        return 1 if self.fake.unregister_script(path, section) else 0

    @export
    def NamedCommandLookup(self, command_name):
        name = self._str(command_name, "command_name")
        action = self.fake.actions_by_name.get(name[1:]) if name.startswith("_") else None
        return action.cmd_id if action else 0

    @export
    def ReverseNamedCommandLookup(self, command_id):
        action = self.fake.actions.get(self._int(command_id, "command_id"))
        return action.name if action else None

    @export
    def Main_OnCommand(self, command, flag):
        self.fake.on_command(self._int(command, "command"), self.script)

    @export
    def Main_OnCommandEx(self, command, flag, proj):
        self._proj(proj)
        self.fake.on_command(self._int(command, "command"), self.script)

    @export
    def GetToggleCommandStateEx(self, section_id, command_id):
        return self.fake.toggle_states.get((self._int(section_id, "section_id"), self._int(command_id, "command_id")), -1)

    @export
    def GetToggleCommandState(self, command_id):
        return self.GetToggleCommandStateEx(0, command_id)

    @export
    def SetToggleCommandState(self, section_id, command_id, state):
        key = (self._int(section_id, "section_id"), self._int(command_id, "command_id"))
        if key[1] <= 0:
            return False
        self.fake.toggle_states[key] = self._int(state, "state")
        return True

    @export
    def RefreshToolbar2(self, section_id, command_id):
        self.fake.toolbar_refreshes.append((self._int(section_id, "section_id"), self._int(command_id, "command_id")))

    @export
    def get_action_context(self):
        s = self.script
        return False, s.path, s.section, s.cmd_id, -1, -1, -1

    @export
    def set_action_options(self, flag):
        flags = self._int(flag, "flag")
        s = self.script
        s.options |= flags & 3
        if s.cmd_id > 0 and flags & 4:
            self.fake.toggle_states[(s.section, s.cmd_id)] = 1
        if s.cmd_id > 0 and flags & 8:
            self.fake.toggle_states[(s.section, s.cmd_id)] = 0

    # -- deferred execution, clock ----------------------------------------------------------------

    @export
    def defer(self, fn):
        self.script.defer(fn)
        return True

    @export
    def runloop(self, fn):
        return self.defer(fn)

    @export
    def atexit(self, fn):
        self.script.at_exit.append(fn)

    @export
    def time_precise(self):
        return float(self.fake.clock)

    # -- messages ---------------------------------------------------------------------------------

    @export
    def ShowMessageBox(self, msg, title, type):
        return self.fake.message_box(self.script, self._str(msg, "msg"), self._str(title, "title"), self._int(type, "type"))

    @export
    def MB(self, msg, title, type):
        return self.ShowMessageBox(msg, title, type)

    @export
    def ShowConsoleMsg(self, msg):
        text = self._str(msg, "msg")
        if text.startswith("!SHOW:"):
            text = text[6:]
        else:
            self.fake.console_opened += 1
        self.fake.console += text

    @export
    def ClearConsole(self):
        self.fake.console = ""

    # -- files, processes, environment ------------------------------------------------------------

    @export
    def EnumerateFiles(self, path, fileindex):
        folder = self._str(path, "path")
        i = self._int(fileindex, "fileindex")
        if i < 0:
            self.fake.enum_cache.pop(folder, None)
            return None
        names = self.fake.enum_cache.get(folder)
        if names is None:
            try:
                names = [e.name for e in os.scandir(folder) if e.is_file()]
            except OSError:
                names = []
            self.fake.enum_cache[folder] = names
        return names[i] if i < len(names) else None

    @export
    def file_exists(self, path):
        return os.path.isfile(self._str(path, "path"))

    @export
    def RecursiveCreateDirectory(self, path, ignored=0):
        try:
            os.makedirs(self._str(path, "path"), exist_ok=True)
        except OSError:
            return 0
        return 1

    @export
    def ExecProcess(self, cmdline, timeoutmsec):
        self.fake.exec_log.append((self._str(cmdline, "cmdline"), self._int(timeoutmsec, "timeoutmsec")))
        return self.fake.exec_output

    @export
    def APIExists(self, function_name):
        return self._str(function_name, "function_name") in self.fake.api_names

    @export
    def GetAppVersion(self):
        return self.fake.app_version

    @export
    def GetOS(self):
        return self.fake.os_name

    @export
    def OscLocalMessageToHost(self, message, valueIn=None):
        self.fake.osc_log.append((self._str(message, "message"), valueIn))

    @export
    def StuffMIDIMessage(self, mode, msg1, msg2, msg3):
        self.fake.midi_log.append(tuple(self._int(v, "msg") for v in (mode, msg1, msg2, msg3)))


def ppq_to_time(take: Take, ppq: float) -> float:
    """Project seconds of a tick position in a MIDI take (same model as MIDI_GetProjTimeFromPPQPos)."""
    tempo = take.item.project.tempo
    midi = take.source.midi
    return tempo.qn_to_time(tempo.time_to_qn(take.item.position_s) + ppq / midi.ppq)

