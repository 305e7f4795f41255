"""The drum network's input: a log-magnitude spectrogram on a logarithmic frequency axis, 100 frames/s.

As in the drum transcription literature (Vogl et al. 2017, Southall et al. 2017): a 2048-point STFT
(46 ms) every 10 ms, pooled by triangular filters 12 per octave from 30 Hz to 16 kHz (filters that
would fall between two FFT bins are merged, so the low octaves have fewer bands), then log(1 + 1000 x).
The network reads two channels: that spectrogram, and the spectrogram less its running median over
±0.5 s per band. The median follows sustained sound (bass, pads, held guitar chords) but not hits, so
the second channel shows the network what stands out of the accompaniment.
Written with numpy and scipy alone so the product and the training data share one exact definition.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.ndimage

SAMPLE_RATE = 44100
FPS = 100
HOP = SAMPLE_RATE // FPS
N_FFT = 2048
BANDS_PER_OCTAVE = 12
F_MIN, F_MAX = 30.0, 16000.0
LOG_MUL = 1000.0
INPUT_CHANNELS = 2  # network_input: the spectrogram, and the spectrogram less its background
MEDIAN_STRIDE = 4  # the running median is taken on every 4th frame and interpolated: ~14x cheaper
MEDIAN_FRAMES = 25  # strided frames in the median: ±0.5 s


@functools.lru_cache(maxsize=None)
def filterbank() -> np.ndarray:
    """(N_FFT // 2 + 1, bands) triangular filters of unit area on log-spaced centres."""
    bin_hz = SAMPLE_RATE / N_FFT
    n_octaves = np.log2(F_MAX / F_MIN)
    centres_hz = F_MIN * 2.0 ** (np.arange(int(n_octaves * BANDS_PER_OCTAVE) + 1) / BANDS_PER_OCTAVE)
    bins = np.unique(np.round(centres_hz / bin_hz).astype(int))
    filters = []
    for left, centre, right in zip(bins[:-2], bins[1:-1], bins[2:]):
        f = np.zeros(N_FFT // 2 + 1, np.float32)
        f[left : centre + 1] = np.linspace(0.0, 1.0, centre - left + 1)
        f[centre : right + 1] = np.linspace(1.0, 0.0, right - centre + 1)
        filters.append(f / f.sum())
    return np.stack(filters, axis=1)


def n_bands() -> int:
    return filterbank().shape[1]


def n_frames(n_samples: int) -> int:
    return n_samples // HOP + 1


def spectrogram(samples: np.ndarray, chunk_frames: int = 2000) -> np.ndarray:
    """(frames, bands) float32 features of mono ``samples`` at SAMPLE_RATE; frame i is centred on
    sample i * HOP. Computed in chunks so memory stays bounded on long audio."""
    samples = np.asarray(samples, dtype=np.float32)
    window = np.hanning(N_FFT).astype(np.float32)
    scale = 2.0 / window.sum()  # a full-scale sine peaks at 1.0
    padded = np.pad(samples, (N_FFT // 2, N_FFT // 2))
    total = n_frames(len(samples))
    fb = filterbank()
    out = np.empty((total, fb.shape[1]), np.float32)
    for start in range(0, total, chunk_frames):
        stop = min(total, start + chunk_frames)
        idx = np.arange(start, stop)[:, None] * HOP + np.arange(N_FFT)[None, :]
        frames = np.take(padded, idx, mode="clip") * window
        mag = np.abs(scipy.fft.rfft(frames, axis=1)) * scale
        out[start:stop] = np.log1p(LOG_MUL * (mag @ fb))
    return out


def background(spec: np.ndarray) -> np.ndarray:
    """Each band's running median over ±0.5 s, (frames, bands) float32."""
    spec = np.asarray(spec, np.float32)
    if not len(spec):
        return spec.copy()
    coarse = scipy.ndimage.median_filter(spec[::MEDIAN_STRIDE], size=(MEDIAN_FRAMES, 1), mode="nearest")
    pos = np.arange(len(spec)) / MEDIAN_STRIDE
    lo = np.minimum(pos.astype(int), len(coarse) - 1)
    hi = np.minimum(lo + 1, len(coarse) - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return coarse[lo] * (1 - w) + coarse[hi] * w


def network_input(spec: np.ndarray) -> np.ndarray:
    """(frames, INPUT_CHANNELS, bands) float32: the spectrogram and the spectrogram less its background."""
    spec = np.asarray(spec, np.float32)
    return np.stack([spec, spec - background(spec)], axis=1)
