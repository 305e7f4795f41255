"""bench/chords.py's scoring: it reproduces mir_eval's own expected chord scores, and reads Chordino's labels."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import mir_eval
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "data" / "metric_conformance" / "mir_eval_tests_data" / "chord"
spec = importlib.util.spec_from_file_location("bench_chords", ROOT / "bench" / "chords.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("n", range(4))
def test_pooled_scores_of_one_file_match_mir_evals_expected_values(n):
    ref_int, ref_lab = mir_eval.io.load_labeled_intervals(CONFORMANCE / f"ref{n:02d}.lab")
    est_int, est_lab = mir_eval.io.load_labeled_intervals(CONFORMANCE / f"est{n:02d}.lab")
    expected = json.loads((CONFORMANCE / f"output{n:02d}.json").read_text())
    scores = bench.pooled([bench.comparisons(ref_int, ref_lab, est_int, est_lab)])
    for metric in bench.METRICS:
        assert scores[metric] == pytest.approx(expected[metric], abs=1e-6), metric


def test_pooling_weights_files_by_their_seconds():
    short = bench.comparisons(np.array([[0.0, 1.0]]), ["C:maj"], np.array([[0.0, 1.0]]), ["C:maj"])
    long = bench.comparisons(np.array([[0.0, 3.0]]), ["C:maj"], np.array([[0.0, 3.0]]), ["A:min"])
    assert bench.pooled([short, long])["root"] == pytest.approx(0.25)


@pytest.mark.parametrize("chordino, harte", [
    ("Ebmaj7", "Eb:maj7"), ("Fm", "F:min"), ("Bb6", "Bb:maj6"), ("D/F#", "D:maj/3"), ("Am7/G", "A:min7/b7"),
    ("Bm7b5", "B:hdim7"), ("C#dim7", "C#:dim7"), ("N", "N"), ("C13", "X"),
])  # fmt: skip
def test_chordino_labels_become_harte(chordino, harte):
    assert bench.chordino_to_harte(chordino) == harte


def test_changes_become_segments_with_no_chord_before_the_first():
    intervals, labels = bench.changes_to_segments([(0.37, "N"), (0.46, "Eb:maj7"), (7.15, "F:min")], 10.0)
    assert labels == ["N", "N", "Eb:maj7", "F:min"]
    assert intervals.tolist() == [[0.0, 0.37], [0.37, 0.46], [0.46, 7.15], [7.15, 10.0]]
    assert bench.changes_to_segments([(0.0, "C:maj")], 2.0)[1] == ["C:maj"]
