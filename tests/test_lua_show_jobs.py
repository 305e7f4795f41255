"""reascribe_Show jobs.lua: a gfx window with progress bars and Cancel buttons, driven by defer."""

from __future__ import annotations

import json
import time

from conftest_lua import REGISTER, SHOW_JOBS, fake, spool  # noqa: F401  (fixtures)


def write_job(spool, job_id, state="running", progress=0.45, message="transcribing"):
    doc = {"id": job_id, "kind": "piano", "state": state, "progress": progress, "message": message,
           "updated_at": time.time()}
    (spool / "jobs" / f"{job_id}.json").write_text(json.dumps(doc))


def test_nothing_running_says_so(fake, spool):
    write_job(spool, "20261121T121500-00000001", state="done", progress=1.0)
    fake.run_action(SHOW_JOBS)
    (box,) = fake.message_boxes
    assert "No reascribe jobs are queued or running." in box.msg
    fake.run_ticks(2)
    assert fake.running(SHOW_JOBS) is None


def test_lists_progress_and_cancel_writes_the_cancel_file(fake, spool):
    write_job(spool, "20261121T121500-00000001", progress=0.45)
    write_job(spool, "20261121T121600-00000002", state="queued", progress=0.0, message="")
    fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    window = fake.gfx_window()
    texts = window.texts()
    assert "piano 20261121T121500-00000001: running 45% (transcribing)" in texts
    assert "piano 20261121T121600-00000002: queued" in texts
    bars = [d for d in window.last_frame if d.kind == "rect" and d.filled]
    assert [b.w for b in bars] == [round(380 * 0.45), 0]  # the progress bars

    fake.gfx_click_text("Cancel", index=1)
    fake.run_ticks(2)
    assert (spool / "cancel" / "20261121T121600-00000002").exists()
    assert not (spool / "cancel" / "20261121T121500-00000001").exists()
    assert "Cancelling" in fake.gfx_window().texts()
    assert "asked the daemon to cancel 20261121T121600-00000002" in fake.console
    assert not fake.message_boxes


def test_the_window_follows_progress_and_closes(fake, spool):
    write_job(spool, "j-1", progress=0.2)
    fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    write_job(spool, "j-1", progress=0.9)
    fake.run_ticks(20)  # re-read every 0.5 s
    assert "piano j-1: running 90% (transcribing)" in fake.gfx_window().texts()
    (spool / "jobs" / "j-1.json").unlink()
    fake.run_ticks(20)
    assert fake.gfx_window().texts() == ["Nothing is queued or running."]
    fake.gfx_close()
    fake.run_ticks(2)
    assert fake.running(SHOW_JOBS) is None


def test_running_the_action_again_closes_the_window(fake, spool):
    write_job(spool, "j-1")
    first = fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    fake.run_action(SHOW_JOBS)
    assert not first.running and not first.gfx.open


def test_register_actions_adds_every_action(fake):
    fake.run_action(REGISTER)
    (box,) = fake.message_boxes
    for name in ("Transcribe piano", "Transcribe drums", "Bridge", "Show jobs", "Apply results"):
        assert f"reascribe: {name}" in box.msg
        assert fake.command_id(f"reascribe_{name}.lua") in fake.actions
    assert "missing" not in box.msg


def test_the_window_grows_with_the_jobs_so_every_cancel_button_can_be_clicked(fake, spool):
    write_job(spool, "20261121T121500-00000001")
    fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    window = fake.gfx_window()
    one_row = window.table.h
    write_job(spool, "20261121T121600-00000002", state="queued", progress=0.0, message="")
    write_job(spool, "20261121T121700-00000003", state="queued", progress=0.0, message="")
    fake.run_ticks(20)
    assert window.table.h > one_row and window.title == "reascribe jobs" and window.inits == 1
    fake.gfx_click_text("Cancel", index=2)
    fake.run_ticks(2)
    assert (spool / "cancel" / "20261121T121700-00000003").exists()
    for name in ("20261121T121600-00000002", "20261121T121700-00000003"):
        (spool / "jobs" / f"{name}.json").unlink()
    fake.run_ticks(20)
    assert window.table.h == one_row


def test_broken_settings_are_reported(fake, spool):
    (fake.scripts_dir / "reascribe_settings.lua").write_text("return {")
    write_job(spool, "j-1")
    fake.run_action(SHOW_JOBS)
    fake.run_ticks(1)
    assert "ignoring broken settings" in fake.console and "reascribe_settings.lua" in fake.console
