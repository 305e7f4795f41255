"""Audio augmentation for training renders: EQ, compression, room reverb, noise, band limits, gain.

Each function takes a numpy Generator so a dataset is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

SR = 44100


def _biquad(kind: str, f0: float, gain_db: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook coefficients."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / SR
    alpha = np.sin(w0) / (2 * q)
    cos = np.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    else:
        sq = 2 * np.sqrt(a) * alpha
        sign = 1 if kind == "low" else -1
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + sq),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - sq),
        ]
        den = [(a + 1) + sign * (a - 1) * cos + sq, -sign * 2 * ((a - 1) + sign * (a + 1) * cos), (a + 1) + sign * (a - 1) * cos - sq]
    return np.array(b) / den[0], np.array(den) / den[0]


def random_eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A low shelf, a bell and a high shelf, each up to ±9 dB."""
    for kind, lo, hi in (("low", 60, 300), ("peak", 200, 6000), ("high", 3000, 12000)):
        f0 = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        b, a = _biquad(kind, f0, rng.uniform(-9, 9), rng.uniform(0.5, 1.5) if kind == "peak" else 0.7)
        x = scipy.signal.lfilter(b, a, x)
    return x.astype(np.float32)


def compress(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A feed-forward compressor: threshold 6-24 dB under the peak, ratio 2-8, 5-80 ms release."""
    peak = np.abs(x).max() + 1e-9
    threshold = peak * 10 ** (-rng.uniform(6, 24) / 20)
    ratio = rng.uniform(2, 8)
    coef = np.exp(-1 / (SR * rng.uniform(0.005, 0.08)))
    env = scipy.signal.lfilter([1 - coef], [1, -coef], np.abs(x))
    gain = np.where(env > threshold, (np.maximum(env, 1e-9) / threshold) ** (1 / ratio - 1), 1.0)
    return (x * gain).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolution with a synthetic room: decaying noise with RT60 0.15-1.5 s, darker as it decays."""
    rt60 = rng.uniform(0.15, 1.5)
    n = int(SR * min(rt60, 1.0))
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    ir = scipy.signal.lfilter([0.4], [1, -0.6], ir)  # rooms absorb highs
    ir[: int(SR * rng.uniform(0.005, 0.03))] = 0  # pre-delay
    ir /= np.sqrt(np.sum(ir**2)) + 1e-9
    wet = scipy.signal.fftconvolve(x, ir)[: len(x)]
    mix = rng.uniform(0.05, 0.5)
    return ((1 - mix) * x + mix * wet * np.abs(x).max() / (np.abs(wet).max() + 1e-9)).astype(np.float32)


def noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White or pink noise 25-60 dB under the signal's RMS."""
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    n = rng.standard_normal(len(x))
    if rng.random() < 0.5:
        n = scipy.signal.lfilter([0.05, -0.05], [1, -0.99], n)  # roughly pink
    n *= rms * 10 ** (-rng.uniform(25, 60) / 20) / (np.sqrt(np.mean(n**2)) + 1e-9)
    return (x + n).astype(np.float32)


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A low-pass at 7-16 kHz (lossy codecs, old recordings) or a high-pass at 30-120 Hz."""
    if rng.random() < 0.7:
        sos = scipy.signal.butter(6, rng.uniform(7000, 16000), "lowpass", fs=SR, output="sos")
    else:
        sos = scipy.signal.butter(2, rng.uniform(30, 120), "highpass", fs=SR, output="sos")
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


def to_peak(x: np.ndarray, rng: np.random.Generator, low_db: float = -24.0, high_db: float = -1.0) -> np.ndarray:
    peak = np.abs(x).max()
    if peak < 1e-9:
        return x
    return (x * 10 ** (rng.uniform(low_db, high_db) / 20) / peak).astype(np.float32)


def chain(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Each effect with probability ``p``, in a studio's order."""
    for effect in (random_eq, compress, reverb, band_limit):
        if rng.random() < p:
            x = effect(x, rng)
    return x
