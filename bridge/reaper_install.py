"""Copy the ReaScripts into REAPER's resource folder and point them at the daemon's spool."""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from reascribe.errors import RequestError

SCRIPTS_SUBDIR = Path("Scripts") / "reascribe"
SETTINGS_FILE = "reascribe_settings.lua"
REGISTER_SCRIPT = "reascribe_Register actions.lua"
STARTUP_BEGIN = "-- >>> reascribe bridge (added by `reascribe install-reaper --autostart`)"
STARTUP_END = "-- <<< reascribe bridge"
SHIPPED_SUFFIXES = {".lua", ".xml"}
SPOOL_LINE = re.compile(r"^\s*spool_dir\s*=.*$", re.MULTILINE)
SETTINGS_TEMPLATE = """-- reascribe settings, read by the ReaScripts. `reascribe install-reaper` only updates spool_dir.
return {{
{spool_line}
  pedal_extend = false, -- true: piano notes last while the sustain pedal holds them
  soft_pedal = true, -- false: leave out the soft pedal (CC67)
  drum_note_length = 0.1, -- seconds each drum note lasts (0.01-2)
  drum_channel = 10, -- MIDI channel of drum takes (10: General MIDI drums)
  -- MIDI notes for a drum sampler that differs from General MIDI, e.g. {{ kick = 35, ride = 59 }}; drums:
  -- kick, snare, hihat_closed, hihat_open, tom_low, tom_mid, tom_high, crash, ride
  drum_note_map = {{}},
  chord_channel = 1, -- MIDI channel of chord takes
  chord_markers = 'take', -- chord symbols as 'take' markers on the chord take, project 'regions', or 'none'
  separation_backend = 'hpss', -- Separate and Transcribe from mix: 'hpss' (no weights) or 'demucs'
  fill_variations = 3, -- Generate fill: takes to audition (1-8)
  fill_temperature = 0.8, -- 0.1-2: lower is safer, higher more adventurous
  fill_density = 1.0, -- notes per beat relative to the bars around: 0.5 sparser, 2 busier (0.25-4)
  fill_part = 'auto', -- 'auto' (drums on channel 10 or kit notes), 'drums' or 'melodic'
}}
"""


def default_resource_path() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "REAPER"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "REAPER"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "REAPER"


def install(resource_path: Path | None, spool: Path, autostart: bool = False) -> str:
    """Install the scripts; return what the user has to do next in REAPER."""
    resource = Path(resource_path) if resource_path else default_resource_path()
    if not resource.is_dir():
        raise RequestError(
            f"REAPER's resource folder was not found at {resource}; in REAPER use Options > "
            "Show REAPER resource path in explorer/finder, then pass that folder with --resource-path."
        )
    target = resource / SCRIPTS_SUBDIR
    copied = _copy_scripts(target)
    spool = Path(spool).expanduser().resolve()  # REAPER resolves relative paths against its own folder
    _write_settings(target / SETTINGS_FILE, spool)
    lines = [f"Installed {copied} files into {target} (spool: {spool})."]
    if autostart:
        _add_startup_block(resource / "Scripts" / "__startup.lua", target / "reascribe_Bridge.lua")
        lines.append("The bridge will start with REAPER (Scripts/__startup.lua).")
    lines += [
        "Next, once, in REAPER:",
        "  1. Actions > Show action list > New action > Load ReaScript...",
        f"  2. Choose {target / REGISTER_SCRIPT} and run it: it adds every reascribe action.",
        "  3. Start the daemon in a terminal: reascribe daemon",
        "Then select audio items and run 'reascribe: Transcribe piano', '... drums' or '... chords'.",
    ]
    return "\n".join(lines)


def _copy_scripts(target: Path) -> int:
    root = resources.files("reascribe.reaper_scripts")
    count = 0
    with resources.as_file(root) as source_root:
        for source in sorted(Path(source_root).rglob("*")):
            if source.is_file() and source.suffix in SHIPPED_SUFFIXES:
                destination = target / source.relative_to(source_root)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
                count += 1
    if not count:
        raise RequestError("The reascribe installation has no ReaScripts; reinstall reascribe.")
    return count


def _write_settings(path: Path, spool: Path) -> None:
    """Point the scripts at ``spool``; on a reinstall only the spool line changes, other edits stay."""
    spool_line = f"  spool_dir = {_lua_string(str(spool))},"
    if path.exists():
        text, count = SPOOL_LINE.subn(lambda _: spool_line, path.read_text(encoding="utf-8"), count=1)
        if count:
            _write_atomic(path, text)
            return
    _write_atomic(path, SETTINGS_TEMPLATE.format(spool_line=spool_line))


def _add_startup_block(startup: Path, bridge: Path) -> None:
    """Add (once) a marked block to __startup.lua, keeping whatever the user has there."""
    existing = startup.read_text(encoding="utf-8") if startup.exists() else ""
    if STARTUP_BEGIN in existing:
        return
    # Run the bridge as an action (not dofile), so its toggle state and "stop" work as usual.
    register = f"reaper.AddRemoveReaScript(true, 0, {_lua_string(str(bridge))}, true)"
    # The empty defer keeps REAPER from adding a "ReaScript: Run" undo point at start-up.
    block = f"{STARTUP_BEGIN}\nreaper.Main_OnCommand({register}, 0)\nreaper.defer(function() end)\n{STARTUP_END}\n"
    _write_atomic(startup, existing + ("\n" if existing and not existing.endswith("\n") else "") + block)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
