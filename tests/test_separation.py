"""Separation backends: stems that add up, chunk seams that cannot be heard, the demucs code path."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from reascribe import separation
from reascribe.errors import JobCancelled, ModelError, RequestError
from reascribe.pipelines import no_progress
from reascribe.separation.hpss import HpssSeparator
from reascribe.separation.stems import write_stems

RATE = 44100


def beat(seconds: float, channels: int = 2, rate: int = RATE) -> np.ndarray:
    """A held chord (left and right differ) with a click every quarter second: both parts are obvious."""
    t = np.arange(int(seconds * rate)) / rate
    chord = [0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)]
    x = np.stack([chord[0] + chord[1], chord[1] + chord[2]][:channels], axis=1)
    clicks = np.zeros_like(t)
    for start in range(0, len(t), rate // 4):
        clicks[start : start + 64] = np.exp(-np.arange(len(clicks[start : start + 64])) / 8.0)
    return (x + 0.8 * clicks[:, None]).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 2])
def test_hpss_stems_add_up_to_the_input_and_keep_its_shape(channels):
    x = beat(3.0, channels)
    stems = HpssSeparator().separate(x, no_progress)
    assert tuple(stems) == HpssSeparator.stems == ("drums", "harmonic", "residual")
    for stem in stems.values():
        assert stem.shape == x.shape and stem.dtype == np.float32
    np.testing.assert_allclose(sum(stems.values()), x, atol=1e-6)


def test_hpss_puts_clicks_in_drums_and_the_chord_in_harmonic():
    x = beat(3.0)
    stems = HpssSeparator().separate(x, no_progress)
    between_clicks = slice(RATE // 8, RATE // 8 + 2000)  # only the chord sounds here
    chord_part = x[between_clicks]
    assert np.linalg.norm(stems["harmonic"][between_clicks] - chord_part) < 0.2 * np.linalg.norm(chord_part)
    on_click = slice(RATE // 2, RATE // 2 + 64)
    assert np.abs(stems["drums"][on_click]).max() > 0.5
    assert np.abs(stems["drums"][between_clicks]).max() < 0.1


def test_chunks_join_without_seams():
    """Chunked separation equals separating the whole file at once (context and frame alignment)."""
    x = beat(7.3)
    whole = HpssSeparator(chunk_s=60.0).separate(x, no_progress)
    calls = []
    chunked = HpssSeparator(chunk_s=2.0, context_s=1.0, fade_s=0.5).separate(x, lambda f, m: calls.append((f, m)))
    assert len(calls) == 5  # 4 chunks and the end
    for name in whole:
        np.testing.assert_allclose(chunked[name], whole[name], atol=1e-5)


def test_odd_lengths_short_audio_and_silence():
    for frames in (1, 100, 2047, 2 * RATE + 1):
        x = beat(frames / RATE + 1.0)[:frames]
        stems = HpssSeparator(chunk_s=1.0, context_s=0.25, fade_s=0.1).separate(x, no_progress)
        np.testing.assert_allclose(sum(stems.values()), x, atol=1e-6)
    silent = HpssSeparator().separate(np.zeros((RATE, 2), np.float32), no_progress)
    assert all(np.isfinite(s).all() and not s.any() for s in silent.values())
    with pytest.raises(ValueError):
        HpssSeparator().separate(np.zeros(100, np.float32), no_progress)


def test_progress_rises_and_cancel_stops_at_the_next_chunk():
    seen = []

    def cancel_on_second(fraction, message):
        seen.append(fraction)
        if len(seen) == 2:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        HpssSeparator(chunk_s=1.0).separate(beat(5.0), cancel_on_second)
    assert seen == sorted(seen) and len(seen) == 2


def test_each_kind_gets_its_stem():
    assert separation.stem_for("drums", separation.create("hpss")) == separation.MIX
    assert separation.stem_for("piano", separation.create("hpss")) == "harmonic"
    with pytest.raises(RequestError, match="banjo"):
        separation.create("banjo")


def test_stems_never_replace_a_file(tmp_path):
    stems = {"drums": np.zeros((10, 2), np.float32), "harmonic": np.ones((10, 2), np.float32) * 0.5}
    (tmp_path / "song_drums.wav").write_bytes(b"mine")
    paths = write_stems(stems, RATE, tmp_path, "song")
    assert [p.name for p in paths] == ["song_drums (2).wav", "song_harmonic.wav"]
    assert (tmp_path / "song_drums.wav").read_bytes() == b"mine"
    data, rate = sf.read(paths[1], dtype="float32")
    assert rate == RATE and data.shape == (10, 2) and np.all(data == 0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song_drums (2).wav", "song_drums.wav", "song_harmonic.wav"]


@pytest.mark.parametrize("rate, channels", [(22050, 1), (48000, 2), (11025, 2)])
def test_separate_file_resamples_any_rate_and_writes_one_wav_per_stem(tmp_path, rate, channels):
    from reascribe.separate import separate_file

    path = tmp_path / "in put.wav"
    sf.write(path, beat(2.0, channels, rate), rate)
    written = separate_file(path, tmp_path / "stems", show_progress=False)
    assert [p.name for p in written] == ["in put_drums.wav", "in put_harmonic.wav", "in put_residual.wav"]
    for p in written:
        data, stem_rate = sf.read(p, dtype="float32", always_2d=True)
        assert stem_rate == RATE and data.shape[1] == channels and abs(data.shape[0] - 2 * RATE) <= 1


# ---------------------------------------------------------------- demucs, with a network of random weights

SOURCES = ["drums", "bass", "other", "vocals"]
TINY = {"sources": SOURCES, "channels": 8, "depth": 3, "t_layers": 1, "nfft": 512, "segment": 1, "dconv_comp": 4}


@pytest.fixture
def tiny_demucs(tmp_path, monkeypatch):
    """A small HTDemucs (htdemucs's class) with random weights, saved as demucs saves its checkpoints
    and put where demucs's own command caches htdemucs, in a torch hub folder of this test."""
    pytest.importorskip("demucs", reason="the demucs package is not installed (pip install 'reascribe[demucs]')")
    import huggingface_hub
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(**TINY)
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save({"klass": HTDemucs, "args": [], "kwargs": TINY, "state": model.state_dict()},
               hub / "checkpoints" / "955717e8-00000000.th")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # not the user's cache
    monkeypatch.delenv("REASCRIBE_DEMUCS_WEIGHTS", raising=False)
    return hub


def test_demucs_loads_cached_weights_and_separates_stereo_and_mono(tiny_demucs):
    separator = separation.create("demucs", num_threads=1)
    separator.load()
    assert separator.stems == tuple(SOURCES) and separator.sample_rate == RATE
    assert separation.stem_for("drums", separator) == "drums" and separation.stem_for("piano", separator) == "other"
    calls = []
    x = beat(2.0)
    stems = separator.separate(x, lambda f, m: calls.append(f))
    assert set(stems) == set(SOURCES) and all(s.shape == x.shape and np.isfinite(s).all() for s in stems.values())
    assert calls[0] == 0.0 and calls[-1] == 1.0 and calls == sorted(calls) and len(calls) >= 4
    mono = separator.separate(x[:, :1], no_progress)
    assert all(s.shape == (2 * RATE, 1) for s in mono.values())


def test_demucs_weights_from_the_environment_and_cancel(tiny_demucs, monkeypatch):
    weights = tiny_demucs / "checkpoints" / "955717e8-00000000.th"
    moved = weights.rename(tiny_demucs / "mine.th")
    monkeypatch.setenv("REASCRIBE_DEMUCS_WEIGHTS", str(moved))
    separator = separation.create("demucs", num_threads=1)

    def cancel(fraction, message):
        if fraction > 0:
            raise JobCancelled()

    with pytest.raises(JobCancelled):
        separator.separate(beat(3.0), cancel)


def test_demucs_without_weights_says_how_to_get_them(tiny_demucs, monkeypatch):
    (tiny_demucs / "checkpoints" / "955717e8-00000000.th").unlink()
    with pytest.raises(ModelError, match=r"demucs weights not found at .*python -m demucs -n htdemucs"):
        separation.create("demucs").load()
    monkeypatch.setenv("REASCRIBE_DEMUCS_WEIGHTS", str(tiny_demucs / "nothing.th"))
    with pytest.raises(ModelError, match="not a file"):
        separation.create("demucs").load()
    (tiny_demucs / "junk.th").write_bytes(b"not a model")
    monkeypatch.setenv("REASCRIBE_DEMUCS_WEIGHTS", str(tiny_demucs / "junk.th"))
    with pytest.raises(ModelError, match="not a demucs model file"):
        separation.create("demucs").load()
