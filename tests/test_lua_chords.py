"""reascribe_Transcribe chords.lua in the fake REAPER: the round trip through the daemon's own spool and
execution (with the stand-in chord model) back to a chord take with its symbols as take markers or
regions, all in one undo block, and never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from chord_support import StandInTranscriber
from conftest_lua import BRIDGE, fake, spool
from daemon_support import write_clicks
from reaper_fake.api import Api
from reascribe.execute import execute_request
from reascribe.pipelines import no_progress
from reascribe.pipelines.chords import ChordsPipeline
from reascribe.spool import Spool

TRANSCRIBE_CHORDS = "reascribe_Transcribe chords.lua"
TOLERANCE_S = 1e-3
POLL_TICKS = 20


def settings(fake, text):
    (fake.scripts_dir / "reascribe_settings.lua").write_text(f"return {{ {text} }}")


def chord_item(fake, playrate=1.5):
    """An item at 10 s playing 2 s of a real WAV from 0.5 s into it."""
    media = Path(fake.current.record_path)
    media.mkdir(parents=True, exist_ok=True)
    write_clicks(media / "gtr.wav")
    return fake.add_audio_item(fake.add_track("Guitar"), media / "gtr.wav", 10.0, 2.0, start_offset_s=0.5,
                               playrate=playrate, name="Gtr")


@pytest.fixture
def marker_spy(monkeypatch, fake):
    """Each take marker and region added, with the undo depth at that moment."""
    calls = []
    for name in ("SetTakeMarker", "AddProjectMarker2"):
        real = getattr(Api, name)

        def spy(self, *args, _real=real, _name=name):
            calls.append((_name, self.fake.undo_depth))
            return _real(self, *args)

        monkeypatch.setattr(Api, name, spy)
    return calls


def transcribe(fake, spool, model=None):
    """Run the action, let the daemon's own code answer it with the stand-in, let the bridge apply it."""
    daemon = Spool(spool).create()
    daemon.write_daemon_heartbeat(queued=0, running=None)
    fake.run_action(TRANSCRIBE_CHORDS)
    fake.run_ticks(1)
    (name,) = daemon.inbox_names()
    request = daemon.admit(name)
    daemon.claim(request.id)
    result = execute_request(request, ChordsPipeline(model=model or StandInTranscriber()), no_progress, [])
    daemon.write_result(result)
    fake.run_ticks(POLL_TICKS)
    return request, result


def test_a_chord_take_with_its_symbols_as_take_markers_in_one_undo_block(fake, spool, marker_spy):
    item, _ = chord_item(fake)
    request, result = transcribe(fake, spool)
    assert request.kind == "chords" and request.options == {}
    assert result.items[0].markers == "take" and result.items[0].key == "C:maj"

    (take,) = [t for t in item.takes if "reascribe_result" in t.ext]
    assert take.name == "Gtr chords (C:maj)" and item.active_take is take
    notes = fake.take_notes_project_time(take)
    # The stand-in hears C from 0 to 1 s and Am7/G from 1 to 2 s of the section; at 1.5x that is
    # 10-10.667 s and 10.667-11.333 s of the project.
    starts = sorted({round(n.start_s, 3) for n in notes})
    assert starts == pytest.approx([10.0, 10.667], abs=TOLERANCE_S)
    assert sorted(n.pitch for n in notes if n.start_s < 10.5) == [36, 60, 64, 67]
    assert [(m.name, round(m.srcpos_s, 3)) for m in take.markers] == [("C", 0.0), ("Am7/G", 0.667), ("N.C.", 1.333)]
    (undo,) = fake.undo_log
    assert undo.desc == "reascribe: transcribe chords (1 item)"
    assert marker_spy == [("SetTakeMarker", 1)] * 3  # each inside the result's undo block
    assert not fake.current.markers


def test_regions_are_added_once_even_when_the_item_is_transcribed_again(fake, spool, marker_spy):
    settings(fake, "chord_markers = 'regions', chord_channel = 2")
    item, _ = chord_item(fake, playrate=1.0)
    request, _ = transcribe(fake, spool)
    assert request.options == {"channel": 2, "markers": "regions"}
    regions = [(m.name, m.pos_s, m.end_s) for m in fake.current.markers if m.is_region]
    assert regions == [("C", 10.0, 11.0), ("Am7/G", 11.0, 12.0)]  # N.C. lies past the item's end
    assert {n.chan for t in item.takes if "reascribe_result" in t.ext for n in fake.take_notes_project_time(t)} == {1}

    item.active = 0  # back to the audio take, and the same chords again: a take, no second set of regions
    transcribe(fake, spool)
    assert len([t for t in item.takes if "reascribe_result" in t.ext]) == 2
    assert [(m.name, m.pos_s, m.end_s) for m in fake.current.markers if m.is_region] == regions
    assert len(fake.undo_log) == 2 and all(depth == 1 for _, depth in marker_spy)
    assert not any(t.markers for t in item.takes)


def test_applying_one_result_twice_adds_nothing(fake, spool):
    item, _ = chord_item(fake)
    request, _ = transcribe(fake, spool)
    done = spool / "done" / f"{request.id}.json"
    (spool / "outbox" / done.name).write_bytes(done.read_bytes())  # the result shows up again
    fake.run_ticks(POLL_TICKS)
    (take,) = [t for t in item.takes if "reascribe_result" in t.ext]
    assert len(take.markers) == 3 and len(fake.undo_log) == 1


def test_markers_none_leaves_only_the_take(fake, spool):
    settings(fake, "chord_markers = 'none'")
    item, _ = chord_item(fake)
    transcribe(fake, spool, StandInTranscriber(key=None))
    (take,) = [t for t in item.takes if "reascribe_result" in t.ext]
    assert take.name == "Gtr chords" and not take.markers and not fake.current.markers
