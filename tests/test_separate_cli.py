"""`reascribe separate` and `reascribe transcribe --separate`, in-process (stand-in drum model)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from reascribe.cli import main

RATE = 44100


@pytest.fixture
def mix(tmp_path):
    """A held chord with a click every half second: the drum stem keeps the clicks, not the chord."""
    t = np.arange(3 * RATE) / RATE
    chord = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)
    clicks = np.zeros_like(t)
    for start in range(0, len(t), RATE // 2):
        clicks[start : start + 64] = np.exp(-np.arange(64) / 8.0)
    path = tmp_path / "my song.wav"
    sf.write(path, np.stack([chord + clicks, chord + 0.5 * clicks], axis=1), RATE)
    return path


def test_separate_writes_one_wav_per_stem_and_never_overwrites(mix, tmp_path, capsys):
    out = tmp_path / "stems"
    assert main(["separate", str(mix), "--out", str(out), "--quiet"]) == 0
    names = ["my song_drums.wav", "my song_harmonic.wav", "my song_residual.wav"]
    assert capsys.readouterr().out.split("\n")[:3] == [str(out / n) for n in names]
    stems = [sf.read(out / n, dtype="float32")[0] for n in names]
    np.testing.assert_allclose(sum(stems), sf.read(mix, dtype="float32")[0], atol=1e-5)
    assert main(["separate", str(mix), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(names + [n.replace(".wav", " (2).wav") for n in names])


@pytest.mark.parametrize("make, words", [
    (lambda d: d / "missing.wav", "does not exist"),
    (lambda d: (d / "text.wav").write_text("not audio") and d / "text.wav", "cannot be read"),
    (lambda d: sf.write(d / "quiet.wav", np.zeros(RATE), RATE) or d / "quiet.wav", "silent"),
])
def test_separate_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, make, words):
    assert main(["separate", str(make(tmp_path)), "--out", str(tmp_path / "stems"), "--quiet"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not any((tmp_path / "stems").glob("*.wav"))


def test_separate_with_demucs_and_no_weights_is_one_line(mix, tmp_path, capsys, monkeypatch):
    pytest.importorskip("demucs", reason="the demucs package is not installed")
    import huggingface_hub
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.delenv("REASCRIBE_DEMUCS_WEIGHTS", raising=False)
    assert main(["separate", str(mix), "--out", str(tmp_path / "o"), "--backend", "demucs", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "demucs weights not found" in err[0]


def test_transcribe_drums_with_hpss_separation_hears_the_whole_mix(mix, tmp_path, monkeypatch, capsys):
    from drum_support import install_stand_in

    made = install_stand_in(monkeypatch)
    plain, separated = tmp_path / "plain.mid", tmp_path / "separated.mid"
    assert main(["transcribe", str(mix), "--kind", "drums", "--out", str(plain), "--quiet"]) == 0
    assert main(["transcribe", str(mix), "--kind", "drums", "--out", str(separated), "--quiet", "--separate"]) == 0
    assert plain.is_file() and separated.is_file()
    heard_plain, heard_separated = made[0].given[0], made[1].given[0]
    assert heard_separated.ndim == 1 and len(heard_separated) == pytest.approx(len(heard_plain), abs=2)
    # hpss's percussive stem costs the drum model hits (separation.hears_mix): the chord stays in what it hears.
    between_clicks = slice(RATE // 4, RATE // 4 + 4000)  # only the chord sounds here
    loudness = [np.abs(heard[between_clicks]).max() for heard in (heard_plain, heard_separated)]
    assert loudness[1] == pytest.approx(loudness[0], rel=0.05)


def test_separate_flag_checks_its_backend(mix, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["transcribe", str(mix), "--kind", "drums", "--out", str(tmp_path / "o.mid"), "--separate", "banjo"])
    assert exc.value.code == 2 and "banjo" in capsys.readouterr().err
