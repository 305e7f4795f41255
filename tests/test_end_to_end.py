"""The whole round trip: the real Lua action in a fake REAPER, a real daemon process with the real piano
model, and the real bridge applying the result as a new MIDI take.

Audio is a FluidSynth render of a MAESTRO performance with real pedalling (synthetic audio).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest_lua import BRIDGE, TRANSCRIBE, copy_back, fake, spool  # noqa: F401  (fixtures)
from daemon_process import DaemonProcess, wait_for_file, wait_until
from render import MAESTRO_MIDI, render_midi_excerpt

ONSET_TOLERANCE_S = 0.05
ITEM_POSITION_S = 10.0
START_OFFSET_S = 1.5
TEMPO_CHANGE_S = 14.0  # project time, inside the item
EXCERPT_START_S = 100.0  # where the excerpt starts in the performance


@pytest.fixture(scope="module")
def piano():
    return render_midi_excerpt(MAESTRO_MIDI, EXCERPT_START_S, 16.0)


@pytest.fixture
def daemon(spool, tmp_path):  # noqa: F811
    process = DaemonProcess(spool, tmp_path / "daemon.log").start()
    yield process
    process.stop()


def project_with_piano_item(fake, wav: Path, length_s: float):  # noqa: F811
    media = Path(fake.current.record_path)
    source = media / "piano.wav"
    shutil.copyfile(wav, source)
    fake.current.tempo.add_marker(TEMPO_CHANGE_S, 90.0)
    track = fake.add_track("Piano")
    item, take = fake.add_audio_item(track, source, ITEM_POSITION_S, length_s, start_offset_s=START_OFFSET_S)
    take.source.length_s = 20.0
    return item, take


def apply_results(fake, spool, result_id: str, ticks: int = 200) -> None:  # noqa: F811
    """Run REAPER's defer loop until the bridge has moved the result out of the outbox."""
    for _ in range(ticks):
        fake.run_ticks(5)
        if not (spool / "outbox" / f"{result_id}.json").exists():
            return
    raise AssertionError(f"the bridge did not apply {result_id}:\n{fake.console}")


def project_onsets(truth, first_s: float, last_s: float) -> list[tuple[float, int]]:
    """Truth onsets of the part the item plays, in project seconds (playrate 1)."""
    return [
        (ITEM_POSITION_S + (start - START_OFFSET_S), pitch)
        for start, _, pitch, _ in truth.notes
        if first_s <= start <= last_s
    ]


def test_transcribe_piano_round_trip(fake, spool, daemon, piano):  # noqa: F811
    wav, truth = piano
    length_s = 12.0  # plays source [1.5, 13.5] s
    item, audio_take = project_with_piano_item(fake, wav, length_s)
    fake.select_items(item)

    fake.run_action(TRANSCRIBE)
    result_path = wait_for_file(spool / "outbox", daemon=daemon)[0]
    result = json.loads(result_path.read_text())
    assert result["status"] == "done", result
    apply_results(fake, spool, result["id"])

    assert [t.guid for t in item.takes][0] == audio_take.guid and len(item.takes) == 2
    midi_take = item.takes[1]
    notes = fake.take_notes_project_time(midi_take)
    # Truth notes that start well inside the played part (a note struck at the very edge may be cut).
    expected = project_onsets(truth, START_OFFSET_S + 0.1, START_OFFSET_S + length_s - 0.3)
    assert len(expected) > 40
    hits = sum(any(n.pitch == pitch and abs(n.start_s - t) <= ONSET_TOLERANCE_S for n in notes) for t, pitch in expected)
    assert hits / len(expected) >= 0.95, f"{hits} of {len(expected)} notes within 50 ms"
    print(f"round trip: {hits} of {len(expected)} truth notes within 50 ms in project time")
    assert all(ITEM_POSITION_S - 1e-6 <= n.start_s <= ITEM_POSITION_S + length_s for n in notes)
    assert any(n.start_s > TEMPO_CHANGE_S for n in notes)  # placed through the tempo change
    sustain = [c for c in fake.take_ccs_project_time(midi_take) if c.cc == 64]
    assert any(c.value >= 64 for c in sustain) and any(c.value < 64 for c in sustain)
    transcribe_undos = [u for u in fake.undo_log if "reascribe" in u.desc]
    assert len(transcribe_undos) == 1
    artifact = Path(result["items"][0]["artifact"])
    assert artifact.is_file() and artifact.parent == Path(fake.current.record_path) / "reascribe"

    # The same result again (a re-sent file, a second bridge): nothing changes.
    undo_count, note_count = len(fake.undo_log), len(notes)
    copy_back(spool, result["id"])
    apply_results(fake, spool, result["id"])
    assert len(item.takes) == 2
    assert len(fake.take_notes_project_time(item.takes[1])) == note_count
    assert len(fake.undo_log) == undo_count


def test_daemon_killed_mid_job_completes_after_restart_without_a_duplicate_take(fake, spool, tmp_path, piano):  # noqa: F811
    wav, _ = piano
    item, _ = project_with_piano_item(fake, wav, 14.0)
    fake.select_items(item)
    daemon = DaemonProcess(spool, tmp_path / "daemon.log").start()
    try:
        fake.run_action(TRANSCRIBE)
        job = wait_for_file(spool / "jobs", daemon=daemon)[0]

        def running() -> bool:
            state = json.loads(job.read_text(encoding="utf-8") or "{}")
            return state.get("state") == "running" and state.get("progress", 0) > 0

        wait_until(running, "progress on the job", daemon=daemon)
        daemon.kill9()
        assert not list((spool / "outbox").glob("*.json"))
        assert list((spool / "processing").glob("*.json"))  # the claimed job survives the crash
    finally:
        daemon.stop()

    daemon = DaemonProcess(spool, tmp_path / "daemon2.log").start()
    try:
        results = wait_for_file(spool / "outbox", daemon=daemon)
        assert len(results) == 1
        result = json.loads(results[0].read_text())
        assert result["status"] == "done", result
        assert f"claimed request {result['id']} (attempt 2 of 3)" in daemon.log()
        apply_results(fake, spool, result["id"])
        copy_back(spool, result["id"])  # even if the result turned up twice
        apply_results(fake, spool, result["id"])
    finally:
        daemon.stop()
    assert len(item.takes) == 2
    assert [p.name for p in (spool / "done").glob("*.json")] == [f"{result['id']}.json"]
