"""The chord model's parts: CQT features, the vocabulary and its Harte labels, the HMM decoder, and the
shipped checkpoint on synthesised chords."""

from __future__ import annotations

import numpy as np
import pytest
from chord_support import progression, tone
from reascribe.models.chords import decode, features
from reascribe.models.chords import vocabulary as voc
from reascribe.models.chords.transcriber import CHECKPOINT


def test_cqt_puts_a_note_on_its_bin_at_about_ten_frames_a_second():
    spec = features.cqt(tone([57], 2.0, partials=1))  # A3, 220 Hz
    assert spec.shape == (features.n_frames(2 * features.SAMPLE_RATE), features.N_BINS)
    assert abs(features.FPS - 10.77) < 0.01
    expected_bin = (57 - features.F_MIN_MIDI) * features.BINS_PER_OCTAVE // 12
    assert abs(int(np.argmax(spec[5:15].mean(axis=0))) - expected_bin) <= 1
    assert features.cqt(np.zeros(100, np.float32)).shape == (1, features.N_BINS)


@pytest.mark.parametrize("label, expected, bass_pc", [
    ("C:maj", "C:maj", 0),
    ("A:min/b3", "A:min/b3", 0),
    ("Bb:7/3", "Bb:7/3", 2),
    ("G:sus4(b7)", "G:sus4", 7),  # 7sus4 is outside the vocabulary: the nearest is sus4
    ("F:9(*1)/3", "F:7/3", 9),  # tensions drop, the bass stays
    ("C:maj6(9)", "C:maj6", 0),
    ("C:minmaj7", "C:min", 0),
    ("F#:hdim7", "Gb:hdim7", 6),
    ("N", "N", voc.NO_BASS),
])  # fmt: skip
def test_harte_labels_map_onto_the_vocabulary(label, expected, bass_pc):
    cls, bass, tones = voc.encode(label)
    assert voc.label(cls, bass) == expected and bass == bass_pc
    assert tones.shape == (12,)


def test_every_class_round_trips_through_its_label():
    for cls in range(voc.N_CLASSES):
        assert voc.encode(voc.label(cls))[0] == cls
    assert voc.N_CLASSES == 1 + 12 * 13


def test_transposing_moves_the_root_and_keeps_the_rest():
    assert voc.transpose("C:maj7/3", 3) == "Eb:maj7/3"
    assert voc.transpose("B:min", 1) == "C:min"
    assert voc.transpose("N", 5) == "N"
    for label in ("D:hdim7/b5", "E:sus2", "G:7/b7"):
        cls, bass, tones = voc.encode(label)
        moved = voc.encode(voc.transpose(label, -4))
        assert np.array_equal(np.roll(tones, -4), moved[2]) and (bass - 4) % 12 == moved[1]


@pytest.mark.parametrize("label, key, symbol", [
    ("C:min7/b7", None, "Cm7/Bb"), ("Gb:maj/3", "D:maj", "F#/A#"), ("Db:hdim7", "Bb:min", "Dbm7b5"),
    ("Eb:maj6", "Eb:maj", "Eb6"), ("N", None, "N.C."), ("C:min9", None, "C:min9"),
])  # fmt: skip
def test_chord_symbols_are_spelled_for_the_key(label, key, symbol):
    assert voc.symbol(label, key) == symbol


def test_viterbi_holds_a_chord_through_a_brief_flicker_and_follows_a_real_change():
    probs = np.full((40, voc.N_CLASSES), 1e-3)
    c, am = voc.encode("C:maj")[0], voc.encode("A:min")[0]
    probs[:20, c], probs[20:, am] = 0.9, 0.9
    probs[8:10, c], probs[8:10, am] = 0.3, 0.6  # two frames lean to A minor
    no_change = np.zeros(40)
    held = decode.decode_classes(probs, no_change, switch_penalty=6.0)
    assert held.tolist() == [c] * 20 + [am] * 20
    flicker = decode.decode_classes(probs, no_change, switch_penalty=0.0)
    assert flicker[8] == am
    change = no_change.copy()
    change[8] = change[10] = 1.0  # the change head hears two changes: switching costs nothing there
    assert decode.decode_classes(probs, change, switch_penalty=6.0)[8] == am


def test_segments_take_their_bass_and_meet_between_frames():
    fps = 10.0
    c, g7 = voc.encode("C:maj")[0], voc.encode("G:7")[0]
    classes = np.array([0] * 3 + [c] * 5 + [g7] * 4)
    bass = np.zeros((12, 13))
    bass[:3, voc.NO_BASS] = 1
    bass[3:8, 4] = 1  # E under C major: first inversion
    bass[8:, 5] = 1  # F under G7: its seventh
    segs = decode.segments(classes, bass, fps, duration_s=1.25)
    assert [(s.start_s, s.end_s, s.label) for s in segs] == [
        (0.0, 0.25, "N"), (0.25, 0.75, "C:maj/3"), (0.75, 1.25, "G:7/b7")]  # fmt: skip
    bass[8:] = 0
    bass[8:, 1] = 1  # Db is no tone of G7: root position
    assert decode.segments(classes, bass, fps, 1.25)[-1].label == "G:7"


def test_key_is_the_best_sum_over_chord_frames():
    logp = np.log(np.full((6, 24), 1 / 24))
    logp[:4, voc.key_class("Eb:maj")] = 0.0
    logp[4:, voc.key_class("A:min")] = 5.0  # frames without a chord do not count
    assert decode.key(logp, np.array([3, 3, 3, 3, 0, 0])) == "Eb:maj"
    assert decode.key(logp, np.zeros(6, int)) is None


@pytest.mark.skipif(not CHECKPOINT.exists(), reason="the chord checkpoint is built by python -m training.chords")
def test_the_shipped_model_hears_a_synthesised_progression():
    from reascribe.models.chords.transcriber import ChordTranscriber

    chords = {"C:maj": [48, 60, 64, 67], "A:min": [45, 57, 60, 64], "F:maj": [41, 57, 60, 65], "G:7": [43, 59, 62, 65, 67]}
    audio = progression(list(chords.values()), 2.0)
    result = ChordTranscriber(num_threads=1).transcribe(audio, lambda f, m: None)
    assert result.segments[0].start_s == 0.0 and abs(result.segments[-1].end_s - 8.0) < 0.1
    heard = [(s.label.split("/")[0], s.end_s - s.start_s) for s in result.segments]
    for i, label in enumerate(chords):
        middle = 2.0 * i + 1.0
        (at,) = [s.label for s in result.segments if s.start_s <= middle < s.end_s]
        assert at.split(":")[0] == label.split(":")[0], heard  # the root of every chord
    assert result.key in ("C:maj", "A:min")
