import copy
import re
import json
import time

import pytest

from reascribe.errors import RequestError
from reascribe.protocol import ItemResult, Result, Status, parse_request, parse_request_bytes


@pytest.fixture
def request_doc(tmp_path):
    project = tmp_path / "song"
    (project / "Media").mkdir(parents=True)
    return {
        "protocol": 1,
        "id": "20261121T121500-5f3a9c01",
        "kind": "piano",
        "created_at": time.time(),
        "project": {"file": str(project / "song.rpp"), "dir": str(project), "media_dir": str(project / "Media")},
        "tempo_map": {"bpm": 120, "num": 4, "denom": 4, "markers": [{"time_s": 12.0, "bpm": 90}]},
        "time_selection": {"start_s": 0, "end_s": 0},
        "options": {"pedal_extend": True},
        "items": [
            {
                "item_guid": "{A}",
                "take_guid": "{B}",
                "source": {"path": str(project / "Media" / "p.wav"), "size_bytes": 10},
                "position_s": 10.0,
                "length_s": 6.0,
                "start_offset_s": 1.5,
                "playrate": 1.5,
            }
        ],
    }


def test_a_valid_request_parses(request_doc):
    req = parse_request(request_doc)
    assert req.kind == "piano" and req.options == {"pedal_extend": True}
    assert req.time_selection is None  # start == end means no selection in REAPER
    item = req.items[0]
    assert (item.section_start_s, item.section_end_s) == (1.5, 1.5 + 6.0 * 1.5)
    assert req.tempo_map.time_to_qn(14.0) == pytest.approx(24 + 3)
    assert not req.expired()


def _broken(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    "path, value, words",
    [
        (("protocol",), 2, "protocol"),
        (("id",), "../../etc/passwd", "id"),
        (("id",), "", "id"),
        (("kind",), "rm -rf", "kind"),
        (("items",), [], "no items"),
        (("items", 0, "source", "path"), "relative/p.wav", "absolute"),
        (("items", 0, "source", "path"), "/x/\x00.wav", "NUL"),
        (("items", 0, "playrate"), 0, "playrate"),
        (("items", 0, "length_s"), -1, "negative"),
        (("items", 0, "position_s"), "ten", "position_s"),
        (("items", 0, "position_s"), float("nan"), "position_s"),
        (("items", 0, "stretch_markers"), -2, "stretch_markers"),
        (("items", 0, "take_guid"), KeyError, "take_guid"),
        (("options", "pedal_extend"), "yes", "pedal_extend"),
        (("options", "explode"), True, "Unknown option"),
        (("project", "dir"), "/somewhere/else", "not the folder"),
        (("time_selection",), {"start_s": 5, "end_s": 1}, "ends"),
        (("created_at",), None, "created_at"),
    ],
)
def test_malformed_requests_fail_with_a_sentence_naming_the_field(request_doc, path, value, words):
    with pytest.raises(RequestError, match=words):
        parse_request(_broken(request_doc, path, value))


def test_project_at_a_drive_root_or_home_is_refused(request_doc, monkeypatch, tmp_path):
    doc = copy.deepcopy(request_doc)
    doc["project"] = {"file": "", "dir": "/", "media_dir": "/"}
    with pytest.raises(RequestError, match="drive root"):
        parse_request(doc)
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for rpp in (home / "x.rpp", tmp_path / "users" / "x.rpp"):
        doc["project"] = {"file": str(rpp)}
        with pytest.raises(RequestError, match="home folder"):
            parse_request(doc)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe garbage", b"[1, 2]", b"null", b'"str"'])
def test_malformed_json_is_a_request_error(data):
    with pytest.raises(RequestError):
        parse_request_bytes(data)


def test_oversized_request_is_refused():
    with pytest.raises(RequestError, match="larger"):
        parse_request_bytes(b" " * (5 * 1024 * 1024))


def test_expired_request(request_doc):
    request_doc["created_at"] = time.time() - 100
    request_doc["ttl_s"] = 10
    assert parse_request(request_doc).expired()


def test_result_status_summarises_items():
    ok = ItemResult("{A}", "{B}", Status.DONE, notes=[[1.0, 2.0, 60, 80]])
    bad = ItemResult("{C}", "{D}", Status.FAILED, "The source file /x.wav is missing.")
    mixed = Result.from_items("r1", "piano", [ok, bad]).to_dict()
    assert mixed["status"] == "done" and "1 of 2 items failed" in mixed["error"]
    failed = json.loads(json.dumps(Result.from_items("r1", "piano", [bad]).to_dict()))
    assert failed["status"] == "failed" and failed["error"] == "The source file /x.wav is missing."
    assert failed["protocol"] == 1 and failed["items"][0]["take_guid"] == "{D}"


def test_a_drums_request_parses_with_its_options(request_doc):
    request_doc["kind"] = "drums"
    request_doc["options"] = {"note_length": 0.05, "channel": 3, "note_map": {"kick": 35, "ride": 59}}
    req = parse_request(request_doc)
    assert req.kind == "drums" and req.options == {"note_length": 0.05, "channel": 3,
                                                   "note_map": {"kick": 35, "ride": 59}}
    request_doc["options"] = {}
    assert parse_request(request_doc).options == {}


@pytest.mark.parametrize(
    "options, words",
    [
        ({"pedal_extend": True}, "Unknown option 'pedal_extend' for drums"),
        ({"note_length": 0.001}, "'note_length' must be a number of seconds from 0.01 to 2.0, not 0.001."),
        ({"note_length": float("inf")}, "'note_length'"),
        ({"channel": 10.5}, "'channel' must be a whole number from 1 to 16, not 10.5."),
        ({"channel": False}, "'channel'"),
        ({"note_map": "kick=35"}, "'note_map' must be an object"),
        ({"note_map": {"Kick": 35}}, "unknown drum 'Kick'"),
        ({"note_map": {"kick": -1}}, "'note_map.kick' must be a whole number from 0 to 127, not -1."),
        ({"note_map": {"x" * 5000: 1}}, "unknown drum"),
    ],
)
def test_bad_drum_options_fail_with_a_sentence_naming_the_field(request_doc, options, words):
    request_doc["kind"] = "drums"
    request_doc["options"] = options
    with pytest.raises(RequestError, match=re.escape(words)) as raised:
        parse_request(request_doc)
    assert len(str(raised.value)) < 300  # a hostile value is not echoed whole


def test_piano_options_are_not_drum_options(request_doc):
    request_doc["options"] = {"note_length": 0.1}
    with pytest.raises(RequestError, match="Unknown option 'note_length' for piano"):
        parse_request(request_doc)


def test_result_items_say_their_channel_and_whether_notes_are_pitches():
    piano = ItemResult("{A}", "{B}", Status.DONE, notes=[[1.0, 2.0, 60, 80]]).to_dict()
    assert (piano["channel"], piano["pitched"]) == (1, True)
    drums = ItemResult("{A}", "{B}", Status.DONE, notes=[[1.0, 1.1, 36, 80]], channel=10, pitched=False).to_dict()
    assert json.loads(json.dumps(drums))["channel"] == 10 and drums["pitched"] is False
