"""bench/drums.py's scoring helpers against mir_eval, and its annotation readers on the real label files."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_drums", ROOT / "bench" / "drums.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CONFORMANCE = ROOT.parent / "shared" / "data" / "metric_conformance" / "mir_eval_tests_data" / "onset"
needs_drums = pytest.mark.skipif(not bench.DRUMS.is_dir(), reason="../shared/data/drums is not here")


def f_from_counts(ref, est):
    return bench.prf(*bench.score_onsets(ref, est))


@pytest.mark.parametrize(
    "ref, est",
    [
        ([0.5, 1.0, 1.5, 2.0], [0.52, 1.06, 1.5, 3.0]),  # one 60 ms late (missed), one spurious
        ([0.1, 0.2, 0.3], [0.1, 0.12, 0.14, 0.3]),  # two estimates near one reference: one counts
        ([1.0, 2.0], [1.05, 2.0]),  # exactly on the window edge
        ([1.0, 2.0, 3.0], []),
        ([], [1.0]),
        ([], []),
    ],
)
def test_score_onsets_gives_mir_eval_f_measure(ref, est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval warns about empty lists
        expected = mir_eval.onset.f_measure(np.array(ref, dtype=float), np.array(est, dtype=float), window=0.05)
    assert f_from_counts(ref, est) == pytest.approx(expected, abs=1e-12)


def test_counts_add_up():
    tp, fp, fn = bench.score_onsets([0.5, 1.0, 1.5, 2.0], [0.52, 1.06, 1.5, 3.0])
    assert (tp, fp, fn) == (2, 2, 2)


def test_micro_f_pools_counts_not_f_measures():
    a = bench.score_onsets([1.0, 2.0], [1.0, 2.0])  # perfect
    b = bench.score_onsets([1.0, 2.0, 3.0, 4.0], [])  # all missed
    f, p, r = bench.prf(*np.sum([a, b], axis=0))
    assert (p, r) == (1.0, pytest.approx(2 / 6)) and f == pytest.approx(0.5)


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="metric_conformance data is not here")
@pytest.mark.parametrize("n", range(10))
def test_mir_eval_conformance_pairs(n):
    ref = mir_eval.io.load_events(str(CONFORMANCE / f"ref{n:02d}.txt"))
    est = mir_eval.io.load_events(str(CONFORMANCE / f"est{n:02d}.txt"))
    expected = json.loads((CONFORMANCE / f"output{n:02d}.json").read_text())
    f, p, r = f_from_counts(ref, est)
    assert (f, p, r) == pytest.approx((expected["F-measure"], expected["Precision"], expected["Recall"]), abs=1e-12)


def test_merge_onsets_keeps_the_first_of_hits_closer_than_20_ms():
    merged = bench.merge_onsets([0.05, 0.0, 0.01, 0.025, 0.5, 0.515, 0.53])
    np.testing.assert_allclose(merged, [0.0, 0.025, 0.05, 0.5, 0.53])
    assert bench.merge_onsets([]).size == 0


@needs_drums
def test_mdb_rock_class_counts():
    raw = bench.read_mdb_classes(bench.MDB / "annotations" / "class" / "MusicDelta_Rock_class.txt")
    assert {k: len(v) for k, v in raw.items()} == {"KD": 12, "SD": 12, "HH": 48}
    assert raw["KD"][0] == 0.0 and raw["SD"][0] == pytest.approx(0.528254)
    truth = bench.truth_for(bench.MDB / "audio_mix" / "MusicDelta_Rock_MIX.flac")
    assert [len(truth[g]) for g in ("KD", "SD", "HH", "TT", "CY", "OT", "ANY")] == [12, 12, 48, 0, 0, 0, 57]


@needs_drums
def test_mdb_ot_counts_in_any_drum_only():
    truth = bench.truth_for(bench.MDB / "audio_drum_only" / "MusicDelta_Beatles_Drum.flac")
    assert [len(truth[g]) for g in ("KD", "SD", "HH", "TT", "CY", "OT")] == [47, 45, 0, 30, 0, 32]
    drums_only = bench.merge_onsets(np.concatenate([truth[g] for g in ("KD", "SD", "TT")]))
    assert len(truth["ANY"]) == len(bench.merge_onsets(np.concatenate([drums_only, truth["OT"]]))) > len(drums_only)


@needs_drums
def test_groove_midi_counts_through_td11_class_and_eval_group():
    midi = bench.GMD / "annotations_gmd_midi"
    soul = bench.read_gmd_midi(midi / "3_soul-groove3_86_beat_4-4.mid")
    # 42/22/44 closed + 46/26 open hi-hat; 38/40/37 head, rim, cross-stick
    assert {k: len(v) for k, v in soul.items()} == {"KD": 80, "SD": 123, "HH": 254}
    funk = bench.read_gmd_midi(midi / "1_funk-groove1_138_beat_4-4.mid")
    assert {k: len(v) for k, v in funk.items()} == {"KD": 54, "SD": 101, "HH": 123, "TT": 1, "CY": 131}


@needs_drums
def test_stemgmd_audio_finds_its_midi_even_with_an_underscore_in_the_kit_name():
    audio = bench.GMD / "audio_mix" / "3_soul-groove3_86_beat_4-4_detroit_garage_MIX.flac"
    assert bench.gmd_midi_for(audio).name == "3_soul-groove3_86_beat_4-4.mid"
    assert len(bench.truth_for(audio)["ANY"]) == 298
