import pytest

from reascribe.errors import RequestError
from reascribe.tempo import TempoMap, TempoSegment


def test_time_to_qn_across_a_tempo_change():
    tm = TempoMap([TempoSegment(0.0, 120.0), TempoSegment(4.0, 60.0)])
    assert tm.time_to_qn(2.0) == pytest.approx(4.0)
    assert tm.time_to_qn(4.0) == pytest.approx(8.0)
    assert tm.time_to_qn(6.0) == pytest.approx(10.0)
    for qn in (0.0, 3.5, 8.0, 9.25, 40.0):
        assert tm.time_to_qn(tm.qn_to_time(qn)) == pytest.approx(qn)


def test_shifted_map_starts_with_the_tempo_at_the_origin():
    tm = TempoMap([TempoSegment(0.0, 120.0), TempoSegment(4.0, 60.0, 3, 4)])
    shifted = tm.shifted(3.0)
    assert shifted.segments[0] == TempoSegment(0.0, 120.0)
    assert shifted.segments[1] == TempoSegment(1.0, 60.0, 3, 4)
    assert shifted.time_to_qn(2.0) == pytest.approx(tm.time_to_qn(5.0) - tm.time_to_qn(3.0))


def test_base_tempo_then_markers():
    tm = TempoMap.from_dict({"bpm": 100, "num": 7, "denom": 8, "markers": [{"time_s": 10, "bpm": 140}]})
    assert tm.segments == [TempoSegment(0.0, 100.0, 7, 8), TempoSegment(10.0, 140.0, 7, 8)]


def test_marker_at_zero_overrides_base_tempo():
    tm = TempoMap.from_dict({"bpm": 100, "markers": [{"time_s": 0, "bpm": 90}]})
    assert tm.segments == [TempoSegment(0.0, 90.0)]


def test_beat_grid_follows_detected_beats():
    beats = [0.5, 1.0, 1.5, 2.1, 2.7]
    tm = TempoMap.from_beats(beats, fallback_bpm=120)
    for k, t in enumerate(beats):
        assert tm.time_to_qn(t) - tm.time_to_qn(beats[0]) == pytest.approx(k)
    assert TempoMap.from_beats([1.0], fallback_bpm=97).segments == [TempoSegment(0.0, 97.0)]


@pytest.mark.parametrize(
    "doc",
    [
        {"bpm": 0},
        {"bpm": 120, "num": 0},
        {"bpm": 120, "denom": 3},
        {"bpm": "fast"},
        {"markers": []},
        {"bpm": 120, "markers": [{"time_s": -1, "bpm": 100}]},
        [],
    ],
)
def test_bad_tempo_maps_are_rejected_with_a_sentence(doc):
    with pytest.raises(RequestError):
        TempoMap.from_dict(doc)
