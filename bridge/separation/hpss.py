"""The embedded default: harmonic / percussive / residual separation by median filtering (no weights).

A spectrogram's sustained partials are horizontal lines and drum hits vertical ones: a median filter
along time keeps the first, one along frequency the second (Fitzgerald 2010). Soft masks with a
separation margin leave what is clearly neither to the residual (Driedger, Mueller & Disch 2014), so
"drums" is the percussive part, "harmonic" the tonal part and "residual" the rest (noise, breath,
reverb tails, sounds between the two). The three stems add up to the input exactly: the residual
is the input minus the other two.

Long audio goes through in chunks: each chunk is separated with extra context on both sides (more
than the filters and the STFT window reach, and frame-aligned with the whole file), so its kept
part equals what separating the whole file would give; neighbours overlap by a short
equal-power crossfade. Working memory grows with the chunk, not the file.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from reascribe.pipelines import Progress

SAMPLE_RATE = 44100
N_FFT, HOP = 2048, 512  # 46 ms window, 11.6 ms hop
KERNEL = 31  # librosa's default: 0.36 s along time, 670 Hz along frequency
MARGIN = 2.0  # Driedger et al.'s separation factor, fixed a priori (never fitted to evaluation data)
CHUNK_S, CONTEXT_S, FADE_S = 30.0, 1.0, 0.5


def _hops(seconds: float) -> int:
    """``seconds`` in samples, rounded to whole hops so every chunk's STFT frames align with the file's."""
    return max(1, round(seconds * SAMPLE_RATE / HOP)) * HOP


class HpssSeparator:
    backend = "hpss"
    stems = ("drums", "harmonic", "residual")
    sample_rate = SAMPLE_RATE
    # The drum model was trained on drums under accompaniment; every percussive stem tried here (masks,
    # margins, mix minus a share of the harmonic part) cost it kick and snare hits on renders of held-out
    # drums over accompaniment, so the drum transcriber hears the mix (bench/separate.py measures both).
    hears_mix = frozenset({"drums"})

    def __init__(
        self, chunk_s: float = CHUNK_S, context_s: float = CONTEXT_S, fade_s: float = FADE_S, margin: float = MARGIN
    ) -> None:
        self.step, self.context, self.fade = _hops(chunk_s), _hops(context_s), _hops(fade_s)
        if self.fade > self.step:
            raise ValueError(f"fade_s={fade_s} must not exceed chunk_s={chunk_s}")
        self.margin = margin

    def load(self) -> None:
        """Nothing to load; here for the common shape."""

    def separate(self, samples: np.ndarray, progress: Progress) -> dict[str, np.ndarray]:
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"samples must be (frames, channels) with frames > 0, not {x.shape}")
        n = x.shape[0]
        count = max(1, math.ceil((n - self.fade) / self.step))
        drums, harmonic = np.zeros_like(x), np.zeros_like(x)
        ramp = np.sin(0.5 * np.pi * (np.arange(self.fade) + 0.5) / self.fade) ** 2  # fade-in; 1 - ramp fades out
        for i in range(count):
            progress(i / count, f"separating, chunk {i + 1}/{count}")
            start = i * self.step
            end = n if i == count - 1 else start + self.step + self.fade
            lo, hi = max(0, start - self.context), min(n, end + self.context)
            d, h = self._separate_block(x[lo:hi])
            weight = np.ones(end - start, dtype=np.float32)
            if i > 0:
                weight[: self.fade] = ramp
            if i < count - 1:
                weight[-self.fade :] = 1.0 - ramp
            drums[start:end] += weight[:, None] * d[start - lo : end - lo]
            harmonic[start:end] += weight[:, None] * h[start - lo : end - lo]
        progress(1.0, "separated")
        return {"drums": drums, "harmonic": harmonic, "residual": x - drums - harmonic}

    def _separate_block(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(percussive, harmonic) of a block, by soft masks shared by all channels."""
        import librosa  # heavy (numba); imported when separation runs

        with warnings.catch_warnings():  # a block shorter than the window is fine: it is zero-padded
            warnings.filterwarnings("ignore", message="n_fft=.* is too large", category=UserWarning)
            spec = librosa.stft(block.T, n_fft=N_FFT, hop_length=HOP)  # (channels, bins, frames)
        magnitude = np.abs(spec).mean(axis=0)  # one mask for every channel keeps the stereo image
        mask_h, mask_p = librosa.decompose.hpss(magnitude, kernel_size=KERNEL, mask=True, margin=self.margin)
        length = block.shape[0]
        percussive = librosa.istft(spec * mask_p, hop_length=HOP, n_fft=N_FFT, length=length)
        harmonic = librosa.istft(spec * mask_h, hop_length=HOP, n_fft=N_FFT, length=length)
        return percussive.T.astype(np.float32), harmonic.T.astype(np.float32)
