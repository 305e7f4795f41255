"""The drum model's training data: renders are reproducible and their labels sit on the sound."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fluidsynth", reason="pyfluidsynth renders training data (pip install -e .[test])")

from reascribe.models.drums import features  # noqa: E402
from reascribe.models.drums.classes import CLASSES  # noqa: E402
from training import augment, drums_data  # noqa: E402
from training.synth import SOUNDFONTS  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(p.exists() for p in SOUNDFONTS.values()), reason="soundfonts missing: install/setup.sh --dev"
)
HITS = [(0.5, 36, 100), (1.5, 38, 90), (2.5, 42, 70), (3.5, 43, 100), (4.5, 22, 60), (5.5, 49, 110)]  # apart: no ring between


@pytest.fixture(scope="module")
def renderer():
    return drums_data._renderer()


def _onset_frame(audio: np.ndarray, near_s: float) -> int:
    """The frame where the energy rises fastest within 100 ms of ``near_s``."""
    energy = features.spectrogram(audio).sum(axis=1)
    lo = int((near_s - 0.1) * features.FPS)
    return lo + int(np.argmax(np.diff(energy[lo : lo + 21]))) + 1


def test_labels_sit_on_the_attacks_for_every_kit(renderer):
    for i in range(12):  # different seeds: different kits, tempi and kit mixes
        audio, onsets, duration = drums_data.render_drums(HITS, renderer, np.random.default_rng(i))
        assert len(audio) == int(round(duration * features.SAMPLE_RATE))
        assert [CLASSES[c] for c in onsets[:, 1]] == ["kick", "snare", "hihat_closed", "tom_low", "hihat_closed", "crash"]
        for frame, _, _ in onsets:
            assert abs(_onset_frame(audio, frame / features.FPS) - frame) <= 2


def test_renders_are_reproducible_from_the_seed(renderer):
    a = drums_data.render_drums(HITS, renderer, np.random.default_rng(7))
    b = drums_data.render_drums(HITS, renderer, np.random.default_rng(7))
    c = drums_data.render_drums(HITS, renderer, np.random.default_rng(8))
    # Equal to -60 dB: a process's first render of a sample differs that little from later ones.
    np.testing.assert_allclose(a[0], b[0], atol=1e-3)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1]) or len(a[0]) != len(c[0])  # another tempo


def test_augmentation_keeps_length_and_is_seeded():
    x = np.random.default_rng(0).standard_normal(features.SAMPLE_RATE).astype(np.float32) * 0.1
    for effect in (augment.random_eq, augment.compress, augment.reverb, augment.noise, augment.band_limit):
        y1, y2 = effect(x, np.random.default_rng(3)), effect(x, np.random.default_rng(3))
        assert y1.shape == x.shape and y1.dtype == np.float32 and np.isfinite(y1).all()
        np.testing.assert_array_equal(y1, y2)
    peak = np.abs(augment.to_peak(x, np.random.default_rng(1), -6, -6)).max()
    assert peak == pytest.approx(10 ** (-6 / 20), rel=1e-4)


def test_groove_rows_keep_to_their_split():
    train = drums_data.groove_rows("train")
    assert len(train) == 897 and {r["split"] for r in train} == {"train"}
    assert not {r["midi_filename"] for r in train} & {r["midi_filename"] for r in drums_data.groove_rows("test")}
