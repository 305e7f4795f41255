"""ReaPack packaging of reaper_scripts/: headers, @provides, index.xml, and that every file compiles."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest
from lupa.lua54 import LuaRuntime

SCRIPTS = Path(__file__).resolve().parents[1] / "reaper_scripts"
PACKAGE = "reascribe_Transcribe piano.lua"
LUA_FILES = sorted(p.relative_to(SCRIPTS).as_posix() for p in SCRIPTS.rglob("*.lua"))


def header(path: Path) -> dict[str, str]:
    """The ReaPack tags of a script's leading comment block (multi-line values joined)."""
    tags: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        m = re.match(r"--\s*@(\w+)\s*(.*)$", line)
        if m:
            current = m.group(1)
            tags[current] = [m.group(2)] if m.group(2) else []
        elif current and line.startswith("--   "):
            tags[current].append(line[5:])
        elif current and line.strip() == "--":  # an empty line inside a multi-line value
            tags[current].append("")
        else:
            current = None
    return {k: "\n".join(v) for k, v in tags.items()}


def provides() -> dict[str, str]:
    """file -> "main"/"nomain" from the package's @provides."""
    out = {}
    for line in header(SCRIPTS / PACKAGE)["provides"].splitlines():
        m = re.match(r"\[(\w+)\]\s+(.+)$", line.strip())
        assert m, line
        out[PACKAGE if m.group(2) == "." else m.group(2)] = m.group(1)
    return out


def test_the_package_header_is_complete():
    tags = header(SCRIPTS / PACKAGE)
    assert tags["version"] == "0.1.0" and tags["author"] == "reascribe"
    for tag in ("description", "about", "changelog", "provides"):
        assert tags.get(tag), tag


def test_every_script_is_provided_once_and_every_other_file_is_noindex():
    provided = provides()
    assert sorted(provided) == LUA_FILES
    assert provided[PACKAGE] == "main"
    assert all(v == "nomain" for f, v in provided.items() if f.startswith("reascribe/"))
    for file in LUA_FILES:
        if file != PACKAGE:
            assert "noindex" in header(SCRIPTS / file), file


def test_index_xml_lists_the_same_files():
    root = ET.parse(SCRIPTS / "index.xml").getroot()
    (pkg,) = root.iter("reapack")
    assert pkg.get("name") == PACKAGE and pkg.get("type") == "script"
    (version,) = pkg.iter("version")
    assert version.get("name") == header(SCRIPTS / PACKAGE)["version"]
    sources = {}
    for src in version.iter("source"):
        file = src.get("file") or PACKAGE
        assert unquote(src.text).endswith("/reaper_scripts/" + file)
        sources[file] = "main" if src.get("main") == "main" else "nomain"
    assert sources == provides()


@pytest.mark.parametrize("file", LUA_FILES)
def test_every_lua_file_compiles_and_declares_no_global_function(file):
    compiles = LuaRuntime().eval("function(src, name) local f, err = load(src, name) return f ~= nil, err end")
    ok, err = compiles((SCRIPTS / file).read_text(encoding="utf-8"), "@" + file)
    assert ok, err
    source = (SCRIPTS / file).read_text(encoding="utf-8")
    assert not re.search(r"^\s*function\s+[A-Za-z_]\w*\s*\(", source, re.M), "global function"


def test_reapack_installs_into_the_items_category():
    """ReaPack puts the files into Scripts/<index name>/<category>/: Scripts/reascribe/Items/, next to the
    reascribe_settings.lua that `reascribe install-reaper` writes into Scripts/reascribe/ (read one folder up)."""
    root = ET.parse(SCRIPTS / "index.xml").getroot()
    assert root.get("name") == "reascribe"
    assert [c.get("name") for c in root.iter("category")] == ["Items"]


def test_the_about_text_names_both_pedals_and_matches_the_index():
    about = header(SCRIPTS / PACKAGE)["about"]
    assert "sustain pedal (CC64)" in about and "soft pedal (CC67)" in about
    (description,) = (d.text for d in ET.parse(SCRIPTS / "index.xml").getroot().iter("description"))
    plain = re.sub(r"[*`]", "", about)
    for paragraph in (p.replace("\n", " ") for p in plain.split("\n\n")):
        text = paragraph.lstrip("# ").replace("\\", "\\\\")
        assert text in description, text


def test_shared_constants_and_boilerplate_are_defined_once():
    sources = {f: (SCRIPTS / f).read_text(encoding="utf-8") for f in LUA_FILES}
    for pattern in (r"PROTOCOL\s*=\s*1", r"EXT_SECTION\s*=\s*'reascribe'", r"reaper\.EnumProjects\(i",
                    r"'inbox', request\.id"):  # one place writes requests: the Transcribe actions share it
        defined = [f for f, text in sources.items() if re.search(pattern, text)]
        assert len(defined) == 1, (pattern, defined)
    callers = [f for f, text in sources.items() if "spool.read_settings(" in text or "spool.resolve_dir(" in text]
    assert callers == ["reascribe/spool.lua"], callers
