"""The job queue of the daemon and its worker process.

The daemon process keeps the queue, the job records and the spool. One long-lived worker process
(started with "spawn": torch and threads do not survive ``fork``) loads each pipeline once, keeps it
warm and runs one job at a time, so a crash or leak in native code cannot take the OSC and
file-watching threads with it. A worker that dies is replaced; its job is retried up to
``max_attempts`` claims, then fails with a sentence.

Two kinds of jobs: spool requests (claimed from the inbox when the worker is free, answered with a
result file) and file jobs (a whole audio file to a MIDI file, or to stems: drop folders, OSC).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import multiprocessing
import os
import re
import secrets
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

from reascribe.errors import JobCancelled, ModelError, ReascribeError, RequestError
from reascribe.protocol import GENERATE, MIX, SEPARATE, Request, Result, Status
from reascribe.separation import DEFAULT_BACKEND
from reascribe.spool import CANCELLED_MESSAGE, JobState, Spool

log = logging.getLogger(__name__)

DEFAULT_PIPELINE_FACTORY = "reascribe.pipelines:create"
FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
PROGRESS_WRITE_INTERVAL_S = 0.25  # jobs/<id>.json and listeners: at most 4 updates a second per job
RESTART_DELAY_MAX_S = 30.0  # a worker that keeps dying without finishing a job is restarted this slowly
WORKER_EXIT_WAIT_S = 5.0
STOP_POLL_S = 0.2  # how often a graceful stop checks for a second signal
FINISHED_KEPT = 50  # finished jobs remembered for status replies
ERROR_PAUSE_S = 0.5  # after an unexpected error the dispatcher waits this long, so a lasting one cannot spin

__all__ = ["Job", "JobSource", "JobState", "Jobs", "new_file_job_id"]  # JobState lives in spool.py


class JobSource(str, Enum):
    SPOOL = "spool"  # a request in the spool; answered with a result file
    FILE = "file"  # a whole audio file to a MIDI file


@dataclass
class Job:
    id: str
    kind: str
    source: JobSource
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    message: str = "Waiting in the queue."
    attempts: int = 0
    audio_path: Path | None = None  # file jobs
    out_path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    output: Path | None = None  # the MIDI file a finished file job wrote
    error: str | None = None
    cancel_requested: bool = False  # set (under the lock) by cancel; a job that comes back to the queue keeps it
    on_finished: Callable[["Job"], None] | None = field(default=None, repr=False, compare=False)

    def snapshot(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state.value,
                "progress": round(self.progress, 4), "message": self.message}


@dataclass(frozen=True)
class _RequestTask:
    job_id: str
    kind: str
    request: Request
    allowed_roots: list[Path]


@dataclass(frozen=True)
class _FileTask:
    job_id: str
    kind: str
    audio_path: Path
    out_path: Path
    options: dict[str, Any]


Listener = Callable[[Job], None]


def new_file_job_id() -> str:
    return f"file-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


class Jobs:
    """The queue, the job records and the worker process.

    ``pipeline_factory`` is a ``"module:function"`` that the worker imports and calls as
    ``factory(kind, num_threads=torch_threads)`` to get an unloaded pipeline (tests name a small
    pipeline of their own). ``on_result(job)`` runs after
    a spool result is committed; ``add_listener`` callbacks see every (throttled) progress update.
    Callbacks run on the dispatcher thread (or on the thread that cancels a queued job) and must
    return quickly.
    """

    def __init__(
        self,
        spool: Spool,
        allowed_roots: list[Path],
        *,
        pipeline_factory: str = DEFAULT_PIPELINE_FACTORY,
        max_attempts: int = 3,
        torch_threads: int | None = None,
        preload: tuple[str, ...] = (),
        on_result: Callable[[Job], None] | None = None,
    ) -> None:
        if not FACTORY_PATTERN.match(pipeline_factory):
            raise RequestError(f"The pipeline factory {pipeline_factory!r} must look like 'package.module:function'.")
        self.spool = spool
        self.allowed_roots = list(allowed_roots)
        self.pipeline_factory = pipeline_factory
        self.max_attempts = max_attempts
        self.torch_threads = torch_threads
        self.preload = tuple(preload)
        self.on_result = on_result
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._finished: deque[str] = deque()
        self._listeners: list[Listener] = []
        self._last_write_s: dict[str, float] = {}
        # Keeps jobs/<id>.json writes and listener calls in the order of the changes, from any thread.
        self._write_lock = threading.RLock()
        self._cancel = self._ctx.Event()  # read by the worker's progress callback
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._stopping = threading.Event()
        self._force = threading.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._tasks_w: Connection | None = None
        self._events_r: Connection | None = None
        self._finished_since_start = False
        self._restart_delay_s = 0.0
        self._thread: threading.Thread | None = None

    # -- public API (any thread) --

    def start(self) -> None:
        self._start_worker()
        self._thread = threading.Thread(target=self._loop, name="reascribe-jobs")
        self._thread.start()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def submit_request(self, req_id: str, kind: str) -> Job | None:
        """Queue a request that is in the inbox; None if a job with this id is already queued or running."""
        with self._lock:
            if self._is_active(req_id) or self._stopping.is_set():
                return None
            job = Job(req_id, kind, JobSource.SPOOL)
            self._add(job)
        self._changed(job, force=True)
        self._wake()
        return job

    def submit_file(
        self,
        audio_path: Path,
        kind: str,
        out_path: Path,
        options: dict[str, Any] | None = None,
        on_finished: Callable[[Job], None] | None = None,
    ) -> Job:
        """Queue a whole audio file to become the MIDI file ``out_path`` (which must not exist); for a
        ``separate`` job, ``out_path`` is the folder its stems go into."""
        job = Job(new_file_job_id(), kind, JobSource.FILE, audio_path=Path(audio_path), out_path=Path(out_path),
                  options=dict(options or {}), on_finished=on_finished)
        with self._lock:
            if self._stopping.is_set():
                raise RequestError("The daemon is stopping and takes no new jobs.")
            self._add(job)
        self._changed(job, force=True)
        self._wake()
        return job

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued job (removed at once) or the running one (stops at its next progress step)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                return False
            already = job.cancel_requested
            job.cancel_requested = True  # seen by _task_for and _retry_or_fail, whatever happens next
            if job.state is JobState.RUNNING:
                self._cancel.set()
                job.message = "Cancelling..."
                log.info("cancelling running job %s", job_id)
                return True
            try:
                self._queue.remove(job)
            except ValueError:  # another caller is cancelling it already, or a stop left it out of the queue
                return already
        log.info("cancelled queued job %s", job_id)
        if job.source is JobSource.SPOOL and self.spool.claim(job.id) is None:
            log.info("request %s left the inbox before it was cancelled", job.id)
            self._forget(job)
            return True
        self._finish(job, JobState.CANCELLED, CANCELLED_MESSAGE)
        return True

    def is_alive(self) -> bool:
        """Whether the dispatcher thread runs (it ends only when ``shutdown`` stops it)."""
        return self._thread is not None and self._thread.is_alive()

    def is_active(self, job_id: str) -> bool:
        with self._lock:
            return self._is_active(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return dataclasses.replace(job) if job else None

    def counts(self) -> tuple[int, str | None]:
        """(number of queued jobs, id of the running job or None)."""
        with self._lock:
            return len(self._queue), self._running.id if self._running else None

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def shutdown(self, grace_s: float, force_requested: Callable[[], bool] = lambda: False) -> None:
        """Stop taking work; let the running job finish for up to ``grace_s``, then stop the worker.

        A job stopped this way stays in processing/, so the next start recovers it.
        """
        self._stopping.set()
        self._wake()
        if self._thread is None:
            self._wake_r.close()
            self._wake_w.close()
            return
        deadline = time.monotonic() + grace_s
        while self._thread.is_alive():
            if not self._force.is_set() and (force_requested() or time.monotonic() >= deadline):
                if self._running is not None:
                    log.warning("stopping the running job %s; it resumes when the daemon starts again",
                                self._running.id)
                self._force.set()
                self._wake()
            self._thread.join(STOP_POLL_S)
        self._wake_r.close()
        self._wake_w.close()

    # -- the dispatcher thread --

    def _loop(self) -> None:
        try:
            while not (self._stopping.is_set() and (self._running is None or self._force.is_set())):
                try:
                    self._step()
                except Exception:  # one bad job or message must not end the thread that runs them all
                    log.exception("the job dispatcher hit an unexpected error; it carries on")
                    self._force.wait(ERROR_PAUSE_S)
        finally:
            self._stop_worker()

    def _step(self) -> None:
        if self._events_r is None:  # an unexpected error stopped a restart of the worker: try again
            self._restart_worker()
            if self._events_r is None:
                return
        self._dispatch()
        assert self._process is not None and self._events_r is not None
        ready = wait([self._wake_r, self._events_r, self._process.sentinel])
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        if self._force.is_set():
            return
        if self._events_r in ready:
            self._receive()
        elif self._process.sentinel in ready:
            self._worker_died()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._running is not None or not self._queue or self._stopping.is_set():
                    return
                if self._process is None or not self._process.is_alive():
                    return
                job = self._queue.popleft()
                job.state = JobState.RUNNING
                job.message = "Starting."
                self._running = job
                self._cancel.clear()  # the job's own cancel_requested says whether it is cancelled
            try:
                task = self._task_for(job)
            except Exception as exc:
                log.exception("cannot start job %s", job.id)
                self._fail_after_error(job, f"reascribe could not start this job ({type(exc).__name__}: {exc}); "
                                            "the daemon log has the details.")
                continue
            if task is None:
                continue
            self._changed(job, force=True)
            try:
                assert self._tasks_w is not None
                self._tasks_w.send(task)
            except (BrokenPipeError, OSError) as exc:
                log.warning("cannot hand job %s to the worker: %s", job.id, exc)  # its death is seen next
            return

    def _task_for(self, job: Job) -> _RequestTask | _FileTask | None:
        """The worker's task for ``job``; None when the job ended here (gone, malformed, cancelled)."""
        if job.source is JobSource.FILE:
            if job.cancel_requested:
                self._finish(job, JobState.CANCELLED, CANCELLED_MESSAGE)
                return None
            job.attempts += 1
            assert job.audio_path is not None and job.out_path is not None
            return _FileTask(job.id, job.kind, job.audio_path, job.out_path, job.options)
        try:
            claim = self.spool.claim(job.id)
        except OSError as exc:  # a full disk (the attempt count is written), a folder made read-only
            log.error("cannot claim request %s: %s", job.id, exc)
            self._finish(
                job,
                JobState.FAILED,
                f"The daemon could not take this request out of the inbox ({exc.strerror or exc}); make sure the "
                f"disk that holds {self.spool.root} has free space and is writable, then run the action again.",
            )
            return None
        if claim is None:
            log.info("request %s left the inbox before it ran", job.id)
            self._forget(job)
            return None
        job.attempts = claim.attempts
        if job.cancel_requested or self.spool.cancel_requested(job.id):
            self._finish(job, JobState.CANCELLED, CANCELLED_MESSAGE)
            return None
        try:
            request = self.spool.read_request(claim)
        except RequestError as exc:
            self._finish(job, JobState.FAILED, str(exc))
            return None
        return _RequestTask(job.id, job.kind, request, self.allowed_roots)

    def _receive(self) -> None:
        assert self._events_r is not None
        try:
            message = self._events_r.recv()
        except (EOFError, OSError):
            self._worker_died()
            return
        try:
            self._handle(message)
        except Exception as exc:
            log.exception("cannot handle the worker message %r", message[:2])
            job = self._running
            if message[0] not in ("log", "progress") and job is not None and job.id == message[1]:
                # The job's end was lost: end it here, or it would hold the worker's slot forever.
                self._fail_after_error(job, f"reascribe could not record the end of this job "
                                            f"({type(exc).__name__}); the daemon log has the details.")

    def _handle(self, message: tuple) -> None:
        what = message[0]
        if what == "log":
            record: logging.LogRecord = message[1]
            logging.getLogger(record.name).handle(record)
            return
        job = self._running
        if job is None or job.id != message[1]:
            log.debug("ignoring a worker message for job %s, which is not running", message[1])
            return
        if what == "progress":
            job.progress, job.message = message[2], message[3]
            self._changed(job)
            return
        self._finished_since_start = True
        self._restart_delay_s = 0.0
        if what == "result":
            result: Result = message[2]
            state = {Status.DONE: JobState.DONE, Status.CANCELLED: JobState.CANCELLED}.get(result.status, JobState.FAILED)
            self._finish(job, state, result.error, result=result)
        elif what == "written":
            job.output = Path(message[2])
            self._finish(job, JobState.DONE, None)
        elif what == "cancelled":
            self._finish(job, JobState.CANCELLED, CANCELLED_MESSAGE)
        else:
            self._finish(job, JobState.FAILED, message[2])

    def _worker_died(self) -> None:
        assert self._process is not None
        self._process.join(WORKER_EXIT_WAIT_S)  # its pipes close a moment before it can be reaped
        reason = _exit_reason(self._process.exitcode)
        if self._process.is_alive():  # it closed its pipe but lives on: end it before replacing it
            self._process.kill()
            self._process.join()
        log.error("the worker process (pid %s) %s", self._process.pid, reason)
        with self._lock:
            job = self._running  # stays RUNNING (so a cancel now marks it) until _retry_or_fail decides
        if not self._finished_since_start:
            self._restart_delay_s = min(RESTART_DELAY_MAX_S, max(1.0, 2 * self._restart_delay_s))
        if job is not None:
            try:
                self._retry_or_fail(job, reason)
            except Exception:
                log.exception("cannot retry or fail job %s", job.id)
                self._fail_after_error(job, f"The transcription worker {reason}, and reascribe could not retry this "
                                            "job; the daemon log has the details.")
        self._close_worker_pipes()
        self._restart_worker()

    def _restart_worker(self) -> None:
        """Start a new worker, after the restart delay; returns without one only when stopping."""
        while not (self._restart_delay_s and self._stopping.wait(self._restart_delay_s)):
            try:
                self._start_worker()
                return
            except OSError:  # out of processes or file handles: wait and try again
                log.exception("cannot start a new worker process")
                self._restart_delay_s = min(RESTART_DELAY_MAX_S, max(1.0, 2 * self._restart_delay_s))

    def _retry_or_fail(self, job: Job, reason: str) -> None:
        """After the worker died on ``job``: cancel it if that was asked, retry it, or fail it.

        A cancel that arrives meanwhile sees the job RUNNING and only sets ``cancel_requested``; the
        state and the queue change together under the lock, so a cancel never finds a QUEUED job that
        is not in the queue.
        """
        if job.cancel_requested:
            self._finish(job, JobState.CANCELLED, CANCELLED_MESSAGE)
            return
        if job.attempts < self.max_attempts:
            log.warning("retrying job %s (attempt %d of %d failed)", job.id, job.attempts, self.max_attempts)
            if job.source is JobSource.SPOOL:
                try:
                    self.spool.requeue(job.id)
                except OSError as exc:
                    log.error("cannot re-queue request %s: %s", job.id, exc)
                    self._forget(job)
                    return
            with self._lock:
                if self._running is job:
                    self._running = None
                job.state, job.progress = JobState.QUEUED, 0.0
                job.message = f"Retrying: the transcription worker {reason}."
                self._queue.appendleft(job)  # a cancel from now on removes it; one before set cancel_requested
            self._changed(job, force=True)
            return
        times = f"{job.attempts} time{'s' if job.attempts != 1 else ''}"
        self._finish(
            job,
            JobState.FAILED,
            f"The transcription worker stopped {times} while working on this job (the last time it {reason}); "
            "it was not retried again. The daemon log may say why.",
        )

    def _finish(self, job: Job, state: JobState, error: str | None, result: Result | None = None) -> None:
        """Record the end of ``job``: the spool result first (the commit point), then the record."""
        if job.source is JobSource.SPOOL:
            if result is None:
                status = {JobState.CANCELLED: Status.CANCELLED}.get(state, Status.FAILED)
                result = Result.failure(job.id, job.kind, error or "", status)
            try:
                self.spool.write_result(result)
            except OSError:
                log.exception("cannot write the result of %s; it stays in processing/ for the next start", job.id)
                state, error = JobState.FAILED, "The result could not be written."
        job.state, job.error = state, error
        job.message = {JobState.DONE: "Done.", JobState.CANCELLED: CANCELLED_MESSAGE}.get(state, error or "Failed.")
        if state is JobState.DONE:
            job.progress = 1.0
        with self._lock:
            if self._running is job:
                self._running = None
            self._finished.append(job.id)
            while len(self._finished) > FINISHED_KEPT:
                self._jobs.pop(self._finished.popleft(), None)
        log.info("job %s %s%s", job.id, state.value, f": {error}" if error and state is not JobState.DONE else "")
        self._changed(job, force=True)
        if job.source is JobSource.SPOOL and self.on_result is not None:
            self._call(self.on_result, job)
        if job.on_finished is not None:
            self._call(job.on_finished, job)

    # -- worker process management (dispatcher thread, and start) --

    def _start_worker(self) -> None:
        tasks_r, tasks_w = self._ctx.Pipe(duplex=False)
        events_r, events_w = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_worker_main,
            name="reascribe-worker",
            args=(tasks_r, events_w, self._cancel, self.pipeline_factory, self.torch_threads, self.preload,
                  logging.getLogger().getEffectiveLevel()),
            daemon=True,
        )
        try:
            process.start()
        except OSError:
            for conn in (tasks_w, events_r):
                conn.close()
            raise
        finally:
            # Our copies of the worker's ends: closing them lets a dead worker show up as EOF here.
            tasks_r.close()
            events_w.close()
        self._process, self._tasks_w, self._events_r = process, tasks_w, events_r
        self._finished_since_start = False
        log.info("worker process started (pid %s, pipelines from %s)", self._process.pid, self.pipeline_factory)

    def _stop_worker(self) -> None:
        process = self._process
        if process is None:
            return
        if self._running is None and self._tasks_w is not None:
            try:
                self._tasks_w.send(None)  # the worker's signal to exit
            except (BrokenPipeError, OSError) as exc:
                log.debug("worker already gone: %s", exc)
            process.join(WORKER_EXIT_WAIT_S)
        if process.is_alive():
            process.terminate()
            process.join(WORKER_EXIT_WAIT_S)
        if process.is_alive():
            process.kill()
            process.join()
        self._close_worker_pipes()
        log.info("worker process stopped")
        self._abandon_unfinished()

    def _abandon_unfinished(self) -> None:
        """Say in jobs/ what becomes of the jobs a stop leaves behind."""
        with self._lock:
            left = [job for job in self._jobs.values() if not job.state.finished]
            for job in left:
                if job.source is JobSource.SPOOL:
                    job.state = JobState.QUEUED
                    job.message = "Interrupted; it resumes when the daemon starts again."
                else:
                    job.state = JobState.FAILED
                    job.message = "The daemon stopped before this job was done."
        for job in left:
            self._changed(job, force=True)

    def _close_worker_pipes(self) -> None:
        for conn in (self._tasks_w, self._events_r):
            if conn is not None:
                conn.close()
        self._tasks_w = self._events_r = None

    # -- helpers --

    def _is_active(self, job_id: str) -> bool:
        job = self._jobs.get(job_id)
        return job is not None and not job.state.finished

    def _add(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._queue.append(job)
        log.info("queued %s job %s", job.kind, job.id)

    def _fail_after_error(self, job: Job, sentence: str) -> None:
        """Fail ``job`` after an unexpected error; free its slot even if recording the failure fails too."""
        try:
            self._finish(job, JobState.FAILED, sentence)
        except Exception:
            log.exception("cannot record the failure of job %s", job.id)
            with self._lock:
                job.state, job.error, job.message = JobState.FAILED, sentence, sentence
                if self._running is job:
                    self._running = None

    def _forget(self, job: Job) -> None:
        with self._lock:
            if self._running is job:
                self._running = None
            self._jobs.pop(job.id, None)

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"")
        except OSError as exc:
            log.debug("dispatcher already stopped: %s", exc)

    def _changed(self, job: Job, force: bool = False) -> None:
        """Write jobs/<id>.json and tell the listeners, at most every PROGRESS_WRITE_INTERVAL_S."""
        with self._write_lock:
            now = time.monotonic()
            if not force and now - self._last_write_s.get(job.id, 0.0) < PROGRESS_WRITE_INTERVAL_S:
                return
            self._last_write_s[job.id] = now
            if job.state.finished:
                self._last_write_s.pop(job.id, None)
            try:
                self.spool.write_progress(job.id, job.kind, job.state.value, job.progress, job.message)
            except OSError as exc:
                log.warning("cannot write the progress of %s: %s", job.id, exc)
            copy = dataclasses.replace(job)
            for listener in list(self._listeners):
                self._call(listener, copy)

    @staticmethod
    def _call(callback: Callable[[Job], None], job: Job) -> None:
        try:
            callback(job)
        except Exception:  # a listener's bug must not stop the dispatcher
            log.exception("a job callback failed for %s", job.id)


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped responding"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (often: out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {exitcode}"


