"""The daemon: the spool, the job queue and its worker, file watching, OSC and the heartbeat, composed.

Threads of the daemon process, none of which runs a model:

- intake: takes what the watchers and rescans found (requests, cancel markers, dropped files) off
  one queue, admits it and queues jobs; it also looks at drop-folder files while they settle;
- jobs: hands jobs to the worker process and records what comes back (``jobs.Jobs``);
- watchdog observer, debouncer and rescan threads (``watch.Watch``); the OSC server thread;
- heartbeat: ``daemon.heartbeat`` every 2 s, as long as the intake, jobs and rescan threads live (when
  one has died the heartbeat stops, so ``reascribe status`` and REAPER see the daemon as down).

One daemon serves a spool: ``daemon.lock`` in the spool is locked by the running daemon (the OS
releases the lock when a process dies, so a stale lock of a killed daemon is simply taken over).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
from pathlib import Path
from typing import IO, Any

from reascribe import PROTOCOL_VERSION, __version__
from reascribe.config import Config
from reascribe.dropfolder import DropFolders, accepts
from reascribe.errors import ReascribeError, RequestError
from reascribe.jobs import DEFAULT_PIPELINE_FACTORY, Job, Jobs, JobState
from reascribe.midi_out import unique_path
from reascribe.osc import OscServer, parse_host_port, poke_reaper
from reascribe.protocol import KINDS, is_valid_id
from reascribe.spool import ACTIVE_JOB_STATES, JSON_SUFFIX, Spool
from reascribe.watch import Found, Watch, WatchedFolder

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
GRACE_S = 30.0  # how long the first stop signal lets the running job finish
STOP_TICK_S = 0.2  # how often ``run`` looks at the signal flags
INTAKE_RETRY_S = 1.0  # after a failed look at the settling drop files, the next look is this much later
STATUS_FINISHED_JOBS = 10  # ended jobs in a status reply, which must fit one UDP datagram
LOCK_NAME = "daemon.lock"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STOP = object()  # posted to the intake queue to end its thread


class InstanceLock:
    """An exclusive OS lock on ``<spool>/daemon.lock``, which holds the pid of its owner."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        f = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="ascii")
        try:
            _lock(f)
        except OSError:
            holder = _read_pid(f)
            f.close()
            raise ReascribeError(
                f"Another reascribe daemon (pid {holder}) already serves the spool {self.path.parent}; "
                "stop it first, or give this one its own --spool."
            ) from None
        previous = _read_pid(f)
        if previous != "?":
            log.info("took over the lock of a daemon that stopped without releasing it (pid %s)", previous)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()  # an empty lock file means a clean stop
        self._file.close()  # closing releases the OS lock
        self._file = None


def _lock(f: IO[str]) -> None:
    if os.name == "nt":
        import msvcrt

        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(f: IO[str]) -> str:
    try:
        f.seek(0)
        text = f.read(32).strip()
    except OSError:  # Windows: the region is locked by its owner
        return "?"
    return text if text.isdigit() else "?"


