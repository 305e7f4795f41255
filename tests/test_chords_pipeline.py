"""The chord pipeline around a stand-in model (voicing, options, result fields), the CLI's .lab file, and
the real checkpoint through the whole command on a synthesised progression."""

from __future__ import annotations

import os

import mido
import numpy as np
import pytest
import soundfile as sf
from chord_support import StandInTranscriber, install_stand_in, progression
from reascribe.audio import AudioSection
from reascribe.cli import main
from reascribe.errors import RequestError
from reascribe.events import ChordSegment
from reascribe.models.chords.transcriber import CHECKPOINT
from reascribe.pipelines import no_progress
from reascribe.pipelines.chords import ChordsPipeline, voice
from reascribe.protocol import ItemResult, validate_options


def section(seconds=2.5, channels=2, rate=44100):
    return AudioSection(np.zeros((int(seconds * rate), channels), dtype=np.float32), rate, 3.0)


def test_chords_become_a_bass_note_and_a_close_voicing_with_symbols_and_key():
    model = StandInTranscriber()
    events = ChordsPipeline(model=model).run(section(), {}, no_progress)
    notes = [(n.start_s, n.end_s, n.pitch_midi) for n in events.notes]
    # C:maj: C2 under C-E-G from middle C; A:min7/b7: G2 under A minor seventh tones that keep C-E-G.
    assert notes[:4] == [(0.0, 1.0, 36), (0.0, 1.0, 60), (0.0, 1.0, 64), (0.0, 1.0, 67)]
    assert [p for s, _, p in notes if s == 1.0] == [43, 60, 64, 67, 69]
    assert all(n.velocity == 80 for n in events.notes) and not any(s == 2.0 for s, _, _ in notes)  # N is silent
    assert [(c.label, c.symbol) for c in events.chords] == [("C:maj", "C"), ("A:min7/b7", "Am7/G"), ("N", "N.C.")]
    assert events.key == "C:maj"
    (given,) = model.given
    assert given.dtype == np.float32 and given.ndim == 1 and len(given) == int(2.5 * 22050)  # mono at its rate


def test_voicings_move_smoothly():
    segs = [ChordSegment(i, i + 1, label) for i, label in enumerate(["C:maj", "F:maj/3", "G:7", "C:maj"])]
    chords = [[n.pitch_midi for n in voice(segs) if n.start_s == i] for i in range(4)]
    # Common tones stay, the others step: C-E-G, C-F-A, B-D-F-G, C-E-G (F/A has A in the bass).
    assert chords == [[36, 60, 64, 67], [45, 60, 65, 69], [43, 59, 62, 65, 67], [36, 60, 64, 67]]


def test_shifted_events_keep_their_chords():
    events = ChordsPipeline(model=StandInTranscriber()).run(section(), {}, no_progress).shifted(1.5)
    assert events.chords[0] == ChordSegment(1.5, 2.5, "C:maj", "C") and events.key == "C:maj"


@pytest.mark.parametrize("options, words", [
    ({"channel": 0}, "'channel' must be a whole number from 1 to 16"),
    ({"markers": "lyrics"}, "'markers' must be one of take, regions, none"),
    ({"note_length": 0.1}, "Unknown option 'note_length' for chords; known options: channel, markers"),
])  # fmt: skip
def test_bad_options_are_refused_with_a_sentence_before_the_model_runs(options, words):
    model = StandInTranscriber()
    with pytest.raises(RequestError, match=words):
        ChordsPipeline(model=model).run(section(), options, no_progress)
    assert model.given == []


def test_the_result_item_carries_chords_key_and_markers_only_for_chords():
    item = ItemResult("{I}", "{T}", "done", chords=[[0.0, 1.0, "C:maj", "C"]], key="C:maj", markers="regions")
    doc = item.to_dict()
    assert (doc["chords"], doc["key"], doc["markers"]) == ([[0.0, 1.0, "C:maj", "C"]], "C:maj", "regions")
    assert not {"chords", "key", "markers"} & set(ItemResult("{I}", "{T}", "done").to_dict())
    assert validate_options("chords", {"markers": "none", "channel": 3}) == {"markers": "none", "channel": 3}


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "chords.wav"
    sf.write(path, progression([[48, 60, 64, 67], [45, 57, 60, 64]], 1.5), 22050)
    return path


def test_cli_writes_midi_with_chord_markers_and_a_lab_that_it_never_overwrites(clip, tmp_path, monkeypatch, capsys):
    install_stand_in(monkeypatch)
    out = tmp_path / "song.mid"
    assert main(["transcribe", str(clip), "--kind", "chords", "--out", str(out), "--quiet"]) == 0
    lab = tmp_path / "song.lab"
    assert lab.read_text() == "0.000\t1.000\tC:maj\n1.000\t2.000\tA:min7/b7\n2.000\t2.500\tN\n"
    midi = mido.MidiFile(out)
    assert [m.text for m in midi.tracks[1] if m.type == "marker"] == ["C:maj", "A:min7/b7", "N"]
    assert all(m.channel == 0 for m in midi.tracks[1] if m.type == "note_on")

    capsys.readouterr()
    lab.write_text("mine")
    assert main(["transcribe", str(clip), "--kind", "chords", "--out", str(tmp_path / "other.mid"), "--quiet"]) == 0
    out.unlink()
    assert main(["transcribe", str(clip), "--kind", "chords", "--out", str(out), "--quiet"]) == 1
    assert "song.lab already exists" in capsys.readouterr().err and lab.read_text() == "mine" and not out.exists()
    out.write_bytes(b"old")
    assert main(["transcribe", str(clip), "--kind", "chords", "--out", str(out), "--quiet", "--force"]) == 0
    assert lab.read_text().startswith("0.000\t1.000\tC:maj") and mido.MidiFile(out).tracks


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="the chord checkpoint is built by python -m training.chords")
def test_the_real_model_through_the_command(clip, tmp_path):
    out = tmp_path / "real.mid"
    assert main(["transcribe", str(clip), "--kind", "chords", "--out", str(out), "--quiet", "--threads", "1"]) == 0
    rows = [line.split("\t") for line in (tmp_path / "real.lab").read_text().splitlines()]
    assert float(rows[0][0]) == 0.0 and abs(float(rows[-1][1]) - 3.0) < 0.1
    at = {t: next(r[2] for r in rows if float(r[0]) <= t < float(r[1])) for t in (0.75, 2.25)}
    assert at[0.75].startswith("C:") and at[2.25].startswith("A:")


def test_the_drop_folders_chords_subfolder_gets_midi_and_lab(tmp_path):
    from daemon_support import wait_for, write_clicks
    from reascribe.config import Config
    from reascribe.daemon import Daemon

    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "chords" / "song.lab").parent.mkdir()
    (folder / "chords" / "song.lab").write_text("mine")  # a file of that name stays as it is
    daemon = Daemon(Config(spool_dir=tmp_path / "spool", drop_dirs=[folder], osc_port=0),
                    "chord_support:make_stand_in_pipeline", show_progress=False, preload=())  # fmt: skip
    daemon.start()
    try:
        os.replace(write_clicks(tmp_path / "song.wav"), folder / "chords" / "song.wav")
        wait_for(lambda: (folder / "chords" / "song (2).lab").exists(), 60, what="chords/song (2).lab")
    finally:
        daemon.stop()
    assert (folder / "chords" / "song.lab").read_text() == "mine" and (folder / "chords" / "song.mid").exists()
    assert (folder / "chords" / "song (2).lab").read_text().startswith("0.000\t1.000\tC:maj\n")
