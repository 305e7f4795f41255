"""The spool contract of docs/protocol.md, on real files: publish, admit, claim, results, recovery."""

import json
import logging
import os
import re
import stat
import threading
import time
import tracemalloc

import pytest
from daemon_support import make_project, no_thread_leaks, request_doc  # noqa: F401

from reascribe.errors import RequestError
from reascribe.protocol import MAX_REQUEST_BYTES, Result
from reascribe.spool import ACTIVE_JOB_STATES, JobState, Spool, read_json_object, write_json_atomic


@pytest.fixture
def spool(tmp_path):
    return Spool(tmp_path / "spool").create()


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "song")


def outbox_result(spool, req_id):
    return json.loads((spool.outbox / f"{req_id}.json").read_text(encoding="utf-8"))


def test_create_makes_private_folders(spool):
    for name in ("inbox", "processing", "archive", "outbox", "done", "failed", "jobs", "cancel"):
        folder = spool.root / name
        assert folder.is_dir()
        if os.name != "nt":
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_atomic_write_leaves_only_the_file(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


def test_publish_and_inbox_names_in_id_order(spool, project):
    folder, wav = project
    for req_id in ("20261121T120002-b", "20261121T120001-a", "20261121T120003-c"):
        spool.publish_request(request_doc(req_id, folder, wav))
    (spool.inbox / "20261121T120004-d.json.tmp").write_text("{")  # a client still writing
    (spool.inbox / "not an id.json").write_text("{}")  # listed: admit() moves it aside
    assert spool.inbox_names() == [
        "20261121T120001-a.json", "20261121T120002-b.json", "20261121T120003-c.json", "not an id.json"]


def test_publish_refuses_a_hostile_id(spool):
    with pytest.raises(Exception, match="not a valid id"):
        spool.publish_request({"id": "../../etc/passwd"})


def test_admit_returns_a_valid_request_and_leaves_it_in_the_inbox(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("r1", folder, wav))
    request = spool.admit("r1.json")
    assert request is not None and request.id == "r1" and request.kind == "piano"
    assert (spool.inbox / "r1.json").exists()


def test_claim_moves_to_processing_and_counts_attempts(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("r1", folder, wav))
    claim = spool.claim("r1")
    assert claim is not None and claim.attempts == 1 and claim.path == spool.processing / "r1.json"
    assert not (spool.inbox / "r1.json").exists()
    assert spool.claim("r1") is None
    assert spool.read_request(claim).id == "r1"


def test_claim_race_has_exactly_one_winner(spool, project):
    folder, wav = project
    threads_n = 8
    for round_n in range(20):
        req_id = f"race{round_n}"
        spool.publish_request(request_doc(req_id, folder, wav))
        barrier = threading.Barrier(threads_n)
        claims = []

        def claimer():
            barrier.wait()
            claims.append(spool.claim(req_id))

        threads = [threading.Thread(target=claimer) for _ in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1, f"round {round_n}: {len(winners)} winners"
        assert spool.attempts(req_id) == 1


def test_claim_never_replaces_a_claim_in_progress(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("r1", folder, wav))
    assert spool.claim("r1") is not None
    spool.publish_request(request_doc("r1", folder, wav, client="again"))
    assert spool.claim("r1") is None
    assert json.loads((spool.processing / "r1.json").read_text())["client"] == "tests"


@pytest.mark.parametrize(
    "content, sentence",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"protocol": 99, "id": "bad1", "kind": "piano"}).encode(), "protocol 99"),
        (json.dumps({"protocol": 1, "id": "bad1", "kind": "flute"}).encode(), "Unknown job kind"),
        (b"\xff\xfe", "not valid JSON"),
        (json.dumps([1, 2]).encode(), "JSON object"),
    ],
)
def test_malformed_requests_get_a_failed_result(spool, content, sentence):
    (spool.inbox / "bad1.json").write_bytes(content)
    assert spool.admit("bad1.json") is None
    result = outbox_result(spool, "bad1")
    assert result["status"] == "failed" and sentence in result["error"]
    assert result["id"] == "bad1" and result["items"] == []
    assert not (spool.inbox / "bad1.json").exists()
    assert (spool.archive / "bad1.json").exists()
    assert not (spool.processing / "bad1.attempts").exists()


