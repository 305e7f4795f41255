"""Fixtures and helpers for the Lua ReaScript tests (real Lua 5.4 through lupa, fake REAPER).

Import the fixtures into a test module: ``from conftest_lua import fake, spool  # noqa: F401``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from reaper_fake import FakeReaper

SPOOL_SUBDIRS = ("inbox", "processing", "archive", "outbox", "done", "failed", "jobs", "cancel")
TRANSCRIBE = "reascribe_Transcribe piano.lua"
TRANSCRIBE_DRUMS = "reascribe_Transcribe drums.lua"
BRIDGE = "reascribe_Bridge.lua"
APPLY = "reascribe_Apply results.lua"
SHOW_JOBS = "reascribe_Show jobs.lua"
REGISTER = "reascribe_Register actions.lua"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    root = tmp_path / "spool"
    for sub in SPOOL_SUBDIRS:
        (root / sub).mkdir(parents=True)
    return root


def _fake_reaper(tmp_path: Path, spool: Path, windows: bool):
    reaper = FakeReaper(tmp_path, env={"REASCRIBE_SPOOL": str(spool)}, windows=windows)
    yield reaper
    reaper.stop_all()
    reaper.assert_clean()


@pytest.fixture
def fake(tmp_path: Path, spool: Path):
    """A fake REAPER with the scripts installed and REASCRIBE_SPOOL pointing at ``spool``.

    The test fails at teardown if any script broke a REAPER rule (see FakeReaper.assert_clean).
    """
    yield from _fake_reaper(tmp_path, spool, windows=False)


@pytest.fixture(name="fake", params=[False, True], ids=["posix", "windows"])
def fake_posix_and_windows(request, tmp_path: Path, spool: Path):
    """``fake``, once with POSIX file semantics and once with Windows' (os.rename refuses an existing
    target). Import it instead of ``fake``: ``from conftest_lua import fake_posix_and_windows``."""
    yield from _fake_reaper(tmp_path, spool, windows=request.param)


def write_daemon_heartbeat(spool: Path, age_s: float = 0.0) -> None:
    doc = {"pid": 1, "version": "0.1.0", "protocol": 1, "time": time.time() - age_s, "queued": 0, "running": None}
    (spool / "daemon.heartbeat").write_text(json.dumps(doc))


def write_result(spool: Path, req_id: str, items: list[dict], status: str = "done", error: str | None = None,
                 folder: str = "outbox", kind: str = "piano") -> Path:
    """A daemon result (docs/protocol.md) written into outbox/ the way the daemon does (tmp + rename)."""
    doc = {"protocol": 1, "id": req_id, "kind": kind, "status": status, "error": error,
           "finished_at": time.time(), "daemon": "0.1.0", "items": items}
    path = spool / folder / f"{req_id}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return path


def result_item(item_guid: str, take_guid: str, notes=(), cc=(), status="done", error=None, **fields) -> dict:
    """One item of a result: notes [start_s, end_s, pitch, velocity] and cc [time_s, controller, value];
    ``fields`` adds others (channel, pitched). Without them it is what a daemon before them wrote."""
    return {"item_guid": item_guid, "take_guid": take_guid, "status": status, "error": error,
            "section": None, "notes": [list(n) for n in notes], "cc": [list(c) for c in cc], "artifact": None,
            **fields}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def copy_back(spool: Path, req_id: str) -> None:
    """Put an applied result back into outbox/ (as if the daemon or a user wrote it again)."""
    shutil.copyfile(spool / "done" / f"{req_id}.json", spool / "outbox" / f"{req_id}.json")


def only_request(spool: Path) -> Path:
    files = sorted((spool / "inbox").iterdir())
    assert len(files) == 1, files
    return files[0]
