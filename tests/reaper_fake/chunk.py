"""Item state chunks (GetItemStateChunk / SetItemStateChunk) in the RPP layout REAPER uses.

The layout follows shared/docs/reaper-integration.md §5.1: ``<ITEM`` with POSITION/LENGTH/LOOP/IGUID,
the first take's NAME/SOFFS/PLAYRATE/GUID and ``<SOURCE`` block, then each further take introduced
by a ``TAKE`` line (``TAKE SEL`` marks the active take). MIDI sources carry ``HASDATA 1 <ppq> QN`` and
``E <delta ticks> <status> <data1> <data2>`` lines (hex bytes), the last one the all-notes-off at the
source's end. ``<EXT`` blocks (P_EXT) and ``SM`` lines (stretch markers) use a fake-only layout that
round-trips. A MIDI source without ``HASDATA 1`` has no data, like a fresh
``PCM_Source_CreateFromType("MIDI")``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .model import CC, Item, MidiData, Note, Source, Take

FILE_TYPES = ("WAVE", "MP3", "FLAC", "VORBIS", "OPUS", "WAVPACK")
ALL_NOTES_OFF = (0xB0, 0x7B, 0x00)


class ChunkError(ValueError):
    """A chunk the fake (and REAPER) cannot load."""


def quote(text: str) -> str:
    for q in ('"', "'", "`"):
        if q not in text:
            return f"{q}{text}{q}"
    return '"' + text.replace('"', "'") + '"'


def _num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


# -- writing ----------------------------------------------------------------------------------------


def _ext_lines(ext: dict[str, str]) -> list[str]:
    if not ext:
        return []
    return ["<EXT"] + [f"{quote(k)} {quote(v)}" for k, v in sorted(ext.items())] + [">"]


def _midi_lines(midi: MidiData) -> list[str]:
    if not midi.has_data:
        return []
    events: list[tuple[int, int, str, tuple[int, int, int]]] = []  # (tick, order, flag, bytes)
    for n in midi.notes:
        flag = ("e" if n.selected else "E") + ("m" if n.muted else "")
        events.append((n.start_ppq, 1, flag, (0x90 | n.chan, n.pitch, n.vel)))
        events.append((n.end_ppq, 0, flag, (0x80 | n.chan, n.pitch, 0)))
    for c in midi.ccs:
        flag = ("e" if c.selected else "E") + ("m" if c.muted else "")
        events.append((c.ppq, 2, flag, (c.chanmsg | c.chan, c.msg2, c.msg3)))
    events.sort(key=lambda e: (e[0], e[1]))
    lines, last = [f"HASDATA 1 {midi.ppq} QN"], 0
    for tick, _, flag, data in events:
        lines.append(f"{flag} {tick - last} " + " ".join(f"{b:02x}" for b in data))
        last = tick
    end = max(midi.length_ticks or 0, last)
    lines.append(f"E {end - last} " + " ".join(f"{b:02x}" for b in ALL_NOTES_OFF))
    return lines


def _source_lines(src: Source | None) -> list[str]:
    if src is None:
        return ["<SOURCE EMPTY", ">"]
    if src.type == "MIDI":
        return ["<SOURCE MIDI"] + _midi_lines(src.midi) + [">"]
    if src.type == "SECTION":
        mode = ["MODE 2"] if src.reversed else []  # MODE 2 (or 3 with a section) = reversed: verify in REAPER
        return (["<SOURCE SECTION", f"LENGTH {_num(src.length_s)}"] + mode + ["STARTPOS 0"]
                + _source_lines(src.parent) + [">"])
    return [f"<SOURCE {src.type}", f"FILE {quote(src.filename)}", ">"]


def _take_lines(take: Take) -> list[str]:
    lines = [
        f"NAME {quote(take.name)}",
        f"SOFFS {_num(take.start_offset_s)}",
        f"PLAYRATE {_num(take.playrate)} {int(take.preserve_pitch)} {_num(take.pitch)} -1 0 0.0025",
        f"GUID {take.guid}",
    ]
    lines += _ext_lines(take.ext)
    if take.stretch_markers:
        lines.append("SM " + " + ".join(f"{i} {i}" for i in range(take.stretch_markers)))
    return lines + _source_lines(take.source)


def item_chunk(item: Item) -> str:
    lines = [
        "<ITEM",
        f"POSITION {_num(item.position_s)}",
        f"LENGTH {_num(item.length_s)}",
        f"LOOP {int(item.loop)}",
        f"MUTE {int(item.mute)} 0",
        f"SEL {int(item.selected)}",
        f"IGUID {item.guid}",
    ]
    if item.notes:
        lines += ["<NOTES"] + ["|" + line for line in item.notes.split("\n")] + [">"]
    lines += _ext_lines(item.ext)
    for i, take in enumerate(item.takes):
        if i > 0:
            lines.append("TAKE SEL" if i == item.active else "TAKE")
        lines += _take_lines(take)
    lines.append(">")
    return "\n".join(lines) + "\n"


# -- reading ----------------------------------------------------------------------------------------


@dataclass
class Block:
    tokens: list[str]
    children: list["Block | list[str]"] = field(default_factory=list)  # lines (token lists) and blocks


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line.strip(), posix=True)
    lexer.quotes = "\"'`"
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""  # REAPER has no escapes: "C:\\Users" is a Windows path
    try:
        return list(lexer)
    except ValueError as exc:
        raise ChunkError(f"cannot read the line {line!r}: {exc}") from None


def parse_blocks(text: str) -> Block:
    root = Block(["<ROOT"])
    stack = [root]
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("<"):
            block = Block(_tokens(line[1:]))
            stack[-1].children.append(block)
            stack.append(block)
        elif line == ">":
            if len(stack) == 1:
                raise ChunkError("a '>' closes no block")
            stack.pop()
        elif line.startswith("|"):
            stack[-1].children.append(["|", line[1:]])
        else:
            stack[-1].children.append(_tokens(line))
    if len(stack) != 1:
        raise ChunkError(f"{len(stack) - 1} block(s) are not closed")
    if len(root.children) != 1 or not isinstance(root.children[0], Block) or root.children[0].tokens[:1] != ["ITEM"]:
        raise ChunkError("the chunk must be one <ITEM block")
    return root.children[0]


def _midi_from(block: Block, ppq_default: int) -> MidiData:
    lines = [c for c in block.children if isinstance(c, list)]
    hasdata = next((l for l in lines if l[0] == "HASDATA"), None)
    if not hasdata or hasdata[1] != "1":
        return MidiData(has_data=False)
    midi = MidiData(ppq=int(hasdata[2]) if len(hasdata) > 2 else ppq_default)
    tick, open_notes = 0, {}
    for line in lines:
        if line[0][:1] not in ("E", "e"):
            continue
        try:
            tick += int(line[1])
            status, d1, d2 = (int(b, 16) for b in line[2:5])
        except (ValueError, IndexError):
            raise ChunkError(f"bad MIDI event line {' '.join(line)!r}") from None
        selected, muted = line[0].startswith("e"), "m" in line[0]
        kind, chan = status & 0xF0, status & 0x0F
        if kind == 0x90 and d2 > 0:
            open_notes.setdefault((chan, d1), []).append(Note(tick, tick, chan, d1, d2, selected, muted))
        elif kind in (0x80, 0x90):
            pending = open_notes.get((chan, d1))
            if pending:
                note = pending.pop(0)
                note.end_ppq = tick
                midi.notes.append(note)
        elif (status, d1, d2) == ALL_NOTES_OFF:
            midi.length_ticks = tick
        elif kind in (0xA0, 0xB0, 0xC0, 0xD0, 0xE0):
            midi.ccs.append(CC(tick, kind, chan, d1, d2, selected, muted))
    midi.sort()
    return midi


def _source_from(block: Block, old_files: dict[str, Source]) -> Source:
    kind = block.tokens[1] if len(block.tokens) > 1 else ""
    lines = {c[0]: c[1:] for c in block.children if isinstance(c, list)}
    if kind == "MIDI":
        return Source("MIDI", midi=_midi_from(block, 960))
    if kind == "SECTION":
        inner = next((c for c in block.children if isinstance(c, Block)), None)
        if inner is None:
            raise ChunkError("a SECTION source has no inner <SOURCE")
        length = float(lines.get("LENGTH", ["0"])[0])
        reverse = lines.get("MODE", ["0"])[0] in ("2", "3")
        return Source("SECTION", "", length, parent=_source_from(inner, old_files), reversed=reverse)
    if kind in FILE_TYPES:
        if "FILE" not in lines:
            raise ChunkError(f"a {kind} source has no FILE line")
        filename = lines["FILE"][0]
        old = old_files.get(filename)
        return Source(kind, filename, old.length_s if old else 0.0)
    if kind == "EMPTY":
        return None  # type: ignore[return-value]
    raise ChunkError(f"the fake does not know <SOURCE {kind}")


def _ext_from(block: Block) -> dict[str, str]:
    return {c[0]: c[1] if len(c) > 1 else "" for c in block.children if isinstance(c, list)}


@dataclass
class ParsedTake:
    lines: dict[str, list[str]] = field(default_factory=dict)
    ext: dict[str, str] = field(default_factory=dict)
    source: Block | None = None
    stretch_markers: int = 0
    active: bool = False


def parse_item(text: str) -> tuple[dict[str, list[str]], str, dict[str, str], list[ParsedTake]]:
    """(item lines, notes, item ext, takes) of an item chunk."""
    item = parse_blocks(text)
    item_lines: dict[str, list[str]] = {}
    notes: list[str] = []
    ext: dict[str, str] = {}
    takes: list[ParsedTake] = []
    current: ParsedTake | None = None
    for child in item.children:
        if isinstance(child, Block):
            name = child.tokens[0]
            if name == "NOTES":
                notes = [c[1] for c in child.children if isinstance(c, list) and c[0] == "|"]
            elif name == "EXT":
                if current is None:
                    ext = _ext_from(child)
                else:
                    current.ext = _ext_from(child)
            elif name == "SOURCE":
                if current is None:
                    current = ParsedTake()
                    takes.append(current)
                if current.source is not None:
                    raise ChunkError("a take has two <SOURCE blocks")
                current.source = child
            continue
        key = child[0]
        if key == "TAKE":
            current = ParsedTake(active="SEL" in child[1:])
            takes.append(current)
        elif key in ("NAME", "SOFFS", "PLAYRATE", "GUID"):
            if current is None:
                current = ParsedTake()
                takes.append(current)
            current.lines[key] = child[1:]
        elif key == "SM":
            if current is None:
                raise ChunkError("SM before any take")
            current.stretch_markers = " ".join(child[1:]).count("+") + 1
        else:
            item_lines[key] = child[1:]
    return item_lines, "\n".join(notes), ext, takes


def apply_item_chunk(item: Item, text: str, new_guid) -> None:
    """Load ``text`` into ``item`` as SetItemStateChunk does: the item keeps its identity; its takes
    are rebuilt, so take and source pointers obtained before are no longer valid."""
    item_lines, notes, ext, parsed = parse_item(text)
    old_files = {}
    for take in item.takes:
        src = take.source
        while src is not None:
            if src.filename:
                old_files[src.filename] = src
            src = src.parent
    takes: list[Take] = []
    active = 0
    for i, p in enumerate(parsed):
        rate = p.lines.get("PLAYRATE", ["1", "1", "0"])
        take = Take(
            guid=(p.lines.get("GUID") or [new_guid()])[0].upper(),
            name=(p.lines.get("NAME") or [""])[0],
            start_offset_s=float((p.lines.get("SOFFS") or ["0"])[0]),
            playrate=float(rate[0]),
            preserve_pitch=len(rate) < 2 or rate[1] != "0",
            pitch=float(rate[2]) if len(rate) > 2 else 0.0,
            stretch_markers=p.stretch_markers,
            ext=dict(p.ext),
            item=item,
        )
        if p.source is not None:
            source = _source_from(p.source, old_files)
            if source is not None:
                source.take = take
            take.source = source
        if p.active:
            active = i
        takes.append(take)
    for take in item.takes:
        take.alive = False
        if take.source is not None:
            take.source.take = None
    item.takes = takes
    item.active = active
    if "POSITION" in item_lines:
        item.position_s = float(item_lines["POSITION"][0])
    if "LENGTH" in item_lines:
        item.length_s = float(item_lines["LENGTH"][0])
    if "LOOP" in item_lines:
        item.loop = item_lines["LOOP"][0] != "0"
    if "MUTE" in item_lines:
        item.mute = item_lines["MUTE"][0] != "0"
    if "SEL" in item_lines:
        item.selected = item_lines["SEL"][0] != "0"
    item.notes = notes
    item.ext = ext
