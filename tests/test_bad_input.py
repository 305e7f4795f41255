"""Bad input against a real daemon process with the real piano model: each request ends as a result
with a clear sentence, the daemon keeps serving, and no file of the user's is changed."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pythonosc.osc_message_builder import OscMessageBuilder

from daemon_process import DaemonProcess, wait_until
from render import MAESTRO_MIDI, render_midi_excerpt

SPOOL_DIRS = ("inbox", "outbox")


def request(req_id: str, project: Path, source: Path, **item) -> dict:
    entry = {
        "item_guid": f"{{{req_id}-I}}",
        "take_guid": f"{{{req_id}-T}}",
        "name": req_id,
        "source": {"path": str(source), "size_bytes": source.stat().st_size if source.is_file() else None},
        "position_s": 0.0,
        "length_s": 4.0,
        "start_offset_s": 0.0,
        "playrate": 1.0,
    }
    entry.update(item)
    return {
        "protocol": 1,
        "id": req_id,
        "kind": "piano",
        "created_at": time.time(),
        "project": {"file": str(project / "song.rpp"), "dir": str(project), "media_dir": str(project / "Media")},
        "tempo_map": {"bpm": 120},
        "items": [entry],
    }


def publish(spool: Path, name: str, data: bytes) -> None:
    tmp = spool / "inbox" / f"{name}.tmp"
    tmp.write_bytes(data)
    tmp.rename(spool / "inbox" / name)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "reascribe" not in p.relative_to(folder).parts
    }


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "song"
    media = root / "Media"
    media.mkdir(parents=True)
    (root / "song.rpp").write_text("<REAPER_PROJECT\n>\n")
    wav, _ = render_midi_excerpt(MAESTRO_MIDI, 200.0, 5.0)
    audio, rate = sf.read(wav, dtype="float32")
    mono = audio.mean(axis=1)
    n8k = len(mono) * 8000 // rate
    sf.write(media / "piano_8k_mono.wav", np.interp(np.linspace(0, len(mono) - 1, n8k), np.arange(len(mono)), mono), 8000)
    six = np.repeat(audio[:, :1], 6, axis=1) * np.array([1.0, 0.8, 0.7, 0.1, 0.6, 0.6])
    n96 = len(mono) * 96000 // rate
    upsampled = np.stack([np.interp(np.linspace(0, len(mono) - 1, n96), np.arange(len(mono)), six[:, c]) for c in range(6)], 1)
    sf.write(media / "piano_96k_6ch.wav", upsampled, 96000, subtype="FLOAT")
    sf.write(media / "silence.wav", np.zeros(44100 * 5), 44100)
    (media / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    (media / "clip.xyz").write_bytes(np.random.default_rng(0).bytes(4096))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    sf.write(outside / "private.wav", audio, rate)
    return root


def test_bad_input_fails_clearly_and_loses_nothing(tmp_path, project):
    spool = tmp_path / "spool"
    for sub in SPOOL_DIRS:
        (spool / sub).mkdir(parents=True)
    media = project / "Media"
    before = tree_digest(tmp_path / "elsewhere") | tree_digest(project)
    cases = {
        "corrupt": (request("corrupt", project, media / "corrupt.wav"), "cannot be read"),
        "unsupported": (request("unsupported", project, media / "clip.xyz"), "clip.xyz"),
        "missing": (request("missing", project, media / "gone.wav"), "missing"),
        "silence": (request("silence", project, media / "silence.wav"), "silent"),
        "zero-length": (request("zero-length", project, media / "silence.wav", length_s=0.0), "zero length"),
        "outside": (request("outside", project, tmp_path / "elsewhere" / "private.wav"), "outside the project"),
        "traversal": (
            request("traversal", project, Path(str(media) + "/../../elsewhere/private.wav")),
            "outside the project",
        ),
        "mono-8k": (request("mono-8k", project, media / "piano_8k_mono.wav"), None),
        "six-channel-96k": (request("six-channel-96k", project, media / "piano_96k_6ch.wav"), None),
    }
    daemon = DaemonProcess(spool, tmp_path / "daemon.log").start()
    try:
        for name, (doc, _) in cases.items():
            publish(spool, f"{name}.json", json.dumps(doc).encode())
        publish(spool, "malformed.json", b'{"protocol": 1, "id": "malformed", "kind": "piano", ')
        publish(spool, "not-a-request.json", b"\x00\xff garbage")
        garbage_osc(daemon.osc_port)

        expected = [*cases, "malformed", "not-a-request"]
        wait_until(
            lambda: all((spool / "outbox" / f"{name}.json").exists() for name in expected),
            "a result for every request",
            daemon=daemon,
        )
        assert osc_status(daemon.osc_port)  # still answering after the garbage
    finally:
        assert daemon.stop() == 0

    for name, (_, words) in cases.items():
        result = json.loads((spool / "outbox" / f"{name}.json").read_text())
        if words is None:  # odd rates and channel counts are transcribed
            assert result["status"] == "done", result
            assert len(result["items"][0]["notes"]) > 5, name
        else:
            assert result["status"] == "failed", result
            assert words in result["error"], (name, result["error"])
            assert result["error"].endswith(".")
    for name in ("malformed", "not-a-request"):
        result = json.loads((spool / "outbox" / f"{name}.json").read_text())
        assert result["status"] == "failed" and "JSON" in result["error"]
    assert tree_digest(tmp_path / "elsewhere") | tree_digest(project) == before
    assert not list((spool / "inbox").iterdir())


def garbage_osc(port: int) -> None:
    packets = [b"", b"\x00" * 7, b"#bundle\x00garbage", b"/reascribe/transcribe\x00\x00\x00,sss\x00", bytes(range(256))]
    builder = OscMessageBuilder("/reascribe/transcribe")
    builder.add_arg("../../etc/passwd")
    builder.add_arg("piano")
    packets.append(builder.build().dgram)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))


def osc_status(port: int) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        builder = OscMessageBuilder("/reascribe/status")
        sock.sendto(builder.build().dgram, ("127.0.0.1", port))
        data, _ = sock.recvfrom(65536)
    from pythonosc.osc_message import OscMessage

    message = OscMessage(data)
    assert message.address == "/reascribe/status"
    return json.loads(message.params[0])