def test_a_defect_in_validation_still_answers_the_request(spool, project, monkeypatch):
    def broken(data):
        raise AttributeError("a bug")

    monkeypatch.setattr("reascribe.spool.parse_request_bytes", broken)
    folder, wav = project
    spool.publish_request(request_doc("r1", folder, wav))
    assert spool.admit("r1.json") is None
    result = outbox_result(spool, "r1")
    assert result["status"] == "failed" and "AttributeError" in result["error"]
    assert not (spool.inbox / "r1.json").exists()


def test_a_request_whose_id_differs_from_its_name_fails(spool, project):
    folder, wav = project
    write_json_atomic(spool.inbox / "name1.json", request_doc("other1", folder, wav))
    assert spool.admit("name1.json") is None
    result = outbox_result(spool, "name1")
    assert "named name1 but its id is other1" in result["error"]
    assert not (spool.outbox / "other1.json").exists()


def test_an_expired_request_fails(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("old1", folder, wav, created_at=time.time() - 7200, ttl_s=3600))
    assert spool.admit("old1.json") is None
    assert "expired" in outbox_result(spool, "old1")["error"]


def test_an_oversized_request_fails_without_being_read(spool):
    with open(spool.inbox / "big1.json", "wb") as f:
        f.truncate(5 * 1024 * 1024)
    assert spool.admit("big1.json") is None
    assert "larger than" in outbox_result(spool, "big1")["error"]


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_symlink_in_the_inbox_is_not_followed(spool, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"protocol": 1}')
    os.symlink(secret, spool.inbox / "link1.json")
    assert spool.admit("link1.json") is None
    assert "not a regular file" in outbox_result(spool, "link1")["error"]
    assert secret.exists()


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_claimed_request_swapped_for_a_symlink_is_not_followed(spool, project, tmp_path):
    folder, wav = project
    spool.publish_request(request_doc("s1", folder, wav))
    assert spool.admit("s1.json") is not None
    claim = spool.claim("s1")
    elsewhere = tmp_path / "elsewhere.json"  # a valid request, but not the one that was admitted
    write_json_atomic(elsewhere, request_doc("s1", folder, wav, client="swapped"))
    claim.path.unlink()
    os.symlink(elsewhere, claim.path)
    with pytest.raises(RequestError, match="not a regular file"):
        spool.read_request(claim)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_claimed_request_swapped_for_a_fifo_fails_at_once(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("f1", folder, wav))
    claim = spool.claim("f1")
    claim.path.unlink()
    os.mkfifo(claim.path)  # opening it to read waits for a writer
    outcome = []

    def read():
        try:
            spool.read_request(claim)
        except RequestError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # free the blocked reader before failing
        with open(claim.path, "wb"):
            pass
        reader.join()
        pytest.fail("reading a FIFO swapped in for a claimed request blocked")
    assert outcome and "not a regular file" in outcome[0]


def test_a_claimed_request_swapped_for_a_huge_file_is_not_read(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("h1", folder, wav))
    claim = spool.claim("h1")
    with open(claim.path, "r+b") as f:
        f.truncate(16 * MAX_REQUEST_BYTES)  # sparse: large to read, free on disk
    tracemalloc.start()
    try:
        with pytest.raises(RequestError, match="larger than"):
            spool.read_request(claim)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_REQUEST_BYTES


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_recovery_does_not_follow_a_symlink_for_the_kind(spool, project, tmp_path):
    folder, wav = project
    spool.publish_request(request_doc("rs1", folder, wav))
    for _ in range(2):
        spool.claim("rs1")
        spool.requeue("rs1")
    spool.claim("rs1")
    elsewhere = tmp_path / "elsewhere.json"
    write_json_atomic(elsewhere, request_doc("rs1", folder, wav))
    (spool.processing / "rs1.json").unlink()
    os.symlink(elsewhere, spool.processing / "rs1.json")
    spool.recover()
    assert outbox_result(spool, "rs1")["kind"] == "unknown"  # the link's target was never read


