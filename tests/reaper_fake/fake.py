"""FakeReaper: runs ReaScripts in real Lua 5.4 (lupa) against a Python model of REAPER.

Each script run gets its own Lua state, as in REAPER, with ``reaper`` and ``gfx`` tables, the real
``io``/``os`` (file operations are traced in ``fake.file_ops``; ``os.exit``, ``os.execute`` and
``io.popen`` are violations because they would quit or block REAPER) and REAPER's default
``package.path`` (scripts set their own). With ``windows=True``, ``os.rename`` fails when the target
exists, as it does on Windows. ``run_ticks`` advances a fake clock by 1/30 s per tick and
runs each script's deferred callbacks once.

Everything a correct script must never do is appended to ``fake.violations``; ``assert_clean()``
fails on any violation, script error, unknown ``*_Value``/info key or automatic undo point.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

from lupa.lua54 import LuaError, LuaRuntime

from .api import EXPORTED, REFUSED_VALUES, Api, ReaperError, named_id, ppq_to_time
from .gfx import FakeGfx
from .model import GuidFactory, Item, MidiData, Project, Source, Take, TempoMap, Track

TICK_S = 1.0 / 30.0  # one defer cycle (REAPER runs deferred callbacks about 30 times a second)
FIRST_COMMAND_ID = 54000  # where the fake starts numbering registered scripts
SCRIPTS_SUBDIR = Path("Scripts") / "reascribe"  # where `reascribe install-reaper` puts the scripts
REAPACK_SUBDIR = Path("Scripts") / "reascribe" / "Items"  # where ReaPack does: Scripts/<index name>/<category>
STARTUP_SCRIPT = Path("Scripts") / "__startup.lua"  # REAPER runs it at start (community convention)
EACCES = 13
REPO_SCRIPTS = Path(__file__).resolve().parents[2] / "reaper_scripts"

PRELUDE = r"""
local raw, gfx_fns, hooks = ...
local pack, unpack = table.pack, table.unpack
local function wrap(f)
  return function(...)
    local r = pack(pcall(f, ...))
    if r[1] then return unpack(r, 2, r.n) end
    error(tostring(r[2]), 2)
  end
end
reaper = {}
for name, f in pairs(raw) do reaper[name] = wrap(f) end
gfx = {x = 0, y = 0, w = 0, h = 0, r = 1, g = 1, b = 1, a = 1,
       mouse_x = 0, mouse_y = 0, mouse_cap = 0, mouse_wheel = 0, texth = 16}
for name, f in pairs(gfx_fns) do gfx[name] = wrap(f) end

local record, violation, getenv, rename_refused = hooks.record, hooks.violation, hooks.getenv, hooks.rename_refused
local io_open, os_rename, os_remove, os_getenv = io.open, os.rename, os.remove, os.getenv
io.open = function(path, mode, ...) record("open", path, mode or "r") return io_open(path, mode, ...) end
os.rename = function(a, b)
  record("rename", a, b)
  local refused, message, code = rename_refused(a, b)
  if refused then return nil, message, code end
  return os_rename(a, b)
end
os.remove = function(a) record("remove", a, nil) return os_remove(a) end
os.getenv = function(name)
  local set, value = getenv(name)
  if set then return value end
  return os_getenv(name)
