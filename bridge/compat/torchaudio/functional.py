"""``melscale_fbanks`` as torchaudio computes it, in float32 torch ops so the matrix is bit-identical.

Ported from torchaudio's ``functional/functional.py`` (BSD-2): linear STFT bin frequencies from 0 to
``sample_rate // 2``, ``n_mels + 2`` points equally spaced on the mel scale, triangular filters between
them, optional slaney area normalisation.
"""

from __future__ import annotations

import math

import torch

# Slaney's auditory toolbox mel scale: linear below 1 kHz, logarithmic above.
_SLANEY_HZ_PER_MEL = 200.0 / 3.0
_SLANEY_LOG_START_HZ = 1000.0
_SLANEY_LOG_START_MEL = _SLANEY_LOG_START_HZ / _SLANEY_HZ_PER_MEL
_SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(freq_hz: float, mel_scale: str) -> float:
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + freq_hz / 700.0)
    if freq_hz >= _SLANEY_LOG_START_HZ:
        return _SLANEY_LOG_START_MEL + math.log(freq_hz / _SLANEY_LOG_START_HZ) / _SLANEY_LOG_STEP
    return freq_hz / _SLANEY_HZ_PER_MEL


def _mel_to_hz(mels: torch.Tensor, mel_scale: str) -> torch.Tensor:
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    freqs_hz = _SLANEY_HZ_PER_MEL * mels
    log_region = mels >= _SLANEY_LOG_START_MEL
    freqs_hz[log_region] = _SLANEY_LOG_START_HZ * torch.exp(
        _SLANEY_LOG_STEP * (mels[log_region] - _SLANEY_LOG_START_MEL)
    )
    return freqs_hz


def melscale_fbanks(
    n_freqs: int,
    f_min: float,
    f_max: float,
    n_mels: int,
    sample_rate: int,
    norm: str | None = None,
    mel_scale: str = "htk",
) -> torch.Tensor:
    """The (n_freqs, n_mels) matrix that maps a linear power spectrum to mel bands."""
    if norm not in (None, "slaney"):
        raise ValueError(f"norm={norm!r} must be None or 'slaney'")
    if mel_scale not in ("htk", "slaney"):
        raise ValueError(f"mel_scale={mel_scale!r} must be 'htk' or 'slaney'")
    all_freqs_hz = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_pts = torch.linspace(_hz_to_mel(f_min, mel_scale), _hz_to_mel(f_max, mel_scale), n_mels + 2)
    f_pts_hz = _mel_to_hz(mel_pts, mel_scale)

    f_diff_hz = f_pts_hz[1:] - f_pts_hz[:-1]
    slopes = f_pts_hz.unsqueeze(0) - all_freqs_hz.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down_slopes = -1.0 * slopes[:, :-2] / f_diff_hz[:-1]
    up_slopes = slopes[:, 2:] / f_diff_hz[1:]
    fb = torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))
    if norm == "slaney":
        fb *= (2.0 / (f_pts_hz[2 : n_mels + 2] - f_pts_hz[:n_mels])).unsqueeze(0)
    return fb
