"""Protocol v1: requests and results exchanged through the spool (see docs/protocol.md).

Parsing validates everything a hostile or broken client could send and raises ``RequestError`` with a
sentence that names the field; nothing here touches the file system except the path checks.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from reascribe import PROTOCOL_VERSION, __version__
from reascribe.errors import RequestError
from reascribe.generate_request import GenerateContext, parse_context
from reascribe.models.drums.classes import CLASSES as DRUM_CLASSES
from reascribe.separation import BACKENDS, KIND_STEMS
from reascribe.tempo import TempoMap

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KINDS = ("piano", "drums", "chords")
DEFAULT_TTL_S = 86400.0
MAX_ITEMS = 256
MAX_REQUEST_BYTES = 4 * 1024 * 1024


# An option's check: (name, value) -> the value to use; raises RequestError with a sentence naming it.
OptionCheck = Callable[[str, object], Any]


def _shown(value: object) -> str:
    return reprlib.repr(value)  # a hostile request may send a huge value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise RequestError(f"Option {name!r} must be a bool, not {_shown(value)}.")
    return value


def _seconds(low: float, high: float) -> OptionCheck:
    def check(name: str, value: object) -> float:
        # NaN fails the range comparison, infinities are outside it
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise RequestError(
                f"Option {name!r} must be a number of seconds from {low} to {high}, not {_shown(value)}."
            )
        return float(value)

    return check


def _whole(low: int, high: int) -> OptionCheck:
    def check(name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestError(f"Option {name!r} must be a whole number from {low} to {high}, not {_shown(value)}.")
        return value

    return check


_midi_note = _whole(0, 127)


def _choice(*choices: str) -> OptionCheck:
    def check(name: str, value: object) -> str:
        if value not in choices:
            raise RequestError(f"Option {name!r} must be one of {', '.join(choices)}, not {_shown(value)}.")
        return value  # type: ignore[return-value]

    return check


def _drum_notes(name: str, value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise RequestError(f"Option {name!r} must be an object mapping drum names to MIDI notes, not {_shown(value)}.")
    for drum, note in value.items():
        if drum not in DRUM_CLASSES:
            raise RequestError(
                f"Option {name!r} names the unknown drum {_shown(drum)}; known drums: {', '.join(DRUM_CLASSES)}."
            )
        _midi_note(f"{name}.{drum}", note)
    return dict(value)


OPTIONS: dict[str, dict[str, OptionCheck]] = {
    "piano": {"pedal_extend": _flag, "soft_pedal": _flag},
    "drums": {"note_length": _seconds(0.01, 2.0), "note_map": _drum_notes, "channel": _whole(1, 16)},
    "chords": {"channel": _whole(1, 16), "markers": _choice("take", "regions", "none")},
}

# Jobs on stems: "separate" writes them into the project, "mix" separates and transcribes each kind's stem.
SEPARATE, MIX = "separate", "mix"
# "generate" fills the time selection of a track from the notes around it (the request carries notes).
GENERATE = "generate"
REQUEST_KINDS = (*KINDS, SEPARATE, MIX, GENERATE)


def _real(low: float, high: float) -> OptionCheck:
    def check(name: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise RequestError(f"Option {name!r} must be a number from {low} to {high}, not {_shown(value)}.")
        return float(value)

    return check


OPTIONS[GENERATE] = {"variations": _whole(1, 8), "temperature": _real(0.1, 2.0), "density": _real(0.25, 4.0),
                     "part": _choice("auto", "drums", "melodic"), "seed": _whole(0, 2**31 - 1)}


def _backend(name: str, value: object) -> str:
    if value not in BACKENDS:
        raise RequestError(f"Option {name!r} must be one of {', '.join(BACKENDS)}, not {_shown(value)}.")
    return value  # type: ignore[return-value]


def mix_kinds() -> tuple[str, ...]:
    """The kinds a mix can be transcribed into: those with a stem to hear (separation.KIND_STEMS)."""
    return tuple(kind for kind in KINDS if kind in KIND_STEMS)


def _mix_kinds(name: str, value: object) -> list[str]:
    known = mix_kinds()
    if not isinstance(value, list) or not value or len(set(map(repr, value))) != len(value) or any(
        kind not in known for kind in value
    ):
        raise RequestError(
            f"Option {name!r} must be a list of different kinds from {', '.join(known)}, not {_shown(value)}."
        )
    return list(value)


def _kind_options(kind: str) -> OptionCheck:
    def check(name: str, value: object) -> dict[str, Any]:
        return validate_options(kind, value)

    return check


OPTIONS[SEPARATE] = {"backend": _backend}
OPTIONS[MIX] = {"backend": _backend, "kinds": _mix_kinds, **{kind: _kind_options(kind) for kind in mix_kinds()}}


class Status:
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Project:
    file: str
    dir: Path
    media_dir: Path

    def roots(self) -> list[Path]:
        return [self.dir, self.media_dir]


@dataclass(frozen=True)
class Item:
    item_guid: str
    take_guid: str
    name: str
    track: str
    source_path: Path
    source_size_bytes: int | None
    position_s: float
    length_s: float
    start_offset_s: float
    playrate: float
    loop: bool
    stretch_markers: int

    @property
    def section_start_s(self) -> float:
        """First source second the item plays."""
        return self.start_offset_s

    @property
    def section_end_s(self) -> float:
        return self.start_offset_s + self.length_s * self.playrate


@dataclass(frozen=True)
class Request:
    id: str
    kind: str
    created_at: float
    ttl_s: float
    client: str
    project: Project
    tempo_map: TempoMap
    time_selection: tuple[float, float] | None
    options: dict[str, Any]
    items: list[Item]
    context: GenerateContext | None = None  # generate: the notes to fill between

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) > self.created_at + self.ttl_s


@dataclass
class ItemResult:
    item_guid: str
    take_guid: str
    status: str
    error: str | None = None
    section: tuple[float, float] | None = None
    notes: list[list] = field(default_factory=list)
    cc: list[list] = field(default_factory=list)
    artifact: str | None = None
    stems: list[dict] | None = None  # separate: [{"name", "path"}], the WAVs written into the project
    parts: list[dict] | None = None  # mix: one transcription per kind (see docs/protocol.md)
    channel: int = 1  # MIDI channel 1-16 of the notes and CCs
    pitched: bool = True  # False: note numbers name drums, so a pitch-shifted take must not transpose them
    chords: list[list] | None = None  # chords: [start_s, end_s, Harte label, symbol] in source seconds
    key: str | None = None  # chords: the key heard, e.g. "Eb:maj"
    markers: str | None = None  # chords: where REAPER shows the chord symbols (the request's option)

    def to_dict(self) -> dict:
        return {
            "item_guid": self.item_guid,
            "take_guid": self.take_guid,
            "status": self.status,
            "error": self.error,
            "section": None if self.section is None else {"start_s": self.section[0], "end_s": self.section[1]},
            "notes": self.notes,
            "cc": self.cc,
            "channel": self.channel,
            "pitched": self.pitched,
            "artifact": self.artifact,
            **{key: value for key, value in (("stems", self.stems), ("parts", self.parts)) if value is not None},
            **({"chords": self.chords, "key": self.key, "markers": self.markers} if self.chords is not None else {}),
        }


@dataclass
class Result:
    id: str
    kind: str
    status: str
    error: str | None = None
    items: list[ItemResult] = field(default_factory=list)
    fill: dict | None = None  # generate: the variations (docs/protocol.md)

    @classmethod
    def from_items(cls, request_id: str, kind: str, items: list[ItemResult]) -> "Result":
        done = [i for i in items if i.status == Status.DONE]
        errors = [i.error for i in items if i.error]
        if done:
            error = None if not errors else f"{len(errors)} of {len(items)} items failed: {errors[0]}"
            return cls(request_id, kind, Status.DONE, error, items)
        return cls(request_id, kind, Status.FAILED, errors[0] if errors else "Nothing was transcribed.", items)

    @classmethod
    def failure(cls, request_id: str, kind: str, error: str, status: str = Status.FAILED) -> "Result":
        return cls(request_id, kind, status, error, [])

    def to_dict(self) -> dict:
        return {
            "protocol": PROTOCOL_VERSION,
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "finished_at": time.time(),
            "daemon": __version__,
            "items": [i.to_dict() for i in self.items],
            **({"fill": self.fill} if self.fill is not None else {}),
        }


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(ID_PATTERN.match(value))


def parse_request_bytes(data: bytes) -> Request:
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(f"The request is {len(data)} bytes, larger than the {MAX_REQUEST_BYTES} allowed.")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"The request is not valid JSON ({exc}).") from None
    return parse_request(doc)


def parse_request(doc: object) -> Request:
    if not isinstance(doc, dict):
        raise RequestError("The request must be a JSON object.")
    version = doc.get("protocol")
    if version != PROTOCOL_VERSION:
        raise RequestError(
            f"The request uses protocol {version!r} but this daemon speaks {PROTOCOL_VERSION}; "
            "update reascribe and its REAPER scripts to the same version."
        )
    req_id = doc.get("id")
    if not is_valid_id(req_id):
        raise RequestError(f"The request id {req_id!r} is not a valid id (letters, digits, '-' and '_').")
    kind = doc.get("kind")
    if kind not in REQUEST_KINDS:
        raise RequestError(f"Unknown job kind {kind!r}; this version knows {', '.join(REQUEST_KINDS)}.")
    project = _project(doc.get("project"))
    if kind == GENERATE:
        return _generate_request(doc, req_id, project)
    items_doc = doc.get("items")
    if not isinstance(items_doc, list) or not items_doc:
        raise RequestError("The request names no items; select at least one audio item.")
    if len(items_doc) > MAX_ITEMS:
        raise RequestError(f"The request names {len(items_doc)} items; at most {MAX_ITEMS} are allowed at once.")
    return Request(
        id=req_id,
        kind=kind,
        created_at=_number(doc, "created_at"),
        ttl_s=_number(doc, "ttl_s", DEFAULT_TTL_S, minimum=1.0),
        client=str(doc.get("client", "")),
        project=project,
        tempo_map=TempoMap.from_dict(doc.get("tempo_map", {"bpm": 120})),
        time_selection=_time_selection(doc.get("time_selection")),
        options=validate_options(kind, doc.get("options", {})),
        items=[_item(i, n) for n, i in enumerate(items_doc, 1)],
    )


def _generate_request(doc: dict, req_id: str, project: Project) -> Request:
    """A generate request names no items: its notes come in ``context`` and it needs a time selection."""
    if doc.get("items", []) != []:
        raise RequestError("A generate request carries its notes in 'context'; 'items' must be empty.")
    selection = _time_selection(doc.get("time_selection"))
    if selection is None:
        raise RequestError("Make a time selection over the bars to fill, then run Generate fill again.")
    return Request(
        id=req_id,
        kind=GENERATE,
        created_at=_number(doc, "created_at"),
        ttl_s=_number(doc, "ttl_s", DEFAULT_TTL_S, minimum=1.0),
        client=str(doc.get("client", "")),
        project=project,
        tempo_map=TempoMap.from_dict(doc.get("tempo_map", {"bpm": 120})),
        time_selection=selection,
        options=validate_options(GENERATE, doc.get("options", {})),
        items=[],
        context=parse_context(doc.get("context")),
    )


def _number(doc: dict, key: str, default: float | None = None, minimum: float | None = None) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RequestError(f"'{key}' must be a number, not {value!r}.")
    if value in (float("inf"), float("-inf")):
        raise RequestError(f"'{key}' must be finite.")
    if minimum is not None and value < minimum:
        raise RequestError(f"'{key}' is {value} but must be at least {minimum}.")
    return float(value)


def _string(doc: dict, key: str, where: str, required: bool = True) -> str:
    value = doc.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise RequestError(f"{where}: '{key}' must be a non-empty string.")
    return value


def absolute_path(value: str, what: str) -> Path:
    """``value`` as a Path; it must be absolute and free of NUL characters (hostile-input guard)."""
    if "\x00" in value:
        raise RequestError(f"{what} contains a NUL character.")
    path = Path(value)
    if not path.is_absolute():
        raise RequestError(f"{what} {value!r} must be an absolute path.")
    return path


def _project(doc: object) -> Project:
    if not isinstance(doc, dict):
        raise RequestError("The request has no 'project' object.")
    file = doc.get("file", "")
    if not isinstance(file, str):
        raise RequestError("project: 'file' must be a string.")
    if file:
        rpp = absolute_path(file, "The project file")
        project_dir = rpp.parent
        stated = doc.get("dir")
        if isinstance(stated, str) and stated and Path(os.path.realpath(stated)) != Path(os.path.realpath(project_dir)):
            raise RequestError(f"project: 'dir' {stated!r} is not the folder of {file!r}.")
    else:
        project_dir = absolute_path(_string(doc, "dir", "project"), "The project folder")
    media = doc.get("media_dir") or str(project_dir)
    if not isinstance(media, str):
        raise RequestError("project: 'media_dir' must be a string.")
    media_dir = absolute_path(media, "The project media folder")
    home = Path.home().resolve()
    for folder in (project_dir, media_dir):
        resolved = Path(os.path.realpath(folder))
        if resolved == Path(resolved.anchor) or resolved == home or resolved in home.parents:
            raise RequestError(
                f"The project folder {str(folder)!r} is a drive root or your home folder (or above it); "
                "save the project in a folder of its own."
            )
    return Project(file=file, dir=project_dir, media_dir=media_dir)


def _time_selection(doc: object) -> tuple[float, float] | None:
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise RequestError("'time_selection' must be an object or null.")
    start, end = _number(doc, "start_s"), _number(doc, "end_s")
    if end < start:
        raise RequestError(f"The time selection ends ({end} s) before it starts ({start} s).")
    return None if end == start else (start, end)


def validate_options(kind: str, doc: object) -> dict[str, Any]:
    """The options of a ``kind`` job, each checked; those not given are left out (pipelines hold defaults)."""
    if not isinstance(doc, dict):
        raise RequestError("'options' must be an object.")
    allowed = OPTIONS[kind]
    checked = {}
    for key, value in doc.items():
        if key not in allowed:
            raise RequestError(
                f"Unknown option {_shown(key)} for {kind}; known options: {', '.join(sorted(allowed))}."
            )
        checked[key] = allowed[key](key, value)
    return checked


def _item(doc: object, n: int) -> Item:
    where = f"item {n}"
    if not isinstance(doc, dict):
        raise RequestError(f"{where} must be an object.")
    source = doc.get("source")
    if not isinstance(source, dict):
        raise RequestError(f"{where} has no 'source' object.")
    size = source.get("size_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise RequestError(f"{where}: source 'size_bytes' must be a non-negative integer.")
    playrate = _number(doc, "playrate", 1.0)
    if not (0.01 <= playrate <= 100.0):
        raise RequestError(f"{where}: playrate {playrate} is outside 0.01-100.")
    length = _number(doc, "length_s")
    if length < 0:
        raise RequestError(f"{where}: length {length} s is negative.")
    markers = doc.get("stretch_markers", 0)
    if isinstance(markers, bool) or not isinstance(markers, int) or markers < 0:
        raise RequestError(f"{where}: 'stretch_markers' must be a non-negative integer.")
    return Item(
        item_guid=_string(doc, "item_guid", where),
        take_guid=_string(doc, "take_guid", where),
        name=str(doc.get("name", "")),
        track=str(doc.get("track", "")),
        source_path=absolute_path(_string(source, "path", f"{where} source"), f"The source of {where}"),
        source_size_bytes=size,
        position_s=_number(doc, "position_s"),
        length_s=length,
        start_offset_s=_number(doc, "start_offset_s", 0.0),
        playrate=playrate,
        loop=bool(doc.get("loop", False)),
        stretch_markers=markers,
    )
