"""A real `reascribe daemon` process for end-to-end tests (start, wait until alive, kill -9, stop)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HEARTBEAT = "daemon.heartbeat"
TESTS_DIR = Path(__file__).resolve().parent


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaemonProcess:
    def __init__(self, spool: Path, log_path: Path, *extra: str) -> None:
        self.spool = Path(spool)
        self.log_path = Path(log_path)
        self.osc_port = free_udp_port()
        self.args = [
            sys.executable, "-m", "reascribe", "--log-level", "info", "daemon",
            "--spool", str(self.spool), "--osc-port", str(self.osc_port), *extra,
        ]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> "DaemonProcess":
        started = time.time()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {self.proc.returncode}:\n{self.log()}")
            beat = self.heartbeat()
            if beat.get("pid") == self.proc.pid and beat.get("time", 0) >= started - 1:
                return self
            time.sleep(0.1)
        raise AssertionError(f"the daemon wrote no heartbeat within {timeout_s} s:\n{self.log()}")

    def heartbeat(self) -> dict:
        try:
            return json.loads((self.spool / HEARTBEAT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"the daemon did not stop within {timeout_s} s:\n{self.log()}")


def wait_until(predicate, what: str, timeout_s: float = 300.0, daemon: DaemonProcess | None = None):
    """Poll ``predicate`` until it returns something truthy; fail early if the daemon died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            raise AssertionError(f"the daemon died while waiting for {what}:\n{daemon.log()}")
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout_s} s" + (f"\n{daemon.log()}" if daemon else ""))


def wait_for_file(folder: Path, pattern: str = "*.json", timeout_s: float = 300.0, daemon: DaemonProcess | None = None):
    return wait_until(lambda: sorted(Path(folder).glob(pattern)), f"{pattern} in {folder}", timeout_s, daemon)
