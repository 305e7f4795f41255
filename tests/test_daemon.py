"""The daemon as a whole: in-process for the composition, and as a real process killed with -9.

The real process is ``python -m reascribe daemon`` with the small pipeline of tests/daemon_support.py
(on PYTHONPATH) and HOME pointing into tmp_path, so no user config is read.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_support import (  # noqa: F401
    LOAD_LOG_ENV,
    make_project,
    no_thread_leaks,
    request_doc,
    wait_for,
    write_clicks,
)
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg

from reascribe.config import Config
from reascribe.daemon import Daemon
from reascribe.errors import ReascribeError
from reascribe.spool import Spool
from reascribe.watch import Found, Watch, WatchedFolder

FAST = "daemon_support:make_fast"
SLOW = "daemon_support:make_slow"
TESTS_DIR = Path(__file__).resolve().parent
POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="signals and /proc are POSIX")


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "song")


@pytest.fixture
def udp():
    """A real UDP socket on loopback: an OSC client, or REAPER's OSC surface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


@pytest.fixture
def start_daemon(tmp_path):
    started = []

    def start(factory=FAST, **config):
        config.setdefault("spool_dir", tmp_path / "spool")
        config.setdefault("osc_port", 0)
        daemon = Daemon(Config(**config), factory, show_progress=False, preload=(), grace_s=0.5)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def result_of(spool_dir, req_id, timeout_s=60.0):
    path = Path(spool_dir) / "outbox" / f"{req_id}.json"
    wait_for(path.exists, timeout_s, what=f"the result of {req_id}")
    return json.loads(path.read_text(encoding="utf-8"))


def progress_of(spool_dir, job_id):
    path = Path(spool_dir) / "jobs" / f"{job_id}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def is_running(spool_dir, job_id):
    return progress_of(spool_dir, job_id).get("message", "").startswith("item 1/1: listening")


def test_a_published_request_gets_a_result_and_reaper_is_poked(start_daemon, project, udp, tmp_path):
    spool_dir = tmp_path / "spool"
    Spool(spool_dir).create()
    (spool_dir / "bridge.heartbeat").write_text(json.dumps({"time": time.time(), "reaper": "7.66",
                                                             "apply_action": "_RSabc123"}))
    start_daemon(reaper_osc=f"127.0.0.1:{udp.getsockname()[1]}")
    folder, wav = project
    Spool(spool_dir).publish_request(request_doc("20261121T120000-aa", folder, wav))
    result = result_of(spool_dir, "20261121T120000-aa")
    assert result["status"] == "done" and len(result["items"][0]["notes"]) == 5
    poke = OscMessage(udp.recv(65536))
    assert poke.address == "/action/_RSabc123"
    beat = json.loads((spool_dir / "daemon.heartbeat").read_text())
    assert beat["pid"] == os.getpid() and beat["protocol"] == 1 and beat["queued"] == 0


def test_requests_present_at_start_and_bad_ones_are_answered(start_daemon, project, tmp_path):
    spool = Spool(tmp_path / "spool").create()
    folder, wav = project
    spool.publish_request(request_doc("early1", folder, wav))
    (spool.inbox / "broken1.json").write_text("{")
    (spool.inbox / "no id!.json").write_text("{}")
    start_daemon()
    assert result_of(spool.root, "early1")["status"] == "done"
    assert "not valid JSON" in result_of(spool.root, "broken1")["error"]
    wait_for(lambda: os.listdir(spool.inbox) == [], what="the inbox to empty")


def test_cancel_markers_cancel_running_and_waiting_requests(start_daemon, project, tmp_path):
    spool = Spool(tmp_path / "spool").create()
    folder, wav = project
    daemon = start_daemon(SLOW)
    spool.publish_request(request_doc("run1", folder, wav))
    spool.publish_request(request_doc("wait1", folder, wav))
    wait_for(lambda: is_running(spool.root, "run1"), what="run1 to run")
    spool.request_cancel("wait1")
    spool.request_cancel("run1")
    for req_id in ("run1", "wait1"):
        result = result_of(spool.root, req_id, timeout_s=10)
        assert result["status"] == "cancelled" and result["error"] == "Cancelled by the user."
    wait_for(lambda: daemon.jobs.counts() == (0, None), what="the queue to empty")
    wait_for(lambda: spool.cancel_ids() == [], what="the markers to be cleared")


