"""From frame activations to chord segments: an HMM over the vocabulary, decoded with Viterbi.

Chords change seldom compared with the frame rate, so staying in a chord is free and switching costs
``switch_penalty`` nats, reduced where the network's change head hears a chord change. The observation
is the network's chord posterior. Each segment then takes the bass note the bass head hears most over
it: a chord tone other than the root makes an inversion (``C:maj/3``), anything else root position.
"""

from __future__ import annotations

import numpy as np
from reascribe.events import ChordSegment
from reascribe.models.chords import vocabulary as voc

FLOOR = 1e-6  # probabilities below this are treated as this, so log(0) never decides a path


def viterbi(log_obs: np.ndarray, switch_cost: np.ndarray) -> np.ndarray:
    """Most likely state path of (frames, states) log observations; moving to another state at frame t
    costs ``switch_cost[t]`` nats (same for every pair of states), staying costs nothing."""
    n, k = log_obs.shape
    if n == 0:
        return np.zeros(0, np.int64)
    back = np.zeros((n, k), np.int32)
    score = log_obs[0].copy()
    for t in range(1, n):
        best = int(np.argmax(score))
        jump = score[best] - switch_cost[t]
        stay = score >= jump
        back[t] = np.where(stay, np.arange(k), best)
        score = np.where(stay, score, jump) + log_obs[t]
    path = np.empty(n, np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def decode_classes(chord_prob: np.ndarray, change_prob: np.ndarray, switch_penalty: float) -> np.ndarray:
    """(frames,) vocabulary classes from the chord posterior and the change probability."""
    cost = switch_penalty * (1.0 - np.clip(change_prob, 0.0, 1.0))
    return viterbi(np.log(np.maximum(chord_prob, FLOOR)), cost)


def segments(classes: np.ndarray, bass_prob: np.ndarray, fps: float, duration_s: float) -> list[ChordSegment]:
    """Runs of one class as segments with inversions; boundaries halfway between frame centres."""
    out: list[ChordSegment] = []
    edges = np.flatnonzero(np.diff(classes)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(classes)]):
        cls = int(classes[lo])
        bass = int(np.argmax(bass_prob[lo:hi].mean(axis=0))) if cls else voc.NO_BASS
        label = voc.label(cls, bass)
        start_s = 0.0 if lo == 0 else min(duration_s, (lo - 0.5) / fps)
        end_s = duration_s if hi == len(classes) else min(duration_s, (hi - 0.5) / fps)
        if end_s <= start_s:
            continue
        if out and out[-1].label == label:
            out[-1] = ChordSegment(out[-1].start_s, end_s, label)
        else:
            out.append(ChordSegment(start_s, end_s, label))
    return out


def key(key_logprob: np.ndarray, classes: np.ndarray) -> str | None:
    """The song's key: the key class with the highest summed log probability over frames with a chord."""
    voiced = key_logprob[classes > 0]
    if len(voiced) == 0:
        return None
    return voc.KEY_NAMES[int(np.argmax(voiced.sum(axis=0)))]
