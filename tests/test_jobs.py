"""The job queue and its worker process, with a small real pipeline (tests/daemon_support.py).

Everything goes through a real spawned worker, real spool files and real audio; the tests kill the
worker with SIGKILL to check that a crash is retried, and cancel jobs while they run.
"""

import errno
import json
import logging
import os
import signal
import sys
import threading

import pytest
from daemon_support import (  # noqa: F401
    CLICK_TIMES_S,
    LOAD_LOG_ENV,
    make_project,
    no_thread_leaks,
    request_doc,
    wait_for,
    write_clicks,
)

from reascribe.jobs import Jobs, JobState
from reascribe.midi_out import read_events
from reascribe.spool import Spool

FAST = "daemon_support:make_fast"
SLOW = "daemon_support:make_slow"
ONSET_TOLERANCE_S = 0.05


@pytest.fixture
def spool(tmp_path):
    return Spool(tmp_path / "spool").create()


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "song")


@pytest.fixture
def load_log(tmp_path, monkeypatch):
    path = tmp_path / "loads.txt"
    monkeypatch.setenv(LOAD_LOG_ENV, str(path))  # the spawned worker inherits the environment
    return path


@pytest.fixture
def start_jobs(spool):
    started = []

    def start(factory=FAST, **kwargs):
        jobs = Jobs(spool, [], pipeline_factory=factory, **kwargs)
        jobs.start()
        started.append(jobs)
        return jobs

    yield start
    for jobs in started:
        jobs.shutdown(grace_s=0)


def result_of(spool, req_id, timeout_s=60.0):
    path = spool.outbox / f"{req_id}.json"
    wait_for(path.exists, timeout_s, what=f"the result of {req_id}")
    return json.loads(path.read_text(encoding="utf-8"))


def progress_of(spool, job_id):
    path = spool.jobs / f"{job_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def submit(spool, jobs, req_id, project):
    folder, wav = project
    spool.publish_request(request_doc(req_id, folder, wav))
    request = spool.admit(f"{req_id}.json")
    assert request is not None
    return jobs.submit_request(request.id, request.kind)


def wait_running(spool, job_id):
    wait_for(lambda: progress_of(spool, job_id).get("message", "").startswith("item 1/1: listening"),
             what=f"{job_id} to run")


def test_requests_run_in_one_warm_worker(spool, project, start_jobs, load_log):
    seen = []
    jobs = start_jobs(on_result=lambda job: seen.append(job.id))
    for n in range(3):
        submit(spool, jobs, f"r{n}", project)
    results = [result_of(spool, f"r{n}") for n in range(3)]
    for result in results:
        assert result["status"] == "done", result["error"]
        item = result["items"][0]
        starts_s = [note[0] for note in item["notes"]]
        assert len(starts_s) == len(CLICK_TIMES_S)
        assert all(abs(a - b) < ONSET_TOLERANCE_S for a, b in zip(starts_s, CLICK_TIMES_S))
        assert os.path.isfile(item["artifact"])
    assert load_log.read_text().split() == [load_log.read_text().split()[0]]  # loaded once
    wait_for(lambda: len(seen) == 3, what="on_result, which follows the result file")
    assert seen == ["r0", "r1", "r2"]
    wait_for(lambda: progress_of(spool, "r2").get("state") == "done", what="the progress file")
    assert not os.listdir(spool.processing)
    assert sorted(os.listdir(spool.archive)) == ["r0.json", "r1.json", "r2.json"]


def test_a_file_job_writes_midi_with_a_tempo_map(tmp_path, start_jobs):
    wav = write_clicks(tmp_path / "take.wav")
    finished = threading.Event()
    jobs = start_jobs()
    job = jobs.submit_file(wav, "piano", tmp_path / "take.mid", on_finished=lambda job: finished.set())
    assert finished.wait(60)
    done = jobs.get(job.id)
    assert done.state is JobState.DONE and done.output == tmp_path / "take.mid"
    events, tempo_map = read_events(done.output)
    assert len(events.notes) == len(CLICK_TIMES_S)
    assert tempo_map.segments


def test_a_file_job_error_is_a_sentence(tmp_path, start_jobs):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    finished = threading.Event()
    jobs = start_jobs()
    job = jobs.submit_file(broken, "piano", tmp_path / "broken.mid", on_finished=lambda job: finished.set())
    assert finished.wait(60)
    failed = jobs.get(job.id)
    assert failed.state is JobState.FAILED and "broken.wav" in failed.error
    assert not (tmp_path / "broken.mid").exists()


def test_progress_is_throttled_for_files_and_listeners(spool, project, start_jobs):
    updates = []
    jobs = start_jobs()
    jobs.add_listener(lambda job: updates.append((job.id, job.state, job.progress)))
    submit(spool, jobs, "t1", project)
    result_of(spool, "t1")
    wait_for(lambda: any(u[1] is JobState.DONE for u in updates), what="the done update")
    running = [u for u in updates if u[1] is JobState.RUNNING]
    # The pipeline reports 21 steps within milliseconds; most are dropped between two writes.
    assert 1 <= len(running) <= 5


