"""The chord network's input: a constant-Q magnitude spectrogram, 36 bins per octave, ~10.8 frames/s.

Three bins per semitone (as in Korzeniowski & Widmer 2016, McFee & Bello 2017) let the network tell a
slightly detuned recording from a neighbouring pitch; six octaves from C1 cover the bass line and the
voicings above it. librosa's recursive-downsampling CQT runs at well over 500x real time on one core.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 22050
HOP = 2048  # a power of two, so librosa can halve the rate once per octave
FPS = SAMPLE_RATE / HOP  # ~10.77 frames per second
BINS_PER_OCTAVE = 36
N_OCTAVES = 6
N_BINS = BINS_PER_OCTAVE * N_OCTAVES
F_MIN_MIDI = 24  # C1, 32.7 Hz: the lowest bass string of a 5-string bass is B0, its harmonics are above
LOG_MUL = 100.0
MIN_SAMPLES = 2**16  # ~3 s: longer than the C1 filter (Q * SAMPLE_RATE / 32.7 Hz ~ 1.6 s)


def n_frames(n_samples: int) -> int:
    return 1 + n_samples // HOP


def frame_times_s(n: int) -> np.ndarray:
    """Centre time of each frame (librosa frames are centred on sample i * HOP)."""
    return np.arange(n) * HOP / SAMPLE_RATE


def cqt(samples: np.ndarray) -> np.ndarray:
    """(frames, N_BINS) float32 log-magnitude CQT of mono ``samples`` at SAMPLE_RATE."""
    import librosa

    samples = np.asarray(samples, np.float32)
    n = n_frames(len(samples))
    if len(samples) < MIN_SAMPLES:  # shorter than the lowest filter: pad with silence
        samples = np.pad(samples, (0, MIN_SAMPLES - len(samples)))
    c = librosa.cqt(samples, sr=SAMPLE_RATE, hop_length=HOP, fmin=440.0 * 2 ** ((F_MIN_MIDI - 69) / 12),
                    n_bins=N_BINS, bins_per_octave=BINS_PER_OCTAVE)  # fmt: skip
    return np.log1p(LOG_MUL * np.abs(c)).T.astype(np.float32)[:n]
