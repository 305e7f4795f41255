"""The spool folder of docs/protocol.md: atomic files, claim by rename, attempts and recovery.

Every state of a request is a file: ``inbox/`` (published), ``processing/`` (claimed; ``<id>.attempts``
counts claims), ``outbox/`` (the result: the commit point), ``archive/`` (the request once answered).
One daemon owns a spool (see ``daemon.InstanceLock``), so the check-then-act steps here do not race
with another writer of results; a client may still publish or withdraw inbox files at any time.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from reascribe import PROTOCOL_VERSION, __version__
from reascribe.errors import RequestError
from reascribe.protocol import (
    MAX_REQUEST_BYTES,
    REQUEST_KINDS,
    Request,
    Result,
    Status,
    is_valid_id,
    parse_request_bytes,
)

log = logging.getLogger(__name__)

SUBDIRS = ("inbox", "processing", "archive", "outbox", "done", "failed", "jobs", "cancel")
DIR_MODE = 0o700  # the spool holds paths of the user's projects: private to the user
JSON_SUFFIX = ".json"
TMP_SUFFIX = ".tmp"
ATTEMPTS_SUFFIX = ".attempts"
REJECTED_SUFFIX = ".rejected"  # not .json, so no reader ever looks at a rejected file again
DAEMON_HEARTBEAT = "daemon.heartbeat"
BRIDGE_HEARTBEAT = "bridge.heartbeat"
STALE_AGE_S = 7 * 86400.0  # progress files and cancel markers older than this are pruned at start
REPLACE_RETRIES = 20  # Windows refuses to replace a file another process has open (REAPER reading it)
REPLACE_RETRY_S = 0.05
CANCELLED_MESSAGE = "Cancelled by the user."
# Opening a request never follows a symbolic link (where the OS can refuse one) and never waits on a FIFO.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_SYMLINK_ERRNOS = {errno.ELOOP, getattr(errno, "EMLINK", errno.ELOOP)}  # Linux/macOS say ELOOP, FreeBSD EMLINK


class JobState(str, Enum):
    """The ``state`` of a progress file (``jobs/<id>.json``) and of a job in the daemon."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


# States of a job that has not ended; a progress file in one of them shows the job as active.
ACTIVE_JOB_STATES = tuple(state.value for state in JobState if not state.finished)


@dataclass(frozen=True)
class Claim:
    """A request this process moved to processing/; ``attempts`` counts this claim."""

    id: str
    path: Path
    attempts: int


