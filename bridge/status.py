"""`reascribe status`: read the spool (no connection to the daemon needed) and describe it."""

from __future__ import annotations

import time
from pathlib import Path

from reascribe.spool import ACTIVE_JOB_STATES, read_json_object

HEARTBEAT_STALE_S = 10.0


def describe(spool: Path, now: float | None = None) -> tuple[str, bool]:
    """A few lines on the daemon and its jobs, and whether the daemon is alive."""
    now = time.time() if now is None else now
    beat = read_json_object(spool / "daemon.heartbeat")
    age_s = now - float(beat.get("time", 0)) if beat else None
    running = age_s is not None and age_s <= HEARTBEAT_STALE_S
    if running:
        lines = [f"reascribe daemon {beat.get('version', '?')} is running (pid {beat.get('pid', '?')}), spool {spool}"]
    elif beat:
        lines = [f"reascribe daemon is not running (last heartbeat {age_s:.0f} s ago); start it with: reascribe daemon"]
    else:
        lines = [f"reascribe daemon has never run with spool {spool}; start it with: reascribe daemon"]
    jobs = [j for j in (read_json_object(p) for p in sorted((spool / "jobs").glob("*.json"))) if j]
    active = [j for j in jobs if j.get("state") in ACTIVE_JOB_STATES]
    for job in sorted(active, key=lambda j: j.get("updated_at", 0)):
        lines.append(
            f"  {job.get('state', '?'):8} {job.get('id', '?')} {job.get('kind', '')} "
            f"{100 * float(job.get('progress', 0)):5.1f}%  {job.get('message', '')}"
        )
    if not active:
        lines.append("  no jobs queued or running")
    waiting = len(list((spool / "outbox").glob("*.json")))
    if waiting:
        lines.append(f"  {waiting} result(s) waiting for REAPER to apply them")
    return "\n".join(lines), running

