"""Shared by the daemon tests: a tiny real pipeline, test audio and request documents.

The worker process imports the pipeline through ``Jobs(pipeline_factory="daemon_support:make_fast")``
(or the daemon's ``--pipeline-factory``), so this folder must be on the worker's ``sys.path``: pytest
puts it there for the test process and spawned workers inherit it; a daemon subprocess gets it
through ``PYTHONPATH``. The pipeline emits one note per onset that librosa detects; ``make_slow``
sleeps at every progress step, so a test can cancel or kill a job while it runs. When
``REASCRIBE_TEST_LOAD_LOG`` names a file, every ``load`` appends its pid there, so a test can count
model loads.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import pytest
import soundfile as sf

from reascribe.audio import AudioSection
from reascribe.events import Events, NoteEvent
from reascribe.pipelines import Progress

LOAD_LOG_ENV = "REASCRIBE_TEST_LOAD_LOG"
STEPS = 20
NOTE_PITCH_MIDI = 60
NOTE_LENGTH_S = 0.1
SLOW_STEP_S = 0.15  # 20 steps: 3 s per job
SR = 22050
CLICK_TIMES_S = (0.5, 1.0, 1.5, 2.0, 2.5)
CLICKS_DURATION_S = 3.0


class OnsetPipeline:
    kind = "piano"
    sample_rate = SR
    mono = True

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.loaded = False

    def load(self) -> None:
        log_path = os.environ.get(LOAD_LOG_ENV)
        if log_path:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
        self.loaded = True

    def run(self, audio: AudioSection, options: dict[str, Any], progress: Progress) -> Events:
        assert self.loaded, "run before load"
        for step in range(STEPS):
            progress(step / STEPS, f"listening ({step + 1}/{STEPS})")
            time.sleep(self.step_s)
        y = audio.samples[:, 0].astype(np.float32)
        onsets_s = librosa.onset.onset_detect(y=y, sr=audio.sample_rate, units="time")
        progress(1.0, "done")
        return Events([NoteEvent(float(t), float(t) + NOTE_LENGTH_S, NOTE_PITCH_MIDI, 100) for t in onsets_s])


def make_fast(kind: str, num_threads: int | None = None) -> OnsetPipeline:
    return OnsetPipeline(0.0)


def make_slow(kind: str, num_threads: int | None = None) -> OnsetPipeline:
    return OnsetPipeline(SLOW_STEP_S)


def write_clicks(path: Path) -> Path:
    """A WAV of short decaying 440 Hz tones at CLICK_TIMES_S."""
    t = np.arange(int(SR * CLICKS_DURATION_S)) / SR
    y = np.zeros_like(t)
    for start_s in CLICK_TIMES_S:
        tail = t >= start_s
        y[tail] += np.sin(2 * np.pi * 440 * (t[tail] - start_s)) * np.exp(-(t[tail] - start_s) * 30)
    sf.write(path, 0.5 * y, SR)
    return path


def make_project(root: Path) -> tuple[Path, Path]:
    """A saved project folder with a clicks WAV in its Media folder: (project folder, WAV)."""
    (root / "Media").mkdir(parents=True)
    (root / "song.rpp").write_text("<REAPER_PROJECT\n>\n")
    return root, write_clicks(root / "Media" / "clicks.wav")


def request_doc(req_id: str, project: Path, source: Path, **overrides: Any) -> dict:
    doc = {
        "protocol": 1,
        "id": req_id,
        "kind": "piano",
        "created_at": time.time(),
        "ttl_s": 86400,
        "client": "tests",
        "project": {"file": str(project / "song.rpp"), "dir": str(project), "media_dir": str(project / "Media")},
        "tempo_map": {"bpm": 120, "num": 4, "denom": 4, "markers": []},
        "time_selection": None,
        "options": {},
        "items": [{
            "item_guid": "{ITEM}", "take_guid": "{TAKE}", "name": "Clicks", "track": "Keys",
            "source": {"path": str(source), "size_bytes": source.stat().st_size},
            "position_s": 0.0, "length_s": CLICKS_DURATION_S, "start_offset_s": 0.0, "playrate": 1.0,
            "loop": False, "stretch_markers": 0,
        }],
    }
    doc.update(overrides)
    return doc


def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class ThreadLeakCheck:
    """Fails a test that leaves threads behind (watchdog's conftest does the same)."""

    def __init__(self) -> None:
        self.before = set(threading.enumerate())

    def leaked(self, settle_s: float = 2.0) -> list[threading.Thread]:
        deadline = time.monotonic() + settle_s
        while True:
            extra = [t for t in threading.enumerate() if t not in self.before and t.is_alive()]
            if not extra or time.monotonic() > deadline:
                return extra
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Autouse in the modules that import it: a test must join every thread it started."""
    check = ThreadLeakCheck()
    yield
    leaked = check.leaked()
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"