def write_json_atomic(path: Path, doc: object) -> None:
    """Write ``doc`` as JSON to ``path`` so readers see the old file or the whole new one, never a part."""
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def read_spool_file(path: Path) -> bytes:
    """The bytes of a file in the spool (a request), read at most ``MAX_REQUEST_BYTES`` (+1 to notice more).

    A client can swap any file in under a name at any time, so this opens without following a symbolic
    link (where the OS can refuse one), checks the opened file is a regular file and reads a bounded
    amount: a link to /dev/zero, a FIFO or a huge file cannot exhaust the daemon. Raises RequestError
    with a sentence for what is no request file, and OSError (FileNotFoundError when it is gone) when
    it cannot be opened.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _SYMLINK_ERRNOS and os.path.islink(path):
            raise RequestError("The request is not a regular file (it is a symbolic link).") from None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RequestError("The request is not a regular file.")
        if info.st_size > MAX_REQUEST_BYTES:
            raise RequestError(f"The request is {info.st_size} bytes, larger than the {MAX_REQUEST_BYTES} allowed.")
        data = f.read(MAX_REQUEST_BYTES + 1)
    if len(data) > MAX_REQUEST_BYTES:  # it grew after fstat
        raise RequestError(f"The request is larger than the {MAX_REQUEST_BYTES} bytes allowed.")
    return data


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path`` (a heartbeat, a progress file); {} when it is absent, unreadable,
    not a regular file, too large, not JSON or not an object."""
    try:
        doc = json.loads(read_spool_file(path).decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, RequestError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        log.debug("cannot read %s: %s", path, exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def _replace(src: Path, dst: Path) -> None:
    for attempt in range(REPLACE_RETRIES):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == REPLACE_RETRIES - 1:
                raise
            time.sleep(REPLACE_RETRY_S)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: on POSIX the directory entry lives in the folder's own data."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: Path, max_attempts: int = 3) -> None:
        self.root = Path(root)
        self.max_attempts = max_attempts
        self.inbox = self.root / "inbox"
        self.processing = self.root / "processing"
        self.archive = self.root / "archive"
        self.outbox = self.root / "outbox"
        self.done = self.root / "done"
        self.failed = self.root / "failed"
        self.jobs = self.root / "jobs"
        self.cancel = self.root / "cancel"

    def create(self) -> "Spool":
        """Create the root and its folders (private to the user) and tighten looser existing ones."""
        for folder in (self.root, *(self.root / name for name in SUBDIRS)):
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            if os.name != "nt" and stat.S_IMODE(folder.stat().st_mode) & 0o077:
                try:
                    folder.chmod(DIR_MODE)
                except PermissionError as exc:
                    log.warning("cannot make %s private to this user: %s", folder, exc)
        return self

    # -- the client's side of the protocol --

    def publish_request(self, doc: dict) -> Path:
        """Publish ``doc`` as inbox/<id>.json, as REAPER's scripts do; only the tests use it."""
        req_id = doc.get("id")
        if not is_valid_id(req_id):
            raise RequestError(f"The request id {req_id!r} is not a valid id (letters, digits, '-' and '_').")
        path = self.inbox / f"{req_id}{JSON_SUFFIX}"
        write_json_atomic(path, doc)
        return path

    def request_cancel(self, req_id: str) -> Path:
        """Write the cancel marker cancel/<id> (the daemon's OSC cancel of a request still in the inbox)."""
        if not is_valid_id(req_id):
            raise RequestError(f"The job id {req_id!r} is not a valid id.")
        path = self.cancel / req_id
        path.touch()
        return path

    # -- reading the inbox --

    def inbox_names(self) -> list[str]:
        """Every ``*.json`` name in inbox/, valid ids or not (invalid ones are for ``admit`` to reject)."""
        try:
            return sorted(n for n in os.listdir(self.inbox) if n.endswith(JSON_SUFFIX))
        except FileNotFoundError:
            return []

    def admit(self, name: str) -> Request | None:
        """Look at ``inbox/<name>`` without claiming it: the request if it is one to run, else None.

        Everything that is not a request to run leaves the inbox here, so it is never read again:
        a name that is not an id is moved aside, a duplicate of an answered id is dropped, and a
        malformed, foreign-protocol, expired or cancelled request is claimed and answered.
        """
        if not name.endswith(JSON_SUFFIX):
            return None
        req_id = name[: -len(JSON_SUFFIX)]
        path = self.inbox / name
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None  # withdrawn by the client, or claimed meanwhile
        if not is_valid_id(req_id):
            self._reject(path)
            return None
        if self.has_result(req_id) or (self.processing / name).exists():
            where = "already has a result" if self.has_result(req_id) else "is already being worked on"
            log.warning("dropping duplicate request %s: this id %s", req_id, where)
            _unlink(path)
            return None
        try:
            if not stat.S_ISREG(info.st_mode):  # a symbolic link, a FIFO: refused before it is opened
                raise RequestError("The request is not a regular file.")
            data = read_spool_file(path)
        except FileNotFoundError:
            return None  # withdrawn by the client, or claimed meanwhile
        except (OSError, RequestError) as exc:
            self._answer_unclaimed(req_id, "unknown", f"The request file cannot be read: {exc}")
            return None
        try:
            request = self._parse(req_id, data)
        except RequestError as exc:
            log.info("request %s rejected: %s", req_id, exc)
            self._answer_unclaimed(req_id, _kind_of(data), str(exc))
            return None
        except Exception as exc:  # a defect in validation must still answer, never leave it in the inbox
            log.exception("request %s could not be validated", req_id)
            self._answer_unclaimed(
                req_id, _kind_of(data), f"reascribe could not read this request ({type(exc).__name__}); "
                "the daemon log has the details."
            )
            return None
        if request.expired():
            age_h = (time.time() - request.created_at) / 3600.0
            self._answer_unclaimed(
                req_id,
                request.kind,
                f"The request expired: it was made {age_h:.1f} hours ago, longer than its time to live "
                f"of {request.ttl_s / 3600.0:.1f} hours; run the action again.",
            )
            return None
        if self.cancel_requested(req_id):
            self._answer_unclaimed(req_id, request.kind, CANCELLED_MESSAGE, Status.CANCELLED)
            return None
        return request

    def _parse(self, req_id: str, data: bytes) -> Request:
        request = parse_request_bytes(data)
        if request.id != req_id:
            raise RequestError(f"The request file is named {req_id} but its id is {request.id}; they must match.")
        return request

    def _reject(self, path: Path) -> None:
        """Move a file whose name is no id out of the inbox; there is no id to answer to."""
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", path.name)[:64]
        target = self.archive / f"{safe}-{time.time_ns()}{REJECTED_SUFFIX}"
        try:
            os.replace(path, target)
            log.warning("moved %r out of the inbox to %s: its name is not a request id", path.name, target.name)
        except FileNotFoundError:
            pass  # withdrawn meanwhile: nothing left to reject
        except OSError as exc:
            log.error("cannot move %r out of the inbox: %s", path.name, exc)

    def _answer_unclaimed(self, req_id: str, kind: str, error: str, status: str = Status.FAILED) -> None:
        claim = self.claim(req_id)
        if claim is not None:
            self.write_result(Result.failure(req_id, kind, error, status))

    # -- claiming --

    def claim(self, req_id: str) -> Claim | None:
        """Move inbox/<id>.json to processing/ and count the attempt; None if another claimer won."""
        name = f"{req_id}{JSON_SUFFIX}"
        target = self.processing / name
        if target.exists():
            return None  # a claim of this id is in progress; renaming would silently replace it on POSIX
        try:
            os.rename(self.inbox / name, target)
        except (FileNotFoundError, FileExistsError):
            return None
        attempts = self.attempts(req_id) + 1
        write_json_atomic(self._attempts_path(req_id), attempts)
        log.info("claimed request %s (attempt %d of %d)", req_id, attempts, self.max_attempts)
        return Claim(req_id, target, attempts)

    def read_request(self, claim: Claim) -> Request:
        """The claimed request, parsed again: the client may have replaced the file since ``admit``."""
        try:
            data = read_spool_file(claim.path)
        except OSError as exc:
            raise RequestError(f"The request file cannot be read: {exc}") from None
        return self._parse(claim.id, data)

    def attempts(self, req_id: str) -> int:
        try:
            value = json.loads(self._attempts_path(req_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("attempt count of %s is unreadable (%s); counting it as one", req_id, exc)
            return 1
        return value if isinstance(value, int) and value >= 0 else 1

    def _attempts_path(self, req_id: str) -> Path:
        return self.processing / f"{req_id}{ATTEMPTS_SUFFIX}"

    def requeue(self, req_id: str) -> None:
        """Put a claimed request back in the inbox; its attempt count stays in processing/."""
        name = f"{req_id}{JSON_SUFFIX}"
        os.replace(self.processing / name, self.inbox / name)
        log.info("re-queued request %s after %d attempt(s)", req_id, self.attempts(req_id))

    def recover(self) -> list[str]:
        """Start-up: requeue what a stopped daemon left in processing/, or give up past max attempts.

        Returns the re-queued ids.
        """
        requeued = []
        for name in sorted(os.listdir(self.processing)):
            req_id = name[: -len(JSON_SUFFIX)]
            if not name.endswith(JSON_SUFFIX) or not is_valid_id(req_id):
                continue
            attempts = self.attempts(req_id)
            if self.has_result(req_id):
                # The result was committed but the daemon stopped before archiving the request.
                self._archive(req_id)
            elif attempts >= self.max_attempts:
                log.error("request %s was interrupted %d times; giving up", req_id, attempts)
                self.write_result(
                    Result.failure(
                        req_id,
                        _kind_of(_read_quietly(self.processing / name)),
                        f"The daemon stopped {attempts} time{'s' if attempts != 1 else ''} while working on this "
                        "job; it was not retried again. The daemon log may say why (for example, not enough memory).",
                    )
                )
            else:
                self.requeue(req_id)
                requeued.append(req_id)
        self._remove_orphans()
        self._settle_progress()
        self._prune(self.jobs, STALE_AGE_S)
        self._prune(self.cancel, STALE_AGE_S)
        return requeued

    def _remove_orphans(self) -> None:
        """Attempt counts of requests that are gone, and our own temp files from a stopped writer."""
        for name in os.listdir(self.processing):
            if name.endswith(ATTEMPTS_SUFFIX):
                req_id = name[: -len(ATTEMPTS_SUFFIX)]
                if not any((folder / f"{req_id}{JSON_SUFFIX}").exists() for folder in (self.processing, self.inbox)):
                    _unlink(self.processing / name)
        for folder in (self.outbox, self.jobs, self.root):
            for name in os.listdir(folder):
                if name.endswith(TMP_SUFFIX):
                    _unlink(folder / name)

    def _settle_progress(self) -> None:
        """Progress files that still say queued or running, of jobs no request stands for any more
        (file jobs of a stopped daemon), would show as active forever: mark them failed."""
        for name in os.listdir(self.jobs):
            job_id = name[: -len(JSON_SUFFIX)]
            if not name.endswith(JSON_SUFFIX) or not is_valid_id(job_id):
                continue
            if any((folder / name).exists() for folder in (self.inbox, self.processing)):
                continue  # a request that runs again rewrites its progress
            doc = read_json_object(self.jobs / name)
            if doc.get("state") in ACTIVE_JOB_STATES:
                try:
                    progress = float(doc.get("progress") or 0)
                except (TypeError, ValueError):
                    progress = 0.0
                self.write_progress(job_id, str(doc.get("kind", "")), JobState.FAILED.value, progress,
                                    "The daemon stopped before this job was done.")

    def _prune(self, folder: Path, max_age_s: float) -> None:
        cutoff = time.time() - max_age_s
        for entry in os.scandir(folder):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError as exc:
                log.debug("cannot prune %s: %s", entry.path, exc)

    # -- results --

    def has_result(self, req_id: str) -> bool:
        name = f"{req_id}{JSON_SUFFIX}"
        return any((folder / name).exists() for folder in (self.outbox, self.done, self.failed))

    def write_result(self, result: Result) -> Path | None:
        """Commit ``result`` to outbox/, then archive the request. None if the id already has a result."""
        if self.has_result(result.id):
            log.error("not writing a second result for %s: it already has one", result.id)
            return None
        path = self.outbox / f"{result.id}{JSON_SUFFIX}"
        write_json_atomic(path, result.to_dict())
        log.info("result %s: %s%s", result.id, result.status, f" ({result.error})" if result.error else "")
        self._archive(result.id)
        self.clear_cancel(result.id)
        return path

    def _archive(self, req_id: str) -> None:
        name = f"{req_id}{JSON_SUFFIX}"
        try:
            os.replace(self.processing / name, self.archive / name)
        except FileNotFoundError:
            log.debug("request %s was not in processing/ when its result was written", req_id)
        _unlink(self._attempts_path(req_id))

    # -- progress, cancel markers, heartbeats --

    def write_progress(self, job_id: str, kind: str, state: str, progress: float, message: str) -> None:
        doc = {
            "id": job_id,
            "kind": kind,
            "state": state,
            "progress": round(min(1.0, max(0.0, progress)), 4),
            "message": message,
            "updated_at": time.time(),
        }
        write_json_atomic(self.jobs / f"{job_id}{JSON_SUFFIX}", doc)

    def cancel_requested(self, req_id: str) -> bool:
        return (self.cancel / req_id).is_file()

    def cancel_ids(self) -> list[str]:
        """Ids with a cancel marker (the daemon finds markers through its watcher; tests list them here)."""
        try:
            return sorted(n for n in os.listdir(self.cancel) if is_valid_id(n))
        except FileNotFoundError:
            return []

    def clear_cancel(self, req_id: str) -> None:
        _unlink(self.cancel / req_id)

    def write_daemon_heartbeat(self, queued: int, running: str | None) -> None:
        doc = {
            "pid": os.getpid(),
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "time": time.time(),
            "queued": queued,
            "running": running,
        }
        write_json_atomic(self.root / DAEMON_HEARTBEAT, doc)

    def remove_daemon_heartbeat(self) -> None:
        _unlink(self.root / DAEMON_HEARTBEAT)

    def read_bridge_heartbeat(self) -> dict:
        """REAPER's heartbeat ({"time", "reaper", "apply_action"}); {} when absent or unreadable."""
        return read_json_object(self.root / BRIDGE_HEARTBEAT)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # already gone is the state we want


def _read_quietly(path: Path) -> bytes:
    try:
        return read_spool_file(path)
    except (OSError, RequestError) as exc:
        log.debug("cannot read %s: %s", path, exc)
        return b""


def _kind_of(data: bytes) -> str:
    """The request's kind for a failure result, when a broken request still names a known one."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "unknown"
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return kind if kind in REQUEST_KINDS else "unknown"