@pytest.mark.parametrize("name", ["bad name.json", "-dash.json", ".hidden.json", "a" * 65 + ".json", "é.json"])
def test_a_name_that_is_no_id_is_moved_out_without_a_result(spool, name):
    (spool.inbox / name).write_text("{}")
    assert spool.admit(name) is None
    assert os.listdir(spool.inbox) == []
    assert os.listdir(spool.outbox) == []
    assert [n for n in os.listdir(spool.archive) if n.endswith(".rejected")]


def test_a_rejected_name_is_archived_under_a_sanitised_unique_name(spool):
    (spool.inbox / "my song (1).json").write_text("{}")
    assert spool.admit("my song (1).json") is None
    (rejected,) = os.listdir(spool.archive)
    assert re.fullmatch(r"my_song__1__json-\d+\.rejected", rejected)


def test_a_cancelled_request_is_answered_cancelled(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("c1", folder, wav))
    spool.request_cancel("c1")
    assert spool.admit("c1.json") is None
    result = outbox_result(spool, "c1")
    assert result["status"] == "cancelled" and result["error"] == "Cancelled by the user."
    assert not spool.cancel_requested("c1")


@pytest.mark.parametrize("folder_name", ["outbox", "done", "failed"])
def test_a_duplicate_of_an_answered_request_is_dropped(spool, project, caplog, folder_name):
    folder, wav = project
    (spool.root / folder_name / "d1.json").write_text('{"status": "done"}')
    spool.publish_request(request_doc("d1", folder, wav))
    with caplog.at_level(logging.WARNING, logger="reascribe.spool"):
        assert spool.admit("d1.json") is None
    assert "duplicate request d1" in caplog.text
    assert not (spool.inbox / "d1.json").exists()
    assert (spool.root / folder_name / "d1.json").read_text() == '{"status": "done"}'


def test_write_result_commits_then_archives_and_never_twice(spool, project, caplog):
    folder, wav = project
    spool.publish_request(request_doc("w1", folder, wav))
    spool.request_cancel("w1")
    spool.claim("w1")
    assert spool.write_result(Result.failure("w1", "piano", "first")) == spool.outbox / "w1.json"
    assert (spool.archive / "w1.json").exists()
    assert not (spool.processing / "w1.json").exists()
    assert not (spool.processing / "w1.attempts").exists()
    assert not spool.cancel_requested("w1")
    with caplog.at_level(logging.ERROR, logger="reascribe.spool"):
        assert spool.write_result(Result.failure("w1", "piano", "second")) is None
    assert "second result" in caplog.text
    assert outbox_result(spool, "w1")["error"] == "first"


def test_recover_requeues_with_attempts_kept(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("rc1", folder, wav))
    spool.claim("rc1")
    assert spool.recover() == ["rc1"]
    assert (spool.inbox / "rc1.json").exists()
    assert spool.attempts("rc1") == 1
    assert spool.claim("rc1").attempts == 2


def test_recover_gives_up_after_max_attempts(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("rc2", folder, wav))
    for _ in range(2):
        spool.claim("rc2")
        spool.requeue("rc2")
    assert spool.claim("rc2").attempts == 3  # the daemon stops a third time while on it
    assert spool.recover() == []
    result = outbox_result(spool, "rc2")
    assert result["status"] == "failed" and result["kind"] == "piano"
    assert "The daemon stopped 3 times while working on this job; it was not retried again." in result["error"]
    assert not (spool.inbox / "rc2.json").exists()