# -- the worker process --


def _worker_main(
    tasks: Connection,
    events: Connection,
    cancel: Any,
    factory_spec: str,
    torch_threads: int | None,
    preload: tuple[str, ...],
    log_level: int,
) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the daemon decides when the worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            events.send(message)

    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(send)]
    root.setLevel(log_level)
    threading.Thread(target=_exit_with_parent, name="reascribe-parent-watch", daemon=True).start()
    worker = _Worker(factory_spec, torch_threads, cancel, send)
    for kind in preload:
        try:
            worker.pipeline(kind, lambda fraction, message: None)
        except ReascribeError as exc:
            log.error("cannot preload the %s pipeline: %s", kind, exc)
    while True:
        try:
            task = tasks.recv()
        except EOFError:
            break
        if task is None:
            break
        worker.run(task)


class _Worker:
    """Pipelines loaded once per kind, separators once per backend, and one job at a time."""

    def __init__(self, factory_spec: str, threads: int | None, cancel: Any, send: Callable[[tuple], None]) -> None:
        self.factory_spec = factory_spec
        self.threads = threads
        self.cancel = cancel
        self.send = send
        self.pipelines: dict[str, Any] = {}
        self.separators: dict[str, Any] = {}

    def pipeline(self, kind: str, progress: Callable[[float, str], None]) -> Any:
        if kind not in self.pipelines:
            progress(0.0, f"Loading the {kind} model.")
            factory = _resolve_factory(self.factory_spec)
            started_s = time.monotonic()
            try:
                pipeline = factory(kind, num_threads=self.threads)
                pipeline.load()
            except ReascribeError:
                raise
            except Exception as exc:  # a model's own errors (torch, files) become a sentence
                log.exception("loading the %s pipeline failed", kind)
                raise ModelError(f"The {kind} model could not be loaded ({type(exc).__name__}: {exc}).") from exc
            log.info("loaded the %s pipeline in %.1f s", kind, time.monotonic() - started_s)
            self.pipelines[kind] = pipeline
        return self.pipelines[kind]

    def separator(self, backend: str, progress: Callable[[float, str], None]) -> Any:
        if backend not in self.separators:
            from reascribe import separation

            progress(0.0, f"Loading the {backend} separation.")
            separator = separation.create(backend, num_threads=self.threads)
            try:
                separator.load()
            except ReascribeError:
                raise
            except Exception as exc:
                log.exception("loading the %s separation failed", backend)
                raise ModelError(f"The {backend} separation could not be loaded ({type(exc).__name__}: {exc}).") from exc
            self.separators[backend] = separator
        return self.separators[backend]

    def run(self, task: _RequestTask | _FileTask) -> None:
        def progress(fraction: float, message: str) -> None:
            if self.cancel.is_set():
                raise JobCancelled(CANCELLED_MESSAGE)
            self.send(("progress", task.job_id, float(fraction), str(message)))

        try:
            if isinstance(task, _RequestTask):
                self.send(("result", task.job_id, self._request(task, progress)))
            else:
                self.send(("written", task.job_id, str(self._file(task, progress))))
        except JobCancelled:
            self.send(("cancelled", task.job_id))
        except ReascribeError as exc:
            self.send(("failed", task.job_id, str(exc)))
        except FileExistsError as exc:
            self.send(("failed", task.job_id, f"{exc.filename or task.job_id} already exists; nothing was overwritten."))
        except Exception as exc:  # a bug must fail this job, not the worker that holds the models
            log.exception("job %s crashed", task.job_id)
            self.send(("failed", task.job_id,
                       f"Transcription failed unexpectedly ({type(exc).__name__}); the daemon log has the details."))


    def _request(self, task: _RequestTask, progress: Callable[[float, str], None]) -> Result:
        from reascribe import execute, execute_stems

        request, roots = task.request, task.allowed_roots
        if task.kind == SEPARATE:
            separator = self.separator(request.options.get("backend", DEFAULT_BACKEND), progress)
            return execute_stems.execute_separate_request(request, separator, progress, roots)
        if task.kind == MIX:
            separator = self.separator(request.options.get("backend", DEFAULT_BACKEND), progress)
            return execute_stems.execute_mix_request(request, separator, self.pipeline, progress, roots)
        if task.kind == GENERATE:
            return self.pipeline(GENERATE, progress).run_request(request, progress)
        return execute.execute_request(request, self.pipeline(task.kind, progress), progress, roots)

    def _file(self, task: _FileTask, progress: Callable[[float, str], None]) -> Path:
        """The MIDI file written; for a separation, the folder of the stems."""
        from reascribe import execute, execute_stems

        if task.kind == SEPARATE:
            separator = self.separator(task.options.get("backend", DEFAULT_BACKEND), progress)
            execute_stems.separate_to_folder(task.audio_path, task.out_path, separator, progress)
            return task.out_path
        if task.kind == MIX:
            separator = self.separator(task.options.get("backend", DEFAULT_BACKEND), progress)
            return execute_stems.mix_to_midi(task.audio_path, task.out_path, separator, self.pipeline, progress,
                                             task.options)
        pipeline = self.pipeline(task.kind, progress)
        return execute.execute_file(task.audio_path, task.kind, task.out_path, pipeline, progress, task.options)


def _resolve_factory(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"The pipeline factory {spec} cannot be loaded: {exc}.") from exc


def _exit_with_parent() -> None:
    """End the worker when the daemon dies (even by kill -9), instead of finishing an orphan job."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(1)


class _PipeLogHandler(logging.Handler):
    """Sends the worker's log records to the daemon, which logs them with its own handlers."""

    def __init__(self, send: Callable[[tuple], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self._send(("log", record))
        except Exception:  # logging's own convention: a failing handler must not fail the caller
            self.handleError(record)
