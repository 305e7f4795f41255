"""File watching: watchdog observers that only filter and hand names on, plus a slow safety-net rescan.

Handlers run on watchdog's observer thread while it holds its lock, so they do nothing but filter a
name and pass it to a debouncer; the debouncer coalesces a burst (a publish is created + modified +
moved) into one call of ``sink`` per path. Events can be lost (an overflowing inotify queue, a
network share, a folder replaced while watched), so every ``rescan_s`` each folder is listed again.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.utils.event_debouncer import EventDebouncer

log = logging.getLogger(__name__)

RESCAN_S = 5.0
DEBOUNCE_S = 0.2


class Found(NamedTuple):
    kind: str  # the ``kind`` of the WatchedFolder it was found in
    path: Path


@dataclass(frozen=True)
class WatchedFolder:
    path: Path
    kind: str  # what the daemon does with what appears here: "request", "cancel", "drop"
    accepts: Callable[[str], bool]  # filters file names


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: WatchedFolder, debouncer: EventDebouncer) -> None:
        self.folder = folder
        self.debouncer = debouncer

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        path = Path(os.fsdecode(event.dest_path if event.event_type == "moved" else event.src_path))
        if path.parent == self.folder.path and self.folder.accepts(path.name):  # a move may leave the folder
            self.debouncer.handle_event(Found(self.folder.kind, path))  # type: ignore[arg-type]


class Watch:
    """Observers on ``folders`` (not recursive) and a rescan thread; everything found goes to ``sink``.

    ``sink`` is called on the debouncer and rescan threads; it should only enqueue.
    """

    def __init__(self, folders: list[WatchedFolder], sink: Callable[[Found], None], rescan_s: float = RESCAN_S,
                 debounce_s: float = DEBOUNCE_S) -> None:
        self.folders = folders
        self.sink = sink
        self.rescan_s = rescan_s
        self._debouncer = EventDebouncer(debounce_s, self._flush)
        self._observer: Observer | None = None  # made in start(): watchdog's inotify observer starts a thread at once
        self._stop = threading.Event()
        self._rescanner = threading.Thread(target=self._rescan_loop, name="reascribe-rescan")

    def start(self) -> None:
        self._observer = Observer()
        for folder in self.folders:
            self._observer.schedule(_Handler(folder, self._debouncer), str(folder.path), recursive=False)
            log.info("watching %s for %s files", folder.path, folder.kind)
        self._debouncer.start()
        self._observer.start()
        self._rescanner.start()  # its first pass finds what arrived while nothing was watching

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        self._debouncer.stop()
        if self._debouncer.is_alive():
            self._debouncer.join()
        if self._rescanner.is_alive():
            self._rescanner.join()

    def is_alive(self) -> bool:
        """Whether the rescan thread, the safety net that finds what events miss, is running."""
        return self._rescanner.is_alive()

    def __enter__(self) -> "Watch":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def rescan(self) -> None:
        """List every folder and pass on all that its filter accepts."""
        for folder in self.folders:
            try:
                names = sorted(os.listdir(folder.path))
            except OSError as exc:
                log.warning("cannot list %s: %s", folder.path, exc)
                continue
            for name in names:
                if folder.accepts(name):
                    self.sink(Found(folder.kind, folder.path / name))

    def _rescan_loop(self) -> None:
        while True:
            try:
                self.rescan()
            except Exception:  # a bug must not end the safety net
                log.exception("the rescan of the watched folders failed")
            if self._stop.wait(self.rescan_s):
                return

    def _flush(self, events: list[Found]) -> None:
        for found in dict.fromkeys(events):  # one call per path, in arrival order
            self.sink(found)
