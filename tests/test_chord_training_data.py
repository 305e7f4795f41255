"""The chord model's training data: fixed song splits, labels that transpose with the music, and
reproducible renders."""

from __future__ import annotations

import numpy as np
import pytest
from reascribe.models.chords import features
from reascribe.models.chords import vocabulary as voc

chords_data = pytest.importorskip("training.chords_data", reason="pyfluidsynth renders training data (pip install -e .[test])")
from training import chords_train
from training.synth import SOUNDFONTS


def test_the_splits_are_fixed_and_disjoint():
    train, valid, test = (set(chords_data.songs(s)) for s in ("train", "validation", "test"))
    assert (len(train), len(valid), len(test)) == (640, 80, 80)
    assert not (train & valid or train & test or valid & test)
    assert all(n % 10 == 0 for n in test) and all(n % 10 == 5 for n in valid)


def test_the_benchmark_instruments_are_never_trained_on():
    a, b = chords_data.SET_A, chords_data.SET_B
    assert not set(a.soundfonts) & set(b.soundfonts)
    assert not (set(a.harmony) | set(a.melody) | set(a.bass)) & (set(b.harmony) | set(b.melody) | set(b.bass))


def test_pop909_labels_transpose_with_the_song():
    seg = chords_data.read_lab(chords_data.POP909 / "001" / "chord_midi.txt")
    lines = (chords_data.POP909 / "001" / "chord_midi.txt").read_text().splitlines()
    up = seg.transposed(5)
    for i, line in enumerate(lines):
        expected = voc.encode(voc.transpose(line.split()[2], 5))
        assert (up.classes[i], up.bass[i]) == expected[:2] and np.array_equal(up.tones[i], expected[2])
    cls, bass, _ = seg.frames(np.array([-1.0, seg.starts[10] + 1e-3, seg.ends[-1] + 1.0]))
    assert cls.tolist() == [0, seg.classes[10], 0] and bass[0] == voc.NO_BASS


def test_batch_shifts_move_features_and_labels_together():
    spec = np.zeros((4, features.N_BINS), np.float32)
    spec[:, 30] = 1.0
    cls, bass = np.array([voc.encode("C:maj")[0]] * 4), np.array([4] * 4)
    tones, key = np.tile(voc.encode("C:maj")[2], (4, 1)), np.array([voc.key_class("C:maj")] * 4)
    s, c, b, t, k = chords_train.shift(spec, cls, bass, tones, key, 2)
    assert np.flatnonzero(s[0]).tolist() == [36]
    assert voc.label(int(c[0]), int(b[0])) == "D:maj/3" and voc.KEY_NAMES[int(k[0])] == "D:maj"
    assert np.array_equal(t[0], voc.encode("D:maj")[2])


@pytest.mark.skipif(not all(p.exists() for p in SOUNDFONTS.values()), reason="soundfonts missing: install/setup.sh --dev")
def test_examples_are_rebuilt_from_their_seed():
    job = ("train", 0, 3, 11, None)  # a generated progression: the quickest render
    chords_data.build_example(job)  # a process's first render of a sample differs a little from later ones
    a, b = chords_data.build_example(job), chords_data.build_example(job)
    assert np.array_equal(a.features, b.features) and np.array_equal(a.classes, b.classes)
    assert len(a.features) == len(a.classes) > 200 and (a.classes > 0).mean() > 0.8
    assert not np.array_equal(chords_data.build_example(("train", 1, 3, 11, None)).classes, a.classes)