def test_osc_commands_against_the_daemon(start_daemon, udp, tmp_path):
    daemon = start_daemon(allowed_roots=[tmp_path])
    wav = write_clicks(tmp_path / "take.wav")
    udp.sendto(build_msg("/reascribe/transcribe", [str(wav), "piano"]).dgram, daemon.osc.address)
    reply = OscMessage(udp.recv(65536))
    assert reply.address == "/reascribe/queued"
    (job_id,) = list(reply)
    wait_for(lambda: (tmp_path / "take.mid").exists(), 60, what="take.mid")
    udp.sendto(build_msg("/reascribe/status", []).dgram, daemon.osc.address)
    status = json.loads(list(OscMessage(udp.recv(65536)))[0])
    assert status["pid"] == os.getpid() and status["protocol"] == 1
    wait_for(lambda: progress_of(tmp_path / "spool", job_id).get("state") == "done", what="the progress file")
    assert daemon.jobs.get(job_id).output == tmp_path / "take.mid"
    udp.sendto(build_msg("/reascribe/transcribe", [str(wav), "piano", str(tmp_path / "take.mid")]).dgram,
               daemon.osc.address)
    reply = OscMessage(udp.recv(65536))
    assert reply.address == "/reascribe/error" and "already exists" in list(reply)[0]


def osc_transcribe(udp, daemon, *args):
    udp.sendto(build_msg("/reascribe/transcribe", [str(a) for a in args]).dgram, daemon.osc.address)
    reply = OscMessage(udp.recv(65536))
    return reply.address, next(iter(reply))


def test_osc_reads_and_writes_only_the_configured_folders(start_daemon, udp, tmp_path):
    drop, out, root, outside = (tmp_path / name for name in ("drop", "out", "root", "outside"))
    for folder in (drop, out, root, outside):
        folder.mkdir()
    daemon = start_daemon(drop_dirs=[drop], drop_out_dir=out, allowed_roots=[root])
    secret = write_clicks(outside / "secret.wav")

    address, sentence = osc_transcribe(udp, daemon, secret, "piano")
    assert address == "/reascribe/error"
    assert sentence.startswith(f"The audio file {secret} is outside the folders reascribe reads for OSC requests")
    assert "allowed_roots" in sentence
    address, sentence = osc_transcribe(udp, daemon, outside / "missing.wav", "piano")
    assert address == "/reascribe/error" and "is outside the folders" in sentence  # says nothing of existence
    if os.name != "nt":
        os.symlink(secret, root / "link.wav")  # inside by name, outside in fact
        address, sentence = osc_transcribe(udp, daemon, root / "link.wav", "piano")
        assert address == "/reascribe/error" and "is outside the folders" in sentence
    address, sentence = osc_transcribe(udp, daemon, root / "missing.wav", "piano")
    assert (address, sentence) == ("/reascribe/error", f"The audio file {root / 'missing.wav'} does not exist.")

    wav = write_clicks(root / "take.wav")
    for bad_out in (outside, outside / "x.mid", drop / "x.mid"):
        address, sentence = osc_transcribe(udp, daemon, wav, "piano", bad_out)
        assert address == "/reascribe/error"
        assert sentence.startswith(f"The output {bad_out} is outside the folders reascribe writes for OSC requests")
        assert "drop_out_dir" in sentence and "allowed_roots" in sentence
    assert not (outside / "x.mid").exists() and not (outside / "take.mid").exists()

    dropped = write_clicks(drop / "song.wav")
    queued = [osc_transcribe(udp, daemon, wav, "piano"),  # beside the audio
              osc_transcribe(udp, daemon, dropped, "piano", out),  # the drop folders' output folder
              osc_transcribe(udp, daemon, dropped, "piano", root / "from-drop.mid")]  # an allowed root
    assert [address for address, _ in queued] == ["/reascribe/queued"] * 3
    for midi in (root / "take.mid", out / "song.mid", root / "from-drop.mid"):
        wait_for(midi.exists, 60, what=midi.name)


def test_one_daemon_per_spool(start_daemon, tmp_path):
    first = start_daemon()
    heartbeat = tmp_path / "spool" / "daemon.heartbeat"
    wait_for(heartbeat.exists, what="the heartbeat")
    with pytest.raises(ReascribeError, match=f"Another reascribe daemon \\(pid {os.getpid()}\\) already serves"):
        Daemon(Config(spool_dir=tmp_path / "spool", osc_port=0), FAST, preload=()).start()
    assert heartbeat.exists()  # the refused daemon left the first one's files alone
    first.stop()
    start_daemon()