def test_recover_archives_a_request_whose_result_was_committed(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("rc3", folder, wav))
    spool.claim("rc3")
    write_json_atomic(spool.outbox / "rc3.json", Result.failure("rc3", "piano", "x").to_dict())
    assert spool.recover() == []
    assert (spool.archive / "rc3.json").exists()
    assert not (spool.inbox / "rc3.json").exists()
    assert outbox_result(spool, "rc3")["error"] == "x"


def test_recover_removes_orphans_and_our_temp_files(spool):
    (spool.processing / "gone1.attempts").write_text("2")
    (spool.outbox / "x.json.1234.tmp").write_text("{")
    (spool.jobs / "y.json.5678.tmp").write_text("{")
    spool.recover()
    assert os.listdir(spool.processing) == []
    assert os.listdir(spool.outbox) == []
    assert os.listdir(spool.jobs) == []


def test_recover_settles_progress_of_jobs_that_will_not_run_again(spool, project):
    folder, wav = project
    spool.publish_request(request_doc("alive1", folder, wav))
    spool.write_progress("alive1", "piano", "queued", 0.0, "Waiting in the queue.")
    spool.write_progress("file-1", "piano", "running", 0.4, "item 1/1")
    spool.write_progress("old1", "piano", "done", 1.0, "Done.")
    spool.recover()
    states = {n: json.loads((spool.jobs / f"{n}.json").read_text()) for n in ("alive1", "file-1", "old1")}
    assert states["alive1"]["state"] == "queued"
    assert states["file-1"]["state"] == "failed" and states["file-1"]["progress"] == 0.4
    assert states["file-1"]["message"] == "The daemon stopped before this job was done."
    assert states["old1"]["state"] == "done"


def test_progress_file(spool):
    spool.write_progress("p1", "piano", "running", 0.5, "half way")
    doc = json.loads((spool.jobs / "p1.json").read_text())
    assert {k: doc[k] for k in ("id", "kind", "state", "progress", "message")} == {
        "id": "p1", "kind": "piano", "state": "running", "progress": 0.5, "message": "half way"}
    assert abs(doc["updated_at"] - time.time()) < 5


def test_heartbeats(spool):
    spool.write_daemon_heartbeat(queued=2, running="r1")
    beat = json.loads((spool.root / "daemon.heartbeat").read_text())
    assert beat["pid"] == os.getpid() and beat["protocol"] == 1 and beat["queued"] == 2 and beat["running"] == "r1"
    assert set(beat) == {"pid", "version", "protocol", "time", "queued", "running"}
    assert spool.read_bridge_heartbeat() == {}
    (spool.root / "bridge.heartbeat").write_text("{broken")
    assert spool.read_bridge_heartbeat() == {}
    (spool.root / "bridge.heartbeat").write_text(json.dumps({"time": 1, "reaper": "7.66", "apply_action": "_RS1"}))
    assert spool.read_bridge_heartbeat()["apply_action"] == "_RS1"


def test_cancel_markers(spool):
    spool.request_cancel("k1")
    (spool.cancel / "k2.tmp").write_text("")
    assert spool.cancel_ids() == ["k1"]
    spool.clear_cancel("k1")
    spool.clear_cancel("k1")
    assert spool.cancel_ids() == []


def test_read_json_object(tmp_path):
    path = tmp_path / "x.json"
    assert read_json_object(path) == {}
    for text in ("{broken", "[1, 2]", "\udcff"):
        path.write_text(text, errors="surrogateescape")
        assert read_json_object(path) == {}
    path.write_text('{"a": 1}')
    assert read_json_object(path) == {"a": 1}
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        assert read_json_object(tmp_path / "fifo") == {}  # returns at once instead of waiting for a writer


def test_active_job_states_are_the_unfinished_job_states():
    assert ACTIVE_JOB_STATES == (JobState.QUEUED.value, JobState.RUNNING.value) == ("queued", "running")
