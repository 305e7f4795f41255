"""Drop folders: audio saved into a watched folder becomes a MIDI file beside it, once.

Audio dropped into a drop folder itself is transcribed as piano; into its subfolder named after
another kind (``<folder>/drums/``, created with the folder) as that kind: a producer sorts files by
where they drop them, with nothing to configure. ``<folder>/separate/`` splits audio into stem WAVs
in a new folder ``<stem> stems/`` beside it (a subfolder, so the stems are not taken as dropped
audio), ``<folder>/mix/`` separates it and transcribes every kind with a stem into one MIDI file, a
track per kind. Each of these folders is watched on its own and has its own ledger.

A file is taken when it is fully written: its size and modification time have not changed for
``stable_s`` and it can be opened. The MIDI goes beside it (or to ``out_dir``) as ``<stem>.mid``,
or ``<stem> (2).mid`` when that exists (chords also write the segments beside the MIDI as
``<stem>.lab``, numbered the same way); a failure leaves a new note ``<name>.reascribe-error.txt``
beside the audio (``song.wav.reascribe-error.txt``; a numbered name when that is taken).
``<folder>/.reascribe/processed.json`` remembers every file taken, by name, size and modification
time, so a file is never processed twice, across restarts; a changed file (or a new copy) is new. It
also records the notes reascribe wrote: only those are removed, when a later version of the same file
ends.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from reascribe.errors import ReascribeError
from reascribe.jobs import Job, JobState
from reascribe.midi_out import unique_path
from reascribe.protocol import KINDS, MIX, SEPARATE
from reascribe.spool import write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_KIND = "piano"  # of audio dropped into a drop folder itself
# <folder>/<kind>/ holds audio of that kind
KIND_SUBFOLDERS = (*(kind for kind in KINDS if kind != DEFAULT_KIND), SEPARATE, MIX)
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".bwf", ".rf64", ".w64", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga",
    ".mp3", ".caf", ".au", ".m4a", ".aac", ".wma", ".opus", ".alac", ".mp4",
})
# Names browsers, editors and copy tools give files they are still writing.
TEMP_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", "~")
STABLE_S = 1.5  # a file unchanged this long is taken as fully written
MIN_POLL_S = 0.25  # the soonest a settling file is looked at again
LEDGER_FOLDER = ".reascribe"
LEDGER_NAME = "processed.json"
ERROR_NOTE_SUFFIX = ".reascribe-error.txt"  # appended to the audio file's whole name
NOTE_TRIES = 5  # names tried when another file takes the chosen one between the look and the create

Submit = Callable[[Path, Path, str, Callable[[Job], None]], object]


def accepts(name: str) -> bool:
    """Whether a file of this name is audio to transcribe (not hidden, temporary or one of ours)."""
    if name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES):
        return False
    return Path(name).suffix.lower() in AUDIO_EXTENSIONS


@dataclass
class _Settling:
    size_bytes: int
    mtime_ns: int
    since_s: float  # monotonic time since when size and mtime are unchanged


class _Ledger:
    """``<folder>/.reascribe/processed.json``: {"<name>|<size>|<mtime_ns>": what became of it}."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LEDGER_FOLDER / LEDGER_NAME
        self.entries: dict[str, dict] = {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            aside = self.path.with_name(f"{LEDGER_NAME}.unreadable-{time.time_ns()}")
            log.error("the drop-folder ledger %s is unreadable (%s); moved it to %s, files in %s may be "
                      "transcribed again", self.path, exc, aside.name, folder)
            os.replace(self.path, aside)
            return
        if isinstance(doc, dict):
            self.entries = doc

    @staticmethod
    def key(name: str, info: os.stat_result) -> str:
        return f"{name}|{info.st_size}|{info.st_mtime_ns}"

    def entries_of(self, name: str) -> list[dict]:
        """The entries of every version of the file ``name`` taken so far."""
        return [entry for key, entry in self.entries.items()
                if key.rsplit("|", 2)[0] == name and isinstance(entry, dict)]

    def record(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self.path.parent.mkdir(exist_ok=True)
        write_json_atomic(self.path, self.entries)


class DropFolders:
    """The watched folders; ``offer`` is called for every file event, ``poll`` while files settle.

    ``offer`` and ``poll`` run on one thread (the daemon's intake). ``submit(audio_path, midi_path,
    kind, on_finished)`` queues the job; ``on_finished(job)`` is called when it ends, on the job
    dispatcher's thread.
    """

    def __init__(self, folders: list[Path], out_dir: Path | None, submit: Submit, stable_s: float = STABLE_S) -> None:
        # Every folder watched, with the kind of the audio dropped into it; a folder listed in the
        # config is a drop folder even when it is the kind subfolder of another.
        self.kinds: dict[Path, str] = {Path(f) / kind: kind for f in folders for kind in KIND_SUBFOLDERS}
        self.kinds.update({Path(f): DEFAULT_KIND for f in folders})
        self.out_dir = Path(out_dir) if out_dir else None
        self.submit = submit
        self.stable_s = stable_s
        self._lock = threading.Lock()  # the ledgers and the in-flight set are shared with on_finished
        self._ledgers: dict[Path, _Ledger] = {}
        self._settling: dict[Path, _Settling] = {}
        self._in_flight: dict[Path, Path] = {}  # audio -> the MIDI path reserved for it

    def create(self) -> None:
        """Create missing folders and read the ledgers."""
        for folder in [*self.kinds, *([self.out_dir] if self.out_dir else [])]:
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                log.info("created the drop folder %s", folder)
        for folder in self.kinds:
            self._ledgers[folder] = _Ledger(folder)

    def offer(self, path: Path, now_s: float | None = None) -> None:
        """Start watching ``path`` settle, unless it was processed, is being processed, or is no audio."""
        path = Path(path)
        ledger = self._ledgers.get(path.parent)
        if ledger is None or not accepts(path.name):
            return
        try:
            info = path.stat()
        except FileNotFoundError:
            self._settling.pop(path, None)
            return
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return  # an empty file is still being created; its next write brings it back here
        with self._lock:
            if path in self._in_flight or _Ledger.key(path.name, info) in ledger.entries:
                return
        if path not in self._settling:
            log.debug("waiting for %s to be fully written", path)
            self._settling[path] = _Settling(info.st_size, info.st_mtime_ns, _now(now_s))

    def poll(self, now_s: float | None = None) -> float | None:
        """Submit the files that settled; seconds until the next look, or None when none is settling."""
        now = _now(now_s)
        for path, settling in list(self._settling.items()):
            try:
                info = path.stat()
            except FileNotFoundError:
                del self._settling[path]
                continue
            if (info.st_size, info.st_mtime_ns) != (settling.size_bytes, settling.mtime_ns):
                self._settling[path] = _Settling(info.st_size, info.st_mtime_ns, now)
            elif now - settling.since_s >= self.stable_s:
                if _readable(path):
                    del self._settling[path]
                    self._submit(path, info)
                else:
                    settling.since_s = now  # locked by its writer (Windows): look again later
        if not self._settling:
            return None
        return max(MIN_POLL_S, min(s.since_s + self.stable_s - now for s in self._settling.values()))

    def _submit(self, path: Path, info: os.stat_result) -> None:
        key = _Ledger.key(path.name, info)
        kind = self.kinds[path.parent]
        folder = self.out_dir or path.parent
        with self._lock:
            if kind == SEPARATE:  # write_stems numbers the files in it, never the folder
                target = folder / f"{path.stem} stems"
            else:
                target = unique_path(folder / f"{path.stem}.mid", set(self._in_flight.values()))
            self._in_flight[path] = target
        log.info("transcribing the dropped file %s into %s (%s)", path, target, kind)

        def finished(job: Job) -> None:
            self._finished(path, key, job)

        try:
            self.submit(path, target, kind, finished)
        except ReascribeError as exc:  # the daemon is stopping: the file is taken at the next start
            log.info("not transcribing %s now: %s", path, exc)
            with self._lock:
                self._in_flight.pop(path, None)

    def _finished(self, path: Path, key: str, job: Job) -> None:
        with self._lock:
            self._in_flight.pop(path, None)
            ledger = self._ledgers[path.parent]
            note = None
            if job.state in (JobState.DONE, JobState.FAILED):
                _remove_notes(ledger, path)  # of earlier failed versions of this file: a new outcome replaces them
            if job.state is JobState.FAILED:
                note = _write_note(path, job.error)
                log.warning("could not transcribe the dropped file %s: %s", path, job.error)
            elif job.state is JobState.DONE:
                log.info("wrote %s", job.output)
            entry = {"state": job.state.value, "output": str(job.output) if job.output else None,
                     "error": job.error, "job": job.id, "at": time.time(), "note": str(note) if note else None}
            try:
                ledger.record(key, entry)
            except OSError as exc:
                log.error("cannot record %s in the drop-folder ledger: %s", path.name, exc)


def _write_note(audio: Path, error: str | None) -> Path | None:
    """A new file beside ``audio`` that says why it failed; never replaces or follows an existing one."""
    text = (f'reascribe could not transcribe "{audio.name}":\n\n{error}\n\n'
            "It is not tried again as it is. To retry, fix the problem and save or copy the file "
            "into this folder again.\n")
    taken: set[Path] = set()
    for _ in range(NOTE_TRIES):
        try:
            note = unique_path(audio.with_name(f"{audio.name}{ERROR_NOTE_SUFFIX}"), taken)
            with open(note, "x", encoding="utf-8") as f:
                f.write(text)
            return note
        except FileExistsError as exc:
            if exc.filename is None:  # unique_path found no free name
                break
            taken.add(Path(exc.filename))  # made meanwhile, or a dangling link that exists() does not see
        except OSError as exc:
            log.error("cannot write a note on why %s failed: %s", audio, exc)
            return None
    log.error("cannot write a note on why %s failed: every name tried was taken", audio)
    return None


def _remove_notes(ledger: _Ledger, audio: Path) -> None:
    """Delete the notes the ledger says reascribe wrote for earlier versions of ``audio``."""
    for entry in ledger.entries_of(audio.name):
        recorded = entry.get("note")
        if not isinstance(recorded, str):
            continue
        note = Path(recorded)
        entry["note"] = None  # the ledger is written right after this
        if note.parent != audio.parent or not note.name.startswith(audio.name):
            log.warning("not removing %s: the ledger names a file that is not a note of %s", note, audio.name)
            continue
        try:
            if stat.S_ISREG(note.lstat().st_mode):
                note.unlink()
                log.info("removed %s, the note on an earlier version of %s", note.name, audio.name)
        except FileNotFoundError:
            pass  # the user removed it already
        except OSError as exc:
            log.error("cannot remove %s: %s", note, exc)


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        log.debug("%s cannot be opened yet: %s", path, exc)
        return False
    return True


def _now(now_s: float | None) -> float:
    return time.monotonic() if now_s is None else now_s