def test_cancel_a_queued_job(spool, project, start_jobs):
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "q1", project)
    submit(spool, jobs, "q2", project)
    wait_running(spool, "q1")
    assert jobs.cancel("q2")
    result = result_of(spool, "q2", timeout_s=5)
    assert result["status"] == "cancelled" and result["error"] == "Cancelled by the user."
    assert progress_of(spool, "q2")["state"] == "cancelled"
    assert jobs.counts() == (0, "q1")
    assert not jobs.cancel("q2")


def test_cancel_the_running_job(spool, project, start_jobs):
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "c1", project)
    wait_running(spool, "c1")
    assert jobs.cancel("c1")
    result = result_of(spool, "c1", timeout_s=5)
    assert result["status"] == "cancelled" and result["error"] == "Cancelled by the user."
    wait_for(lambda: jobs.get("c1").state is JobState.CANCELLED, what="the job record")
    submit(spool, jobs, "c2", project)  # the cancel flag does not leak into the next job
    wait_running(spool, "c2")


def worker_pid(load_log, index):
    lines = wait_for(lambda: len(load_log.read_text().split()) > index if load_log.exists() else False,
                     what="the worker to load its pipeline") and load_log.read_text().split()
    return int(lines[index])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_worker_is_replaced_and_the_job_retried(spool, project, start_jobs, load_log):
    jobs = start_jobs(factory=SLOW, preload=("piano",))
    first_pid = worker_pid(load_log, 0)
    submit(spool, jobs, "k1", project)
    wait_running(spool, "k1")
    os.kill(first_pid, signal.SIGKILL)
    second_pid = worker_pid(load_log, 1)
    assert second_pid != first_pid
    result = result_of(spool, "k1")
    assert result["status"] == "done"
    assert jobs.get("k1").attempts == 2


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_job_that_kills_its_worker_too_often_fails(spool, project, start_jobs, load_log):
    jobs = start_jobs(factory=SLOW, preload=("piano",), max_attempts=1)
    pid = worker_pid(load_log, 0)
    submit(spool, jobs, "k2", project)
    wait_running(spool, "k2")
    os.kill(pid, signal.SIGKILL)
    result = result_of(spool, "k2")
    assert result["status"] == "failed"
    assert result["error"].startswith(
        "The transcription worker stopped 1 time while working on this job (the last time it was killed by SIGKILL")
    assert "it was not retried again" in result["error"]
    submit(spool, jobs, "k3", project)  # the new worker takes the next job
    wait_running(spool, "k3")


def test_a_request_broken_after_admission_fails_at_claim(spool, project, start_jobs):
    folder, wav = project
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "b0", project)
    wait_running(spool, "b0")
    spool.publish_request(request_doc("b1", folder, wav))
    assert spool.admit("b1.json") is not None
    jobs.submit_request("b1", "piano")
    (spool.inbox / "b1.json").write_text("{broken")
    assert jobs.cancel("b0")
    result = result_of(spool, "b1")
    assert result["status"] == "failed" and "not valid JSON" in result["error"]


def test_a_missing_pipeline_factory_fails_the_job(spool, project, start_jobs):
    jobs = start_jobs(factory="no_such_module:make")
    submit(spool, jobs, "m1", project)
    result = result_of(spool, "m1")
    assert result["status"] == "failed"
    assert "The pipeline factory no_such_module:make cannot be loaded" in result["error"]


def test_a_submitted_id_is_not_queued_twice(spool, project, start_jobs):
    jobs = start_jobs(factory=SLOW)
    assert submit(spool, jobs, "s1", project) is not None
    assert jobs.submit_request("s1", "piano") is None
    assert jobs.is_active("s1")


def test_shutdown_leaves_the_running_job_for_recovery(spool, project, start_jobs):
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "g1", project)
    submit(spool, jobs, "g2", project)
    wait_running(spool, "g1")
    jobs.shutdown(grace_s=0.2)
    assert (spool.processing / "g1.json").exists()
    assert (spool.inbox / "g2.json").exists()
    assert not os.listdir(spool.outbox)
    assert progress_of(spool, "g1")["state"] == "queued"
    assert spool.recover() == ["g1"]
    assert spool.attempts("g1") == 1


def test_graceful_shutdown_lets_the_running_job_finish(spool, project, start_jobs):
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "f1", project)
    wait_running(spool, "f1")
    jobs.shutdown(grace_s=30)
    assert json.loads((spool.outbox / "f1.json").read_text())["status"] == "done"
    with pytest.raises(Exception, match="stopping"):
        jobs.submit_file(project[1], "piano", project[0] / "x.mid")


def test_a_bad_factory_spec_is_refused(spool):
    with pytest.raises(Exception, match="must look like"):
        Jobs(spool, [], pipeline_factory="not a spec")


# -- what must not stop the dispatcher thread --