end
os.exit = function() violation("os.exit would quit REAPER") error("os.exit is not allowed in a ReaScript", 2) end
os.execute = function(cmd) violation("os.execute blocks REAPER: " .. tostring(cmd)) return nil, "exit", 1 end
io.popen = function(cmd) violation("io.popen blocks REAPER: " .. tostring(cmd)) return nil, "io.popen is not allowed" end
return gfx
"""


class NoteAt(NamedTuple):
    start_s: float
    end_s: float
    pitch: int
    vel: int
    chan: int


class CCAt(NamedTuple):
    time_s: float
    cc: int
    value: int
    chan: int
    status: int


@dataclass
class Action:
    cmd_id: int
    name: str  # "RS<hex>", without the leading underscore
    path: str
    section: int


@dataclass
class UndoPoint:
    desc: str
    flags: int
    project: Project | None
    script: str


@dataclass
class MessageBox:
    script: str
    msg: str
    title: str
    type: int
    answer: int
    background: bool


class ScriptInstance:
    """One run of a ReaScript: its Lua state, deferred callbacks and atexit handlers.

    ``path`` is the file REAPER knows the run by (get_action_context, relaunch checks); ``code`` is the file
    that runs, when another one (e.g. __startup.lua doing ``dofile``) started it. Default: ``path``.
    """

    def __init__(self, fake: "FakeReaper", path: str, cmd_id: int = -1, section: int = 0,
                 code: str | None = None) -> None:
        self.fake = fake
        self.path = str(path)
        self.code = str(code) if code is not None else self.path
        self.name = os.path.basename(self.path)
        self.cmd_id = cmd_id
        self.section = section
        self.queue: list[Any] = []
        self.at_exit: list[Any] = []
        self.running = False
        self.in_main = False
        self.in_atexit = False
        self.deferred_in_main = False
        self.options = 0  # set_action_options flags 1 and 2
        self.undo_blocks = 0
        self.ticks = 0
        self.error: str | None = None
        self.gfx = FakeGfx()
        self.lua = LuaRuntime(unpack_returned_tuples=True, encoding="utf-8")
        api = Api(fake, self)
        raw = {name: fake.guard(name, getattr(api, name)) for name in fake.api_names}
        hooks = self.lua.table_from(
            {"record": fake.record_file_op, "violation": fake.violation, "getenv": fake.getenv,
             "rename_refused": fake.rename_refused}
        )
        self.gfx.table = self.lua.execute(
            PRELUDE, self.lua.table_from(raw), self.lua.table_from(self.gfx.functions()), hooks
        )
        self.globals_seen = set(self.lua.globals().keys())

    def __repr__(self) -> str:
        state = "running" if self.running else "ended"
        return f"<ScriptInstance {self.name} {state}>"

    def defer(self, fn: Any) -> None:
        if self.running and not self.in_atexit:
            self.queue.append(fn)
            if self.in_main:
                self.deferred_in_main = True

    def start(self) -> None:
        self.running = True
        chunk, err = self.lua.globals().loadfile(self.code), None
        if isinstance(chunk, tuple):
            chunk, err = chunk[0], chunk[1]
        if chunk is None:
            self.fail(f"cannot load {self.code}: {err}")
            return
        self.in_main = True
        try:
            self.call(chunk, "main chunk")
        finally:
            self.in_main = False
        if self.running and not self.queue:
            if not self.deferred_in_main and self.undo_blocks == 0:
                self.fake.auto_undo_points.append(self.name)  # REAPER adds "ReaScript: Run" here
            self.finish()

    def call(self, fn: Any, where: str) -> bool:
        self.fake.active.append(self)
        try:
            fn()
            return True
        except LuaError as exc:
            self.fail(f"{where}: {exc}")
            return False
        except Exception as exc:  # a Python error that crossed Lua without being converted
            self.fail(f"{where}: {exc!r}")
            return False
        finally:
            self.fake.active.pop()
            self.fake.check_after(self, where)
            self.check_globals(where)

    def check_globals(self, where: str) -> None:
        """Scripts keep everything local (STYLE.md): a new global is a violation."""
        new = set(self.lua.globals().keys()) - self.globals_seen
        for name in sorted(map(str, new)):
            self.fake.violation(f"{self.name}: {where} set the global {name!r}; make it local")
        self.globals_seen |= new

    def tick(self) -> None:
        if self.gfx.open:
            self.gfx.feed_input()
        callbacks, self.queue = self.queue, []
        self.ticks += 1
        for cb in callbacks:
            if not self.running:
                break
            self.call(cb, "deferred callback")
        if self.running and not self.queue:
            self.finish()

    def fail(self, message: str) -> None:
        """A Lua error: REAPER reports it and stops the script (its atexit handlers still run)."""
        self.error = message
        self.fake.script_errors.append((self.name, message))
        self.queue.clear()
        self.finish()

    def finish(self) -> None:
        if not self.running or self.in_atexit:
            return
        self.queue.clear()
        self.in_atexit = True
        for fn in self.at_exit:
            self.call(fn, "atexit")
        self.in_atexit = False
        self.running = False
        self.gfx.open = False

    terminate = finish


class FakeReaper:
    """A REAPER session: open projects, scripts, actions, console, dialogs, undo history, clock."""

    def __init__(
        self,
        root: Path,
        scripts: Path | None = REPO_SCRIPTS,
        env: dict[str, str | None] | None = None,
        app_version: str = "7.66/linux-x86_64",
        os_name: str = "Other",
        missing: tuple[str, ...] = (),
        project_file: str | None = "project/song.rpp",
        windows: bool = False,
        scripts_subdir: Path = SCRIPTS_SUBDIR,
    ) -> None:
        """``windows``: os.rename refuses an existing target. ``scripts_subdir``: where the scripts are
        installed under the resource folder (REAPACK_SUBDIR for a ReaPack install)."""
        self.root = Path(root)
        self.resource_dir = self.root / "REAPER"
        self.scripts_dir = self.resource_dir / scripts_subdir
        self.windows = windows
        self.scripts_dir.mkdir(parents=True, exist_ok=True)
        if scripts is not None:
            self.install_scripts(Path(scripts))
        self.env: dict[str, str | None] = dict(env or {})
        self.app_version = app_version
        self.os_name = os_name
        self.api_names = sorted(set(EXPORTED) - set(missing))
        self.new_guid = GuidFactory()
        self.clock = 1000.0

        self.projects: list[Project] = []
        self.current: Project = None  # type: ignore[assignment]
        self.actions: dict[int, Action] = {}
        self.actions_by_name: dict[str, Action] = {}
        self.scripts: list[ScriptInstance] = []
        self.active: list[ScriptInstance] = []
        self.toggle_states: dict[tuple[int, int], int] = {}
        self.toolbar_refreshes: list[tuple[int, int]] = []
        self.ext_state: dict[tuple[str, str], str] = {}
        self.ext_state_persist: dict[tuple[str, str], bool] = {}
        self.enum_cache: dict[str, list[str]] = {}

        self.console = ""
        self.console_opened = 0
        self.message_boxes: list[MessageBox] = []
        self.mb_answers: deque[int] = deque()
        self.undo_depth = 0
        self.undo_log: list[UndoPoint] = []
        self.auto_undo_points: list[str] = []
        self.ui_refresh = 0
        self.ui_updates: list[tuple[str, Any]] = []
        self.native_commands: list[int] = []
        self.exec_log: list[tuple[str, int]] = []
        self.exec_output = "0\n"
        self.osc_log: list[tuple[str, Any]] = []
        self.midi_log: list[tuple[int, ...]] = []
        self.file_ops: list[tuple[str, Any, Any]] = []
        self.calls: Counter[str] = Counter()
        self.violations: list[str] = []
        self.script_errors: list[tuple[str, str]] = []
        self.unknown_keys: list[tuple[str, str]] = []
        self.refusals: Counter[str] = Counter()  # API name -> how many of its next calls REAPER refuses

        if project_file is not None:
            self.new_project(self.root / project_file)
        else:
            self.new_project("")

    # -- scripts --------------------------------------------------------------------------------

    def install_scripts(self, source: Path) -> None:
        """Copy the ReaScripts (``*.lua``, ``*.xml``, library folders) like ``reascribe install-reaper``."""
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix in (".lua", ".xml"):
                target = self.scripts_dir / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)

    def script_path(self, script: str | Path) -> str:
        path = Path(script)
        return str(path if path.is_absolute() else self.scripts_dir / path)

    def register_script(self, path: str, section: int = 0) -> Action:
        name = named_id(section, str(path))
        action = self.actions_by_name.get(name)
        if action is None:
            action = Action(FIRST_COMMAND_ID + len(self.actions), name, str(path), section)
            self.actions[action.cmd_id] = action
            self.actions_by_name[name] = action
        return action

    def unregister_script(self, path: str, section: int = 0) -> bool:
        action = self.actions_by_name.pop(named_id(section, str(path)), None)
        if action:
            del self.actions[action.cmd_id]
        return action is not None

    def command_id(self, script: str | Path) -> int:
        return self.register_script(self.script_path(script)).cmd_id

    def run_action(self, script: str | Path) -> ScriptInstance | None:
        """Run a script as a registered action (like pressing its shortcut); returns its instance."""
        return self.launch(self.register_script(self.script_path(script)))

    def run_file(self, script: str | Path, launcher: str | Path | None = STARTUP_SCRIPT) -> ScriptInstance:
        """Run a script that is not an action: ``dofile``-d from ``launcher`` (a path relative to the
        resource folder; default Scripts/__startup.lua, which REAPER runs at start), or on its own when
        launcher is None. REAPER knows such a run by its launcher: get_action_context() names the launcher
        with cmdID -1, and running the script's action later starts a second instance (cmdID -1 for
        __startup.lua: verify in REAPER)."""
        code = self.script_path(script)
        path = str(self.resource_dir / launcher) if launcher is not None else code
        inst = ScriptInstance(self, path, code=code)
        self.scripts.append(inst)
        inst.start()
        return inst

    def startup_path(self) -> Path:
        return self.resource_dir / STARTUP_SCRIPT

    def run_startup(self) -> ScriptInstance:
        """REAPER starting: run Scripts/__startup.lua of the resource folder (not as an action)."""
        return self.run_file(self.startup_path(), launcher=None)

    def lua(self, code: str, *args: Any) -> Any:
        """Run a Lua snippet as a one-off script whose ``package.path`` finds the installed library.

        Returns what the snippet returns (tuples for several values). Checks run as for a script.
        """
        inst = ScriptInstance(self, str(self.scripts_dir / "(snippet).lua"))
        inst.lua.globals().package.path = str(self.scripts_dir) + "/?.lua;" + inst.lua.globals().package.path
        self.scripts.append(inst)
        inst.running = inst.in_main = True
        self.active.append(inst)
        try:
            return inst.lua.execute(code, *args)
        finally:
            self.active.pop()
            inst.in_main = False
            self.check_after(inst, "snippet")
            if not inst.queue:
                inst.finish()

    def launch(self, action: Action) -> ScriptInstance | None:
        existing = self.running(action.path)
        if existing is not None:
            if existing.options & 1:
                existing.terminate()
                if not existing.options & 2:
                    return None
            else:
                self.violation(
                    f"{os.path.basename(action.path)} was launched while running without set_action_options(1): "
                    "REAPER would open the modal 'ReaScript task control' dialog"
                )
                return None
        inst = ScriptInstance(self, action.path, action.cmd_id, action.section)
        self.scripts.append(inst)
        inst.start()
        return inst

    def on_command(self, cmd_id: int, caller: ScriptInstance | None) -> None:
        action = self.actions.get(cmd_id)
        if action is None:
            self.native_commands.append(cmd_id)
            return
        self.launch(action)

    def running(self, script: str | Path) -> ScriptInstance | None:
        """The running instance of a script (by path or file name), or None."""
        key = str(script)
        for inst in self.scripts:
            if inst.running and (inst.path == key or inst.name == key):
                return inst
        return None

    def run_ticks(self, n: int = 1) -> None:
        for _ in range(n):
            self.clock += TICK_S
            for inst in list(self.scripts):
                if inst.running:
                    inst.tick()

    def run_seconds(self, seconds: float) -> None:
        self.run_ticks(max(1, math.ceil(seconds / TICK_S)))

    def stop_all(self) -> None:
        for inst in list(self.scripts):
            inst.terminate()

    # -- hooks used by the API and the Lua prelude ----------------------------------------------

    def guard(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            self.calls[name] += 1
            if self.refusals[name] > 0:
                self.refusals[name] -= 1
                return REFUSED_VALUES[name]
            try:
                return fn(*args)
            except Exception as exc:
                self.violation(f"reaper.{name}: {exc}")
                raise ReaperError(f"reaper.{name}: {exc}") from exc

        return call

    def violation(self, message: str) -> None:
        self.violations.append(message)

    def unknown_key(self, fn: str, key: str) -> None:
        self.unknown_keys.append((fn, key))

    def record_file_op(self, op: str, a: Any, b: Any) -> None:
        self.file_ops.append((op, a, b))

    def rename_refused(self, src: str, dst: str) -> tuple[bool, str | None, int | None]:
        """Windows' rename() refuses an existing target, where POSIX replaces it. The MSVC runtime documents
        EACCES for it, so Lua's os.rename returns nil, "<src>: Permission denied", 13 (verify in REAPER)."""
        if self.windows and isinstance(dst, str) and os.path.lexists(dst) and os.path.lexists(str(src)):
            return True, f"{src}: Permission denied", EACCES
        return False, None, None

    def refuse(self, name: str, times: int = 1) -> None:
        """Make REAPER refuse the next ``times`` calls of ``reaper.<name>`` (it returns its failure value,
        e.g. false from SetItemStateChunk or MIDI_InsertNote), as it does for input it cannot take."""
        if name not in REFUSED_VALUES:
            raise ValueError(f"the fake cannot refuse {name}; known: {sorted(REFUSED_VALUES)}")
        self.refusals[name] += times

    def getenv(self, name: str) -> tuple[bool, str | None]:
        return (True, self.env[name]) if name in self.env else (False, None)

    def message_box(self, script: ScriptInstance, msg: str, title: str, kind: int) -> int:
        background = not script.in_main
        answer = self.mb_answers.popleft() if self.mb_answers else 1
        self.message_boxes.append(MessageBox(script.name, msg, title, kind, answer, background))
        if background:
            self.violation(f"{script.name} opened a modal message box from a deferred callback: {msg!r}")
        return answer

    def undo_begin(self, script: ScriptInstance, proj: Project | None) -> None:
        self.undo_depth += 1

    def undo_end(self, script: ScriptInstance, proj: Project | None, desc: str, flags: int) -> None:
        if self.undo_depth == 0:
            raise ReaperError("Undo_EndBlock without a matching Undo_BeginBlock")
        self.undo_depth -= 1
        if self.undo_depth == 0:
            self.undo_log.append(UndoPoint(desc, flags, proj or self.current, script.name))
            script.undo_blocks += 1

    def check_after(self, script: ScriptInstance, where: str) -> None:
        """REAPER does not close undo blocks or restore UI refresh for a script: each run must."""
        if self.active:  # a nested run (Main_OnCommand from a script) is checked with its caller
            return
        if self.undo_depth:
            self.violation(f"{script.name}: {where} ended with {self.undo_depth} open undo block(s)")
            self.undo_depth = 0
        if self.ui_refresh:
            self.violation(f"{script.name}: {where} ended with PreventUIRefresh count {self.ui_refresh}")
            self.ui_refresh = 0
        for proj in self.projects:
            for take in proj.takes():
                midi = take.source.midi if take.source else None
                if midi is not None and midi.unsorted:
                    self.violation(f"{script.name}: {where} left {take!r} unsorted (MIDI_Sort missing)")
                    midi.sort()

    # -- building projects ----------------------------------------------------------------------

    def new_project(self, file: str | Path = "", record_path: str | Path | None = None, bpm: float = 120.0,
                    num: int = 4, denom: int = 4, make_current: bool = True) -> Project:
        """Open a new project tab; ``file`` "" is an unsaved project. The media folder is created."""
        file = str(file)
        if record_path is None:
            base = Path(file).parent if file else self.root / f"unsaved{len(self.projects)}"
            record_path = base / "Media"
        Path(record_path).mkdir(parents=True, exist_ok=True)
        if file:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
        proj = Project(file=file, record_path=str(record_path), tempo=TempoMap(bpm, num, denom))
        self.projects.append(proj)
        if make_current or self.current is None:
            self.current = proj
        return proj

    def close_project(self, proj: Project) -> None:
        self.projects.remove(proj)
        proj.alive = False
        if self.current is proj:
            self.current = self.projects[0] if self.projects else self.new_project("")

    def open_project(self, proj: Project, make_current: bool = True) -> Project:
        """Re-open a closed project object (a test shortcut for File > Open of the same .rpp)."""
        proj.alive = True
        self.projects.append(proj)
        if make_current:
            self.current = proj
        return proj

    def add_track(self, name: str = "", project: Project | None = None) -> Track:
        proj = project or self.current
        track = Track(name=name, guid=self.new_guid(), project=proj)
        proj.tracks.append(track)
        return track

    def add_item(self, track: Track, position_s: float, length_s: float, loop: bool = False,
                 selected: bool = False) -> Item:
        item = Item(guid=self.new_guid(), position_s=float(position_s), length_s=float(length_s), loop=loop,
                    selected=selected, track=track)
        track.items.append(item)
        track.items.sort(key=lambda it: it.position_s)
        return item

    def add_take(self, item: Item, source: Source | None = None, name: str = "", start_offset_s: float = 0.0,
                 playrate: float = 1.0, pitch: float = 0.0, preserve_pitch: bool = True,
                 stretch_markers: int = 0, active: bool = True) -> Take:
        take = Take(guid=self.new_guid(), name=name, start_offset_s=float(start_offset_s),
                    playrate=float(playrate), pitch=float(pitch), preserve_pitch=preserve_pitch,
                    stretch_markers=stretch_markers, item=item)
        if source is not None:
            if source.take is not None:
                source = source.duplicate()
            source.take = take
            take.source = source
        item.takes.append(take)
        if active:
            item.active = len(item.takes) - 1
        return take

    def audio_source(self, path: str | Path, length_s: float = 60.0, size_bytes: int | None = 4096,
                     kind: str | None = None) -> Source:
        """A file source; the file is created with ``size_bytes`` bytes unless it exists or size is None."""
        path = Path(path)
        if size_bytes is not None and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF" + bytes(max(0, size_bytes - 4)))
        kinds = {".wav": "WAVE", ".mp3": "MP3", ".flac": "FLAC", ".ogg": "VORBIS", ".aif": "WAVE", ".aiff": "WAVE"}
        return Source(kind or kinds.get(path.suffix.lower(), "WAVE"), str(path), float(length_s))

    @staticmethod
    def section_source(parent: Source, length_s: float | None = None, reversed: bool = False) -> Source:
        """A SECTION wrapping ``parent``: what Item properties > "Section" makes, and what REAPER makes of a
        reversed take (Item > Reverse items as new take / Reverse in item properties)."""
        return Source("SECTION", "", parent.length_s if length_s is None else length_s, parent=parent,
                      reversed=reversed)

    @staticmethod
    def midi_source() -> Source:
        return Source("MIDI", midi=MidiData())

    def add_audio_item(self, track: Track, path: str | Path, position_s: float, length_s: float,
                       start_offset_s: float = 0.0, playrate: float = 1.0, name: str | None = None,
                       selected: bool = True, **take_args: Any) -> tuple[Item, Take]:
        """An item with one audio take reading ``path`` (created if missing), selected by default."""
        item = self.add_item(track, position_s, length_s, selected=selected)
        take = self.add_take(item, self.audio_source(path), name if name is not None else Path(path).stem,
                             start_offset_s, playrate, **take_args)
        return item, take

    def select_items(self, *items: Item, project: Project | None = None) -> None:
        """Select exactly these items (in their project or ``project``)."""
        proj = project or (items[0].project if items else self.current)
        for item in proj.items():
            item.selected = any(item is it for it in items)

    def delete_item(self, item: Item) -> None:
        item.track.items.remove(item)
        item.alive = False
        for take in item.takes:
            take.alive = False
        item.project.touch()

    def delete_take(self, take: Take) -> None:
        item = take.item
        item.takes.remove(take)
        take.alive = False
        item.active = min(item.active, max(0, len(item.takes) - 1))
        item.project.touch()

    def find_take(self, guid: str) -> Take | None:
        for proj in self.projects:
            for take in proj.takes():
                if take.guid == guid.upper():
                    return take
        return None

    # -- reading results back -------------------------------------------------------------------

    @staticmethod
    def take_notes_project_time(take: Take) -> list[NoteAt]:
        """The notes of a MIDI take in project seconds, through the project's tempo map."""
        midi = take.source.midi
        return [NoteAt(ppq_to_time(take, n.start_ppq), ppq_to_time(take, n.end_ppq), n.pitch, n.vel, n.chan)
                for n in midi.notes]

    @staticmethod
    def take_ccs_project_time(take: Take) -> list[CCAt]:
        midi = take.source.midi
        return [CCAt(ppq_to_time(take, c.ppq), c.msg2, c.msg3, c.chan, c.chanmsg) for c in midi.ccs]

    # -- gfx --------------------------------------------------------------------------------------

    def gfx_window(self) -> FakeGfx:
        for inst in self.scripts:
            if inst.running and inst.gfx.open:
                return inst.gfx
        raise AssertionError("no script has a gfx window open")

    def gfx_click_text(self, needle: str, index: int = 0) -> None:
        """Click (press, then release on the next tick) the middle of the index-th text containing needle."""
        window = self.gfx_window()
        found = window.find_text(needle)
        if len(found) <= index:
            raise AssertionError(f"{needle!r} is not drawn; the window shows {window.texts()}")
        window.click(*found[index].center)

    def gfx_close(self) -> None:
        """The user closes the window (gfx.getchar() returns -1 from now on)."""
        self.gfx_window().open = False

    # -- assertions -------------------------------------------------------------------------------

    def problems(self) -> list[str]:
        out = list(self.violations)
        out += [f"script error in {name}: {msg}" for name, msg in self.script_errors]
        out += [f"{fn}: unknown key {key!r}" for fn, key in self.unknown_keys]
        out += [f"{name} ended without an undo block or defer: REAPER adds an undo point 'ReaScript: Run'"
                for name in self.auto_undo_points]
        return out

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "fake REAPER saw problems:\n  " + "\n  ".join(problems)

    def reset_problems(self) -> None:
        self.violations.clear()
        self.script_errors.clear()
        self.unknown_keys.clear()
        self.auto_undo_points.clear()