def test_a_stale_lock_is_taken_over(start_daemon, tmp_path, caplog):
    spool = Spool(tmp_path / "spool").create()
    (spool.root / "daemon.lock").write_text("999999\n")  # written by a daemon that was killed
    with caplog.at_level(logging.INFO, logger="reascribe.daemon"):
        start_daemon()
    assert "took over the lock of a daemon that stopped without releasing it (pid 999999)" in caplog.text
    assert (spool.root / "daemon.lock").read_text().strip() == str(os.getpid())


def test_an_error_on_one_item_does_not_stop_the_intake(start_daemon, project, tmp_path, monkeypatch, caplog):
    spool = Spool(tmp_path / "spool").create()
    folder, wav = project
    daemon = start_daemon()
    admit, calls = daemon.spool.admit, []

    def admit_with_a_bug(name):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return admit(name)

    monkeypatch.setattr(daemon.spool, "admit", admit_with_a_bug)
    with caplog.at_level(logging.ERROR, logger="reascribe.daemon"):
        spool.publish_request(request_doc("first1", folder, wav))
        wait_for(lambda: calls, what="the intake to take the request")
        spool.publish_request(request_doc("second1", folder, wav))
        assert result_of(spool.root, "second1")["status"] == "done"
        assert result_of(spool.root, "first1")["status"] == "done"  # the next rescan offered it again
    assert "cannot take Found(kind='request'" in caplog.text and "RuntimeError: a bug" in caplog.text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_heartbeat_stops_when_a_core_thread_has_died(start_daemon, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("reascribe.daemon.HEARTBEAT_S", 0.05)
    daemon = start_daemon()
    heartbeat = tmp_path / "spool" / "daemon.heartbeat"
    wait_for(heartbeat.exists, what="the heartbeat")

    def die(found):
        raise SystemExit  # not an Exception, so beyond what the intake catches: its thread ends

    monkeypatch.setattr(daemon, "_take", die)
    with caplog.at_level(logging.ERROR, logger="reascribe.daemon"):
        daemon._found(Found("cancel", daemon.spool.cancel / "x1"))
        wait_for(lambda: "no longer writes its heartbeat" in caplog.text, 10, what="the error")
    assert "the daemon's intake thread stopped" in caplog.text
    last = heartbeat.read_text()
    time.sleep(0.5)  # ten heartbeat periods
    assert heartbeat.read_text() == last


def test_a_stop_is_not_taken_for_a_dead_thread(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("reascribe.daemon.HEARTBEAT_S", 0.005)
    daemon = Daemon(Config(spool_dir=tmp_path / "spool", osc_port=0), FAST, show_progress=False, preload=())
    with caplog.at_level(logging.ERROR, logger="reascribe.daemon"):
        daemon.start()
        wait_for((tmp_path / "spool" / "daemon.heartbeat").exists, what="the heartbeat")
        daemon.stop()  # the jobs thread ends first, the heartbeat last
    assert "no longer writes its heartbeat" not in caplog.text


# -- file watching --


def test_watch_passes_bursts_on_once_and_filters_names(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.json").write_text("{}")  # there before the watch: the first rescan finds it
    found = []
    watched = [WatchedFolder(inbox, "request", lambda name: name.endswith(".json"))]
    with Watch(watched, found.append, rescan_s=60, debounce_s=1.0):  # 1 s: a slow machine still makes one burst
        wait_for(lambda: Found("request", inbox / "before.json") in found, what="the first rescan")
        for n in range(3):  # a publish: written as .tmp, then renamed; then rewritten in place
            (inbox / f"r{n}.json.tmp").write_text("{}")
            os.replace(inbox / f"r{n}.json.tmp", inbox / f"r{n}.json")
        (inbox / "r0.json").write_text("{}")
        (inbox / "ignored.txt").write_text("x")
        wait_for(lambda: {f.path.name for f in found} >= {"r0.json", "r1.json", "r2.json"}, what="the events")
        time.sleep(1.5)
    assert {f.path.name for f in found} == {"before.json", "r0.json", "r1.json", "r2.json"}
    assert found.count(Found("request", inbox / "r0.json")) == 1  # created, moved, modified: one burst


def test_watch_rescans_as_a_safety_net(tmp_path):
    folder = tmp_path / "cancel"
    folder.mkdir()
    (folder / "job1").touch()
    found = []
    with Watch([WatchedFolder(folder, "cancel", lambda name: True)], found.append, rescan_s=0.3):
        wait_for(lambda: len(found) >= 3, 10, what="three rescans")
    assert set(found) == {Found("cancel", folder / "job1")}


# -- the daemon as a real process --


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie no one reaped has ended


class DaemonProcess:
    def __init__(self, tmp_path, spool_dir, factory):
        self.log_path = tmp_path / "daemon.log"
        self.load_log = tmp_path / "loads.txt"
        self.spool_dir = spool_dir
        self.factory = factory
        self.tmp_path = tmp_path
        self.process = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
                   HOME=str(self.tmp_path), **{LOAD_LOG_ENV: str(self.load_log)})
        command = [sys.executable, "-m", "reascribe", "--log-level", "info", "daemon", "--spool", str(self.spool_dir),
                   "--osc-port", str(free_port()), "--pipeline-factory", self.factory]
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        log_file.close()
        wait_for(lambda: self.heartbeat_pid() == self.process.pid, 60, what="the daemon's heartbeat")

    def heartbeat_pid(self):
        assert self.process.poll() is None, self.log()
        try:
            return json.loads((self.spool_dir / "daemon.heartbeat").read_text())["pid"]
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def worker_pids(self):
        return [int(p) for p in self.load_log.read_text().split()] if self.load_log.exists() else []

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def daemon_process(tmp_path):
    processes = []

    def make(factory=SLOW):
        process = DaemonProcess(tmp_path, tmp_path / "spool", factory)
        processes.append(process)
        return process

    yield make
    for process in processes:
        process.stop()


@POSIX_ONLY
def test_kill_9_mid_job_then_restart_completes_the_job_exactly_once(daemon_process, project, tmp_path):
    spool = Spool(tmp_path / "spool").create()
    folder, wav = project
    first = daemon_process()
    first.start()
    spool.publish_request(request_doc("20261121T120000-k1", folder, wav))
    assert result_of(spool.root, "20261121T120000-k1")["status"] == "done"

    spool.publish_request(request_doc("20261121T120001-k2", folder, wav))
    wait_for(lambda: is_running(spool.root, "20261121T120001-k2"), what="the second job to run")
    (worker_pid,) = set(first.worker_pids())  # one worker, which loaded a pipeline per kind
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    wait_for(lambda: not alive(worker_pid), 10, what="the orphaned worker to exit")
    assert (spool.processing / "20261121T120001-k2.json").exists()
    assert spool.attempts("20261121T120001-k2") == 1
    assert not (spool.outbox / "20261121T120001-k2.json").exists()

    second = daemon_process()
    second.start()  # the stale lock and heartbeat of the killed daemon are taken over
    wait_for(lambda: is_running(spool.root, "20261121T120001-k2"), what="the job to resume")
    assert spool.attempts("20261121T120001-k2") == 2
    result = result_of(spool.root, "20261121T120001-k2")
    assert result["status"] == "done" and len(result["items"][0]["notes"]) == 5
    time.sleep(1)
    assert sorted(os.listdir(spool.outbox)) == ["20261121T120000-k1.json", "20261121T120001-k2.json"]
    assert sorted(os.listdir(spool.archive)) == ["20261121T120000-k1.json", "20261121T120001-k2.json"]
    assert os.listdir(spool.processing) == [] and os.listdir(spool.inbox) == []
    log_text = second.log()
    assert "resuming 1 job(s) interrupted when the daemon last stopped: 20261121T120001-k2" in log_text
    assert "claimed request 20261121T120001-k2 (attempt 2 of 3)" in log_text
    assert "took over the lock" in log_text


@POSIX_ONLY
def test_sigterm_lets_the_running_job_finish_and_a_second_one_stops_at_once(daemon_process, project, tmp_path):
    spool = Spool(tmp_path / "spool").create()
    folder, wav = project
    daemon = daemon_process()
    daemon.start()
    spool.publish_request(request_doc("t1", folder, wav))
    wait_for(lambda: is_running(spool.root, "t1"), what="t1 to run")
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(60) == 0
    assert result_of(spool.root, "t1", timeout_s=0)["status"] == "done"
    assert not (spool.root / "daemon.heartbeat").exists()

    again = daemon_process()
    again.start()
    spool.publish_request(request_doc("t2", folder, wav))
    wait_for(lambda: is_running(spool.root, "t2"), what="t2 to run")
    again.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    again.process.send_signal(signal.SIGTERM)
    assert again.process.wait(15) == 0
    assert not (spool.outbox / "t2.json").exists()
    assert (spool.processing / "t2.json").exists()  # recovered by the next start
    assert progress_of(spool.root, "t2")["message"] == "Interrupted; it resumes when the daemon starts again."
