"""A tempo map detected from audio, for MIDI files written without a project (drop folder, CLI)."""

from __future__ import annotations

import logging

import numpy as np
import soxr

from reascribe.audio import AudioSection, downmix
from reascribe.tempo import MAX_BPM, MIN_BPM, TempoMap

log = logging.getLogger(__name__)

ANALYSIS_RATE = 22050  # librosa's default rate: beat tracking needs no more than 11 kHz of bandwidth
HOP_LENGTH = 256  # 11.6 ms onset frames at 22.05 kHz: one frame of jitter is 1.9 % of a beat at 100 BPM
SMOOTHING_BEATS = 2  # each beat is refitted on a line through its 2 neighbours each side
MIN_BEATS = 4  # fewer detected beats than this is no grid (silence, rubato, a single chord)
DEFAULT_BPM = 120.0


def detect_tempo_map(section: AudioSection) -> TempoMap:
    """A map whose quarter notes fall on the section's beats; constant where no beat is found.

    Times are seconds from the start of the section.
    """
    import librosa  # heavy (numba); only files without a project need it

    y = downmix(section.samples, 1)[:, 0]
    if section.sample_rate != ANALYSIS_RATE:
        y = soxr.resample(y, section.sample_rate, ANALYSIS_RATE)
    onset_env = librosa.onset.onset_strength(y=y, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH)
    tempo, beat_times_s = librosa.beat.beat_track(
        onset_envelope=onset_env, sr=ANALYSIS_RATE, hop_length=HOP_LENGTH, units="time"
    )
    bpm = float(np.atleast_1d(tempo)[0])
    fallback_bpm = bpm if MIN_BPM <= bpm <= MAX_BPM else DEFAULT_BPM
    if len(beat_times_s) < MIN_BEATS:
        log.debug("%d beats found; constant %.1f BPM", len(beat_times_s), fallback_bpm)
        return TempoMap.constant(fallback_bpm)
    return TempoMap.from_beats(list(_smoothed(np.asarray(beat_times_s))), fallback_bpm)


def _smoothed(beat_times_s: np.ndarray) -> np.ndarray:
    """Beat times refitted on local straight lines: removes the onset-frame quantisation jitter.

    A steady tempo comes out steady; a tempo change is followed within ``SMOOTHING_BEATS`` beats.
    """
    index = np.arange(len(beat_times_s))
    smoothed = np.empty_like(beat_times_s)
    for i in index:
        lo, hi = max(0, i - SMOOTHING_BEATS), min(len(beat_times_s), i + SMOOTHING_BEATS + 1)
        slope, intercept = np.polyfit(index[lo:hi], beat_times_s[lo:hi], 1)
        smoothed[i] = slope * i + intercept
    keep = np.r_[True, np.diff(smoothed) > 0]  # a refit never reorders real beats; guard the division anyway
    return smoothed[keep]
