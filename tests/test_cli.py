"""The command-line contract, through real `python -m reascribe` processes."""

import json
import subprocess
import sys
import time

import mido
import numpy as np
import pytest
import soundfile as sf

from reascribe.midi_out import read_events


def reascribe(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "reascribe", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def short_piano(tmp_path_factory):
    """The first 6 s of the bundled demo clip."""
    from importlib import resources

    with resources.as_file(resources.files("reascribe") / "data" / "demo_piano.flac") as path:
        audio, rate = sf.read(path)
    out = tmp_path_factory.mktemp("audio") / "short piano.wav"
    sf.write(out, audio[: 6 * rate], rate)
    return out


def test_transcribe_writes_a_standard_midi_file_with_notes_and_pedal(short_piano, tmp_path):
    out = tmp_path / "out.mid"
    proc = reascribe("transcribe", short_piano, "--kind", "piano", "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    midi = mido.MidiFile(out)
    assert midi.type in (0, 1) and midi.ticks_per_beat > 0
    events, tempo_map = read_events(out)
    assert len(events.notes) >= 20
    assert any(c.controller == 64 and c.value >= 64 for c in events.controls)
    assert 80 < tempo_map.segments[0].bpm < 110  # the clip is at 96 BPM; not a fixed 120
    again = reascribe("transcribe", short_piano, "--kind", "piano", "--out", out, "--quiet")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert mido.MidiFile(out).length == midi.length  # untouched


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.wav", "does not exist"),
        (lambda d: (d / "text.wav").write_text("not audio") and d / "text.wav", "cannot be read"),
        (lambda d: (d / "empty.flac").write_bytes(b"") or d / "empty.flac", "empty"),
        (lambda d: d, "folder"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(tmp_path, make, words):
    proc = reascribe("transcribe", make(tmp_path), "--kind", "piano", "--out", tmp_path / "o.mid")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0].lower(), proc.stderr
    assert not (tmp_path / "o.mid").exists()


def test_silence_is_refused_without_writing(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(44100 * 2), 44100)
    proc = reascribe("transcribe", tmp_path / "silence.wav", "--out", tmp_path / "o.mid", "--quiet")
    assert proc.returncode == 1 and "silent" in proc.stderr and not (tmp_path / "o.mid").exists()


def test_an_unwritable_output_is_one_line(short_piano, tmp_path):
    proc = reascribe("transcribe", short_piano, "--out", "/proc/reascribe-test.mid", "--quiet")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_force_replaces_an_existing_file(short_piano, tmp_path):
    out = tmp_path / "out.mid"
    out.write_bytes(b"old")
    proc = reascribe("transcribe", short_piano, "--out", out, "--force", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert mido.MidiFile(out).length > 0 and sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]


def test_unknown_kind_is_a_usage_error(short_piano, tmp_path):
    proc = reascribe("transcribe", short_piano, "--kind", "banjo", "--out", tmp_path / "o.mid")
    assert proc.returncode == 2 and "banjo" in proc.stderr


def test_install_reaper_copies_the_scripts_and_keeps_the_users_startup_file(tmp_path):
    resource = tmp_path / "REAPER"
    (resource / "Scripts").mkdir(parents=True)
    (resource / "Scripts" / "__startup.lua").write_text("-- mine\nreaper.ShowConsoleMsg('hi')\n")
    spool = tmp_path / "spool"
    for _ in range(2):  # installing twice adds the start-up block once
        proc = reascribe("install-reaper", "--resource-path", resource, "--spool", spool, "--autostart")
        assert proc.returncode == 0, proc.stderr
    target = resource / "Scripts" / "reascribe"
    for name in ("reascribe_Transcribe piano.lua", "reascribe_Transcribe drums.lua", "reascribe_Bridge.lua",
                 "reascribe_Register actions.lua"):
        assert (target / name).is_file()
    assert (target / "reascribe" / "json.lua").is_file() and (target / "reascribe" / "transcribe.lua").is_file()
    assert str(spool) in (target / "reascribe_settings.lua").read_text()
    startup = (resource / "Scripts" / "__startup.lua").read_text()
    assert startup.startswith("-- mine\nreaper.ShowConsoleMsg('hi')\n") and startup.count("reascribe_Bridge.lua") == 1
    assert "Register actions" in proc.stdout


def test_reinstalling_keeps_the_users_settings(tmp_path):
    from lupa import lua54

    resource = tmp_path / "REAPER"
    resource.mkdir()
    assert reascribe("install-reaper", "--resource-path", resource, "--spool", tmp_path / "a").returncode == 0
    settings = resource / "Scripts" / "reascribe" / "reascribe_settings.lua"
    settings.write_text(settings.read_text().replace("pedal_extend = false", "pedal_extend = true"))
    assert reascribe("install-reaper", "--resource-path", resource, "--spool", tmp_path / "b").returncode == 0
    loaded = lua54.LuaRuntime().execute(settings.read_text())
    assert loaded["pedal_extend"] is True and loaded["spool_dir"] == str(tmp_path / "b")
    assert (loaded["drum_note_length"], loaded["drum_channel"]) == (0.1, 10) and not dict(loaded["drum_note_map"])


def test_install_reaper_without_a_resource_folder_says_how_to_find_it(tmp_path):
    proc = reascribe("install-reaper", "--resource-path", tmp_path / "nope")
    assert proc.returncode == 1 and "--resource-path" in proc.stderr


def test_status_and_install_use_the_config_files_spool(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'spool_dir = "{tmp_path / "myspool"}"\n')
    proc = reascribe("status", "--config", config)
    assert "myspool" in proc.stdout
    (tmp_path / "REAPER").mkdir()
    proc = reascribe("install-reaper", "--resource-path", tmp_path / "REAPER", "--config", config)
    assert proc.returncode == 0, proc.stderr
    settings = (tmp_path / "REAPER" / "Scripts" / "reascribe" / "reascribe_settings.lua").read_text()
    assert str(tmp_path / "myspool") in settings


def test_a_bad_config_file_is_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("reaper_osc = 8000\n")
    proc = reascribe("daemon", "--config", config, "--spool", tmp_path / "spool")
    assert proc.returncode == 1 and "reaper_osc" in proc.stderr and "Traceback" not in proc.stderr


def test_status_reads_the_spool(tmp_path):
    proc = reascribe("status", "--spool", tmp_path)
    assert proc.returncode == 1 and "reascribe daemon" in proc.stdout
    (tmp_path / "jobs").mkdir()
    (tmp_path / "daemon.heartbeat").write_text(json.dumps({"pid": 42, "version": "0.1.0", "time": time.time()}))
    (tmp_path / "jobs" / "j1.json").write_text(
        json.dumps({"id": "j1", "kind": "piano", "state": "running", "progress": 0.5, "message": "segment 2 of 4"})
    )
    proc = reascribe("status", "--spool", tmp_path)
    assert proc.returncode == 0 and "pid 42" in proc.stdout and "50.0%" in proc.stdout


def test_demo_runs_on_the_bundled_clip(tmp_path):
    proc = reascribe("demo", "--out", tmp_path / "demo", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo" / "demo_piano.transcribed.mid").is_file()
    f1 = float(proc.stdout.split("onset F1 ")[1].split()[0])
    assert f1 >= 0.9


@pytest.fixture
def drum_loop(tmp_path):
    from daemon_support import write_clicks

    return write_clicks(tmp_path / "loop.wav")


def test_transcribe_drums_writes_general_midi_drums_on_channel_10(drum_loop, tmp_path, monkeypatch, capsys):
    """In-process, with the stand-in drum model (tests/drum_support.py) in place of the real one."""
    from drum_support import install_stand_in
    from reascribe.cli import main

    made = install_stand_in(monkeypatch)
    out = tmp_path / "drums.mid"
    assert main(["transcribe", str(drum_loop), "--kind", "drums", "--out", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    messages = [m for m in mido.MidiFile(out) if m.type in ("note_on", "program_change")]
    assert {m.channel for m in messages} == {9}
    assert sorted(m.note for m in messages if m.type == "note_on" and m.velocity) == [36, 36, 38, 42]
    events, _ = read_events(out)
    assert [round(n.end_s - n.start_s, 2) for n in events.notes] == [0.1] * 4
    assert made[0].given[0].ndim == 1  # mono, resampled from the file's 22050 Hz
    assert len(made[0].given[0]) == pytest.approx(3.0 * 44100, abs=2)

    again = tmp_path / "mapped.mid"
    argv = ["transcribe", str(drum_loop), "--kind", "drums", "--out", str(again), "--quiet",
            "--note-map", "kick=35", "--note-map", "snare=40", "--channel", "1", "--note-length", "0.05"]
    assert main(argv) == 0
    notes = [m for m in mido.MidiFile(again) if m.type == "note_on" and m.velocity]
    assert sorted(m.note for m in notes) == [35, 35, 40, 42] and {m.channel for m in notes} == {0}
    events, _ = read_events(again)
    assert [round(n.end_s - n.start_s, 2) for n in events.notes] == [0.05] * 4


@pytest.mark.parametrize("flags, words", [
    (["--pedal-extend"], "Unknown option 'pedal_extend' for drums"),
    (["--note-map", "kick"], "--note-map 'kick' must look like DRUM=NOTE"),
    (["--note-map", "cowbell=56"], "unknown drum 'cowbell'"),
    (["--channel", "17"], "'channel' must be a whole number from 1 to 16"),
    (["--note-length", "3"], "'note_length' must be a number of seconds from 0.01 to 2.0"),
])
def test_bad_drum_flags_are_one_line_before_the_model_loads(drum_loop, tmp_path, monkeypatch, capsys, flags, words):
    from drum_support import install_stand_in
    from reascribe.cli import main

    made = install_stand_in(monkeypatch)
    out = tmp_path / "o.mid"
    assert main(["transcribe", str(drum_loop), "--kind", "drums", "--out", str(out), "--quiet", *flags]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not made and not out.exists()


def test_piano_refuses_drum_flags(drum_loop, tmp_path):
    proc = reascribe("transcribe", drum_loop, "--kind", "piano", "--out", tmp_path / "o.mid", "--channel", "2")
    assert proc.returncode == 1 and "Unknown option 'channel' for piano" in proc.stderr
