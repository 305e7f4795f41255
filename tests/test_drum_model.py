"""The drum model's parts: features, peak picking, checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reascribe.errors import ModelError
from reascribe.models.drums import features
from reascribe.models.drums.classes import CLASSES, EVAL_GROUP, GM_NOTE, GM_RENDER_NOTE, TD11_CLASS
from reascribe.models.drums.network import DrumNet
from reascribe.models.drums.transcriber import DrumTranscriber, hits_from_activations, pick_peaks


def test_filterbank_is_unit_area_and_log_spaced():
    fb = features.filterbank()
    assert fb.shape == (features.N_FFT // 2 + 1, features.n_bands())
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-5)
    centres = fb.argmax(axis=0) * features.SAMPLE_RATE / features.N_FFT
    assert np.all(np.diff(centres) > 0)
    high = centres > 1000  # above the merged low bins, neighbours are a semitone apart
    ratios = centres[high][1:] / centres[high][:-1]
    assert np.all(np.abs(np.log2(ratios) * 12 - 1) < 0.5)


def test_spectrogram_frames_and_a_sine_in_its_band():
    sr = features.SAMPLE_RATE
    t = np.arange(sr) / sr
    spec = features.spectrogram(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert spec.shape == (features.n_frames(sr), features.n_bands()) == (101, features.n_bands())
    centres = features.filterbank().argmax(axis=0) * sr / features.N_FFT
    assert abs(centres[spec[50].argmax()] - 1000) < 60
    assert not features.spectrogram(np.zeros(sr)).any()


def test_spectrogram_chunks_do_not_change_the_result():
    x = np.random.default_rng(0).standard_normal(features.SAMPLE_RATE * 3).astype(np.float32)
    np.testing.assert_allclose(features.spectrogram(x, chunk_frames=37), features.spectrogram(x), rtol=1e-5, atol=1e-5)


def test_the_second_channel_keeps_hits_and_drops_sustained_sound():
    sr = features.SAMPLE_RATE
    t = np.arange(3 * sr) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t)  # a held note
    hit = int(1.5 * sr)
    x[hit : hit + 441] += np.random.default_rng(0).standard_normal(441) * np.exp(-np.arange(441) / 80)  # a click
    spec = features.spectrogram(x)
    net_in = features.network_input(spec)
    assert net_in.shape == (len(spec), 2, features.n_bands())
    np.testing.assert_array_equal(net_in[:, 0], spec)
    tone_band = spec[50].argmax()
    steady = np.r_[20:130, 170:280]  # away from the click and the file's ends
    assert np.abs(net_in[steady, 1, tone_band]).max() < 0.05 * spec[steady, tone_band].min()
    click_frame = hit // features.HOP
    high = features.filterbank().argmax(axis=0) * sr / features.N_FFT > 4000
    assert net_in[click_frame, 1, high].mean() > 0.5 * spec[click_frame, high].mean() > 0
    assert features.network_input(np.zeros((0, features.n_bands()))).shape == (0, 2, features.n_bands())


def test_pick_peaks_threshold_gap_plateau_and_refinement():
    a = np.zeros(40)
    a[5] = 0.9  # clean peak
    a[10], a[11] = 0.6, 0.6  # plateau: one hit, at its first frame... refined between the two
    a[20], a[21] = 0.8, 0.7  # neighbour within the gap is not a second hit
    a[30] = 0.2  # under the threshold
    peaks = pick_peaks(a, 0.5)
    assert len(peaks) == 3
    assert peaks[0] == 5
    assert 10 <= peaks[1] <= 10.5
    assert 20 < peaks[2] < 20.5  # pulled towards the stronger neighbour
    assert len(pick_peaks(a, 0.95)) == 0
    assert len(pick_peaks(np.ones(2), 0.5)) == 0


def test_hits_from_activations_map_classes_and_velocities():
    onset = np.zeros((50, len(CLASSES)), np.float32)
    velocity = np.zeros_like(onset)
    onset[10, CLASSES.index("snare")], velocity[10, CLASSES.index("snare")] = 0.9, 0.5
    onset[30, CLASSES.index("kick")], velocity[30, CLASSES.index("kick")] = 0.9, 0.0
    hits = hits_from_activations(onset, velocity, np.full(len(CLASSES), 0.5))
    assert [(h.drum, round(h.time_s, 3), h.velocity) for h in hits] == [("snare", 0.1, 64), ("kick", 0.3, 1)]


def test_peaks_on_the_first_and_last_frames_stay_inside_the_activation():
    onset = np.zeros((20, len(CLASSES)), np.float32)
    onset[[0, 19], CLASSES.index("kick")] = [0.9, 0.9]
    onset[[1, 18], CLASSES.index("kick")] = [0.6, 0.6]  # a parabola through an edge would leave the frames
    hits = hits_from_activations(onset, np.ones_like(onset), np.full(len(CLASSES), 0.5))
    assert [round(h.time_s, 3) for h in hits] == [0.0, 0.19]


def test_class_maps_cover_each_other():
    assert set(GM_NOTE) == set(CLASSES) == set(EVAL_GROUP)
    assert set(TD11_CLASS.values()) == set(CLASSES)
    assert set(GM_RENDER_NOTE) == set(TD11_CLASS)
    assert all(35 <= n <= 59 for n in GM_RENDER_NOTE.values())


def test_missing_or_corrupt_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        DrumTranscriber(checkpoint=tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot be read"):
        DrumTranscriber(checkpoint=bad)


def _checkpoint(path, **changes):
    net = DrumNet(features.n_bands(), len(CLASSES))
    state = {"weights": net.state_dict(), "config": net.config, "classes": list(CLASSES),
             "n_bands": features.n_bands(), "thresholds": [0.5] * len(CLASSES), **changes}  # fmt: skip
    torch.save(state, path)
    return path


def test_a_checkpoint_for_other_classes_is_refused(tmp_path):
    with pytest.raises(ModelError, match="does not match"):
        DrumTranscriber(checkpoint=_checkpoint(tmp_path / "m.pt", classes=["kick"]))


def test_a_checkpoint_that_reads_the_spectrogram_alone_is_refused(tmp_path):
    net = DrumNet(features.n_bands(), len(CLASSES), channels=1)
    config = {k: v for k, v in net.config.items() if k != "channels"}  # as written before the second channel
    with pytest.raises(ModelError, match="does not match"):
        DrumTranscriber(checkpoint=_checkpoint(tmp_path / "m.pt", weights=net.state_dict(), config=config))


def test_activations_cover_every_frame_across_chunks(tmp_path, monkeypatch):
    from reascribe.models.drums import transcriber

    model = DrumTranscriber(checkpoint=_checkpoint(tmp_path / "m.pt"))
    x = np.random.default_rng(1).standard_normal(features.SAMPLE_RATE * 5).astype(np.float32) * 0.1
    whole, _ = model.activations(x, lambda f, m: None)
    monkeypatch.setattr(transcriber, "CHUNK_FRAMES", 120)
    seen = []
    chunked, _ = model.activations(x, lambda f, m: seen.append(f))
    assert whole.shape == (features.n_frames(len(x)), len(CLASSES))
    np.testing.assert_allclose(chunked, whole, atol=1e-4)  # 1 s of context hides the chunk edges
    assert seen[0] == 0 and seen[-1] == 1.0 and len(seen) > 3