def test_a_claim_that_fails_on_a_full_disk_fails_only_that_job(spool, project, start_jobs, monkeypatch):
    claim = spool.claim

    def claim_on_a_full_disk(req_id):
        if req_id == "e1":
            raise OSError(errno.ENOSPC, "No space left on device")
        return claim(req_id)

    monkeypatch.setattr(spool, "claim", claim_on_a_full_disk)
    jobs = start_jobs()
    submit(spool, jobs, "e1", project)
    result = result_of(spool, "e1")
    assert result["status"] == "failed"
    assert result["error"].startswith("The daemon could not take this request out of the inbox (No space left on "
                                      "device); make sure the disk that holds")
    submit(spool, jobs, "e2", project)
    assert result_of(spool, "e2")["status"] == "done"
    assert jobs.is_alive()


def test_an_unexpected_error_starting_a_job_fails_only_that_job(spool, project, start_jobs, monkeypatch):
    read_request = spool.read_request

    def read_with_a_bug(claim):
        if claim.id == "u1":
            raise ValueError("a bug")
        return read_request(claim)

    monkeypatch.setattr(spool, "read_request", read_with_a_bug)
    jobs = start_jobs()
    submit(spool, jobs, "u1", project)
    result = result_of(spool, "u1")
    assert result["status"] == "failed"
    assert result["error"] == ("reascribe could not start this job (ValueError: a bug); the daemon log has the "
                               "details.")
    submit(spool, jobs, "u2", project)
    assert result_of(spool, "u2")["status"] == "done"


def test_an_unexpected_error_in_the_dispatcher_loop_is_logged_and_it_carries_on(spool, project, start_jobs,
                                                                                monkeypatch, caplog):
    jobs = start_jobs()
    receive, calls = jobs._receive, []

    def receive_with_a_bug():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        receive()

    monkeypatch.setattr(jobs, "_receive", receive_with_a_bug)
    with caplog.at_level(logging.ERROR, logger="reascribe.jobs"):
        submit(spool, jobs, "l1", project)
        assert result_of(spool, "l1")["status"] == "done"
    assert "the job dispatcher hit an unexpected error; it carries on" in caplog.text
    assert jobs.is_alive()


def test_a_job_whose_end_cannot_be_recorded_fails_and_frees_the_worker(spool, project, start_jobs, monkeypatch):
    write_result, calls = spool.write_result, []

    def write_with_a_bug(result):
        calls.append(result.id)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return write_result(result)

    monkeypatch.setattr(spool, "write_result", write_with_a_bug)
    jobs = start_jobs()
    submit(spool, jobs, "w1", project)
    result = result_of(spool, "w1")
    assert result["status"] == "failed" and "could not record the end of this job (RuntimeError)" in result["error"]
    submit(spool, jobs, "w2", project)
    assert result_of(spool, "w2")["status"] == "done"


# -- cancelling while the worker dies --


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP and SIGKILL are POSIX")
def test_a_cancel_is_kept_when_the_worker_dies(spool, project, start_jobs, load_log):
    jobs = start_jobs(factory=SLOW, preload=("piano",))
    pid = worker_pid(load_log, 0)
    submit(spool, jobs, "d1", project)
    wait_running(spool, "d1")
    os.kill(pid, signal.SIGSTOP)  # the worker cannot see the cancel before it dies
    assert jobs.cancel("d1")
    os.kill(pid, signal.SIGKILL)
    result = result_of(spool, "d1")
    assert result["status"] == "cancelled" and result["error"] == "Cancelled by the user."
    assert jobs.get("d1").attempts == 1
    submit(spool, jobs, "d2", project)  # the new worker takes the next job
    wait_running(spool, "d2")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_cancel_while_the_job_is_re_queued_is_kept(spool, project, start_jobs, load_log, monkeypatch):
    jobs = start_jobs(factory=SLOW, preload=("piano",))
    pid = worker_pid(load_log, 0)
    requeue = spool.requeue

    def requeue_and_cancel(req_id):
        requeue(req_id)
        assert jobs.cancel(req_id)  # arrives while the dispatcher puts the job back in the queue

    monkeypatch.setattr(spool, "requeue", requeue_and_cancel)
    submit(spool, jobs, "d3", project)
    wait_running(spool, "d3")
    os.kill(pid, signal.SIGKILL)
    result = result_of(spool, "d3")
    assert result["status"] == "cancelled"
    assert jobs.get("d3").state is JobState.CANCELLED


def test_cancelling_twice_while_a_queued_request_is_being_cancelled(spool, project, start_jobs, monkeypatch):
    jobs = start_jobs(factory=SLOW)
    submit(spool, jobs, "q3", project)
    submit(spool, jobs, "q4", project)
    wait_running(spool, "q3")
    claim, seconds = spool.claim, []

    def claim_and_cancel_again(req_id):
        seconds.append(jobs.cancel(req_id))  # a second cancel (OSC and a marker) while the first claims
        return claim(req_id)

    monkeypatch.setattr(spool, "claim", claim_and_cancel_again)
    assert jobs.cancel("q4")
    assert seconds == [True]
    assert result_of(spool, "q4", timeout_s=5)["status"] == "cancelled"
