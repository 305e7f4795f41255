"""The torchaudio stand-in: torchaudio's mel filter bank, and registered only when torchaudio is absent."""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
from contextlib import contextmanager

import librosa
import numpy as np
import pytest
import torch

from reascribe import compat
from reascribe.compat.torchaudio.functional import melscale_fbanks

# transkun 2.0's front end (its 2.0.conf): 4096-point frames at 44.1 kHz, 229 bands from 30 Hz to 8 kHz
N_FFT, SR, N_MELS, F_MIN, F_MAX = 4096, 44100, 229, 30.0, 8000.0
CHECKPOINT_KEY = "framewiseFeatureExtractor.freq2mels"


@contextmanager
def default_dtype(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def test_matches_the_buffer_stored_in_transkuns_checkpoint():
    weights = importlib.resources.files("transkun") / "pretrained/2.0.pt"
    stored = torch.load(str(weights), map_location="cpu", weights_only=True)["state_dict"][CHECKPOINT_KEY]
    ours = melscale_fbanks(N_FFT // 2 + 1, F_MIN, F_MAX, N_MELS, SR)
    assert ours.dtype == stored.dtype == torch.float32
    assert ours.shape == stored.shape == (2049, 229)
    assert torch.equal(ours, stored)  # bit for bit: torchaudio's float32 arithmetic, step by step


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, f_min, f_max", [(SR, N_FFT, N_MELS, F_MIN, F_MAX), (16000, 512, 40, 0.0, 8000.0)]
)
def test_equals_the_htk_formula_computed_by_librosa(sr, n_fft, n_mels, f_min, f_max):
    reference = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=True, norm=None, dtype=np.float64
    ).T
    with default_dtype(torch.float64):
        exact = melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sr).numpy()
    np.testing.assert_allclose(exact, reference, rtol=0, atol=1e-6)
    # In float32, as torchaudio computes it, differences of nearby bin frequencies lose up to ~2e-5;
    # transkun's checkpoint holds exactly those float32 values (previous test).
    single = melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, sr).numpy()
    np.testing.assert_allclose(single, reference, rtol=0, atol=5e-5)


def test_slaney_scale_and_norm_equal_librosa():
    reference = librosa.filters.mel(
        sr=SR, n_fft=N_FFT, n_mels=128, fmin=F_MIN, fmax=F_MAX, htk=False, norm="slaney", dtype=np.float64
    ).T
    with default_dtype(torch.float64):
        ours = melscale_fbanks(N_FFT // 2 + 1, F_MIN, F_MAX, 128, SR, norm="slaney", mel_scale="slaney").numpy()
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)


def test_rejects_unknown_norm_and_scale():
    with pytest.raises(ValueError, match="norm"):
        melscale_fbanks(2049, F_MIN, F_MAX, N_MELS, SR, norm="area")
    with pytest.raises(ValueError, match="mel_scale"):
        melscale_fbanks(2049, F_MIN, F_MAX, N_MELS, SR, mel_scale="bark")


@pytest.fixture
def no_torchaudio_module(monkeypatch):
    """sys.modules without any torchaudio entry, restored afterwards."""
    for name in ("torchaudio", "torchaudio.functional"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_installs_when_torchaudio_is_absent(no_torchaudio_module, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert compat.install_torchaudio_shim() is True
    import torchaudio
    import torchaudio.functional

    assert torchaudio.functional.melscale_fbanks is melscale_fbanks
    assert compat.install_torchaudio_shim() is True  # idempotent


def test_leaves_a_real_torchaudio_alone(no_torchaudio_module, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torchaudio" else None)
    assert compat.install_torchaudio_shim() is False
    assert "torchaudio" not in sys.modules