class Daemon:
    """``run()`` serves until SIGINT/SIGTERM; ``start()``/``stop()`` do the same without signals."""

    def __init__(self, config: Config, pipeline_factory: str = DEFAULT_PIPELINE_FACTORY, *,
                 grace_s: float = GRACE_S, show_progress: bool | None = None,
                 preload: tuple[str, ...] = KINDS) -> None:
        self.config = config
        self.grace_s = grace_s
        if config.reaper_osc:
            parse_host_port(config.reaper_osc)  # refuse a bad setting now, not at the first result
        self.spool = Spool(Path(os.path.abspath(config.spool_dir)), config.max_attempts)
        self.lock = InstanceLock(self.spool.root / LOCK_NAME)
        self.jobs = Jobs(
            self.spool,
            [Path(p) for p in config.allowed_roots],
            pipeline_factory=pipeline_factory,
            max_attempts=config.max_attempts,
            torch_threads=config.torch_threads,
            preload=preload,
            on_result=self._result_ready,
        )
        drop_dirs = [Path(os.path.abspath(d)) for d in config.drop_dirs]
        self.drops = DropFolders(drop_dirs, config.drop_out_dir, self._submit_drop)
        self.watch = Watch(
            [
                WatchedFolder(self.spool.inbox, "request", lambda name: name.endswith(JSON_SUFFIX)),
                WatchedFolder(self.spool.cancel, "cancel", is_valid_id),
                *(WatchedFolder(d, "drop", accepts) for d in self.drops.kinds),
            ],
            self._found,
        )
        self.osc: OscServer | None = None
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self._intake: queue.Queue = queue.Queue()
        self._intake_thread = threading.Thread(target=self._intake_loop, name="reascribe-intake")
        self._heartbeat_stop = threading.Event()
        self._stopping = threading.Event()  # stop() has begun: threads that end now were told to
        self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="reascribe-heartbeat")
        self._log_handler: logging.Handler | None = None
        self._signals = 0
        self._stop_requested = threading.Event()
        self._started: list[str] = []

    # -- life cycle --

    def start(self) -> None:
        self.spool.create()
        self.lock.acquire()
        self._started.append("lock")
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise

    def _start_parts(self) -> None:
        if self.config.log_file:
            self._log_handler = logging.FileHandler(self.config.log_file, encoding="utf-8")
            self._log_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            logging.getLogger().addHandler(self._log_handler)
        self.osc = OscServer(self, self.config.osc_host, self.config.osc_port)  # binds: fails early
        self._banner()
        requeued = self.spool.recover()
        if requeued:
            log.warning("resuming %d job(s) interrupted when the daemon last stopped: %s", len(requeued),
                        ", ".join(requeued))
        self.drops.create()
        if self.show_progress:
            self.jobs.add_listener(_ProgressBars().update)
        self.jobs.start()
        self._started.append("jobs")
        self._intake_thread.start()
        self._started.append("intake")
        self.watch.start()
        self._started.append("watch")
        self.osc.start()
        self._heartbeat_thread.start()
        self._started.append("heartbeat")

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (or ``request_stop``): the first lets the running job finish for
        up to ``grace_s``, a second stops at once. Returns the exit status."""
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handlers[signum] = signal.signal(signum, self._on_signal)
        try:
            self.start()
            while not self._signals and not self._stop_requested.wait(STOP_TICK_S):
                pass
            running = self.jobs.counts()[1]
            if running:
                log.warning("stopping: job %s may finish for up to %.0f s; stop again to stop at once", running,
                            self.grace_s)
        finally:
            self.stop()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return 0

    def request_stop(self) -> None:
        self._stop_requested.set()

    def stop(self) -> None:
        """Stop everything that was started, in an order that lets a running job finish."""
        if not self._started:
            return
        self._stopping.set()
        if "jobs" in self._started:
            self.jobs.shutdown(self.grace_s, force_requested=lambda: self._signals >= 2)
        if "watch" in self._started:
            self.watch.stop()
        if self.osc is not None:
            self.osc.stop()
            self.osc = None
        if "intake" in self._started:
            self._intake.put(_STOP)
            self._intake_thread.join()
        if "heartbeat" in self._started:
            self._heartbeat_stop.set()
            self._heartbeat_thread.join()
        if "lock" in self._started:
            self.spool.remove_daemon_heartbeat()
            self.lock.release()
        self._started.clear()
        log.info("reascribe daemon stopped")
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1  # only a flag: ``run`` does the work

    def _banner(self) -> None:
        c = self.config
        log.info("reascribe daemon %s (protocol %d), pid %d", __version__, PROTOCOL_VERSION, os.getpid())
        log.info("spool: %s (at most %d attempts per job)", self.spool.root, c.max_attempts)
        for folder, kind in self.drops.kinds.items():
            log.info("drop folder (%s): %s -> MIDI %s", kind, folder, c.drop_out_dir or "beside the audio")
        log.info("allowed roots besides each project: %s", ", ".join(map(str, c.allowed_roots)) or "none")
        assert self.osc is not None
        log.info("OSC commands on %s:%d; REAPER poke: %s", *self.osc.address, c.reaper_osc or "off")
        log.info("pipelines: %s, torch threads: %s, log file: %s", self.jobs.pipeline_factory,
                 c.torch_threads or "default", c.log_file or "none")

    # -- intake (one thread: admits requests, cancels, drop-folder files) --

    def _found(self, found: Found) -> None:
        self._intake.put(found)

    def _intake_loop(self) -> None:
        timeout_s: float | None = None
        while True:
            try:
                item = self._intake.get(timeout=timeout_s)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if item is not None:
                    self._take(item)
            except Exception:  # a full disk, a vanished folder or a bug: one item must not end the intake
                log.exception("cannot take %s", item)
            try:
                timeout_s = self.drops.poll()
            except Exception:
                log.exception("cannot look at the drop folders' settling files")
                timeout_s = INTAKE_RETRY_S

    def _take(self, found: Found) -> None:
        if found.kind == "request":
            if self.jobs.is_active(found.path.name[: -len(JSON_SUFFIX)]):
                return
            request = self.spool.admit(found.path.name)
            if request is not None:
                self.jobs.submit_request(request.id, request.kind)
        elif found.kind == "cancel":
            self._cancel_marker(found.path.name)
        else:
            self.drops.offer(found.path)

    def _cancel_marker(self, job_id: str) -> None:
        if self.jobs.cancel(job_id):
            return
        inbox_name = f"{job_id}{JSON_SUFFIX}"
        if (self.spool.inbox / inbox_name).exists():
            self.spool.admit(inbox_name)  # answers it as cancelled
        elif self.spool.has_result(job_id) or self.jobs.get(job_id) is not None:
            self.spool.clear_cancel(job_id)  # too late: the job has ended
        # else: the request may not be published yet; admit() sees the marker when it comes

    def _submit_drop(self, audio_path: Path, midi_path: Path, kind: str, on_finished: Any) -> Job:
        return self.jobs.submit_file(audio_path, kind, midi_path, {}, on_finished=on_finished)

    # -- results and the heartbeat --

    def _result_ready(self, job: Job) -> None:
        """A spool result is committed: tell REAPER to apply it now, when we know how."""
        if not self.config.reaper_osc:
            return
        action = self.spool.read_bridge_heartbeat().get("apply_action")
        if isinstance(action, str) and action:
            poke_reaper(self.config.reaper_osc, action)
        else:
            log.debug("no apply_action in bridge.heartbeat; REAPER applies %s at its next poll", job.id)

    def _heartbeat_loop(self) -> None:
        while True:
            dead = self._dead_threads()
            if dead:
                log.error("the daemon's %s thread stopped after an unexpected error (see the log above); it no "
                          "longer writes its heartbeat, so REAPER and 'reascribe status' see it as down. Restart "
                          "the daemon.", " and ".join(dead))
                return
            queued, running = self.jobs.counts()
            try:
                self.spool.write_daemon_heartbeat(queued, running)
            except OSError as exc:
                log.warning("cannot write the heartbeat: %s", exc)
            if self._heartbeat_stop.wait(HEARTBEAT_S):
                return

    def _dead_threads(self) -> list[str]:
        """Names of the threads the daemon cannot work without that have ended (before a stop)."""
        if self._stopping.is_set():
            return []
        alive = {"jobs": self.jobs.is_alive(), "intake": self._intake_thread.is_alive(),
                 "rescan": self.watch.is_alive()}
        return [name for name, ok in alive.items() if not ok]

    # -- OSC commands (osc.OscCommands) --

    def transcribe(self, audio_path: Path, kind: str, out_path: Path | None) -> str:
        """Queue an OSC file job. Anyone on this machine can send OSC, so the daemon reads only audio in
        the drop folders and ``allowed_roots`` and writes only beside it, to ``drop_out_dir`` or into
        ``allowed_roots`` (all compared with symbolic links resolved)."""
        allowed = _real_paths(self.config.allowed_roots)
        audio = Path(os.path.realpath(audio_path))
        if not _inside(audio, [*_real_paths(self.config.drop_dirs), *allowed]):
            raise RequestError(
                f"The audio file {audio_path} is outside the folders reascribe reads for OSC requests; add its "
                "folder to allowed_roots in reascribe's config, or put the file in a drop folder (drop_dirs)."
            )
        if not audio.is_file():
            raise RequestError(f"The audio file {audio_path} does not exist.")
        if out_path is None:
            target = unique_path(audio.parent / f"{audio.stem}.mid")
        else:
            out = Path(os.path.realpath(out_path))
            writable = [audio.parent, *_real_paths([self.config.drop_out_dir] if self.config.drop_out_dir else []),
                        *allowed]
            if not _inside(out if out.is_dir() else out.parent, writable):
                raise RequestError(
                    f"The output {out_path} is outside the folders reascribe writes for OSC requests (the audio "
                    "file's folder, drop_out_dir and allowed_roots); choose one of those, or add its folder to "
                    "allowed_roots in reascribe's config."
                )
            if out.is_dir():
                target = unique_path(out / f"{audio.stem}.mid")
            elif os.path.lexists(out_path):
                raise RequestError(f"{out_path} already exists; reascribe never overwrites a file.")
            elif not out.parent.is_dir():
                raise RequestError(f"The folder {out_path.parent} does not exist.")
            else:
                target = out
        return self.jobs.submit_file(audio, kind, target, {}).id

    def cancel(self, job_id: str) -> bool:
        if self.jobs.cancel(job_id):
            return True
        if (self.spool.inbox / f"{job_id}{JSON_SUFFIX}").exists():
            self.spool.request_cancel(job_id)  # the intake answers it through the marker
            self._intake.put(Found("cancel", self.spool.cancel / job_id))
            return True
        return False

    def status(self) -> dict:
        queued, running = self.jobs.counts()
        jobs = self.jobs.snapshot()
        active = [j for j in jobs if j["state"] in ACTIVE_JOB_STATES]
        ended = [j for j in jobs if j not in active][-STATUS_FINISHED_JOBS:]
        return {"pid": os.getpid(), "version": __version__, "protocol": PROTOCOL_VERSION,
                "spool": str(self.spool.root), "queued": queued, "running": running, "jobs": active + ended}


def _real_paths(paths: list[Path]) -> list[Path]:
    return [Path(os.path.realpath(p)) for p in paths]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


class _ProgressBars:
    """A tqdm bar per running job on the terminal of a foreground daemon."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bars: dict[str, Any] = {}

    def update(self, job: Job) -> None:
        bar = self._bars.get(job.id)
        if job.state is JobState.RUNNING:
            if bar is None:
                bar = self._bars[job.id] = self._tqdm(total=100, unit="%", desc=f"{job.kind} {job.id}", leave=False)
            bar.set_postfix_str(job.message, refresh=False)
            bar.update(round(job.progress * 100) - bar.n)
        elif bar is not None and job.state.finished:
            bar.close()
            del self._bars[job.id]
