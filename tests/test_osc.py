"""OSC commands over real UDP on loopback, the dispatcher fed with bytes, and the REAPER poke."""

import json
import logging
import socket
import time

import pytest
from daemon_support import no_thread_leaks, write_clicks  # noqa: F401
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.udp_client import SimpleUDPClient

from reascribe.errors import ReascribeError, RequestError
from reascribe.osc import OscServer, make_dispatcher, parse_host_port, poke_reaper

REPLY_TIMEOUT_S = 5.0


class Commands:
    """Records what the handlers asked for; stands in for the daemon."""

    def __init__(self):
        self.transcribed = []
        self.cancelled = []
        self.refuse = None

    def transcribe(self, audio_path, kind, out_path):
        if self.refuse:
            raise RequestError(self.refuse)
        self.transcribed.append((audio_path, kind, out_path))
        return f"file-{len(self.transcribed)}"

    def cancel(self, job_id):
        self.cancelled.append(job_id)
        return job_id == "known1"

    def status(self):
        return {"queued": 1, "running": "r1", "jobs": []}


@pytest.fixture
def commands():
    return Commands()


@pytest.fixture
def server(commands):
    osc = OscServer(commands, "127.0.0.1", 0)
    osc.start()
    yield osc
    osc.stop()


@pytest.fixture
def client():
    """A real UDP socket that sends OSC and reads the replies sent back to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(REPLY_TIMEOUT_S)
    yield sock
    sock.close()


def send(sock, server, address, *args):
    sock.sendto(build_msg(address, list(args)).dgram, server.address)


def reply(sock):
    data, _ = sock.recvfrom(65536)
    message = OscMessage(data)
    return message.address, list(message)


@pytest.fixture
def wav(tmp_path):
    return write_clicks(tmp_path / "take.wav")


def test_transcribe_queues_and_replies_the_job_id(server, client, commands, wav):
    send(client, server, "/reascribe/transcribe", str(wav), "piano")
    assert reply(client) == ("/reascribe/queued", ["file-1"])
    assert commands.transcribed == [(wav, "piano", None)]


def test_transcribe_with_an_output_path(server, client, commands, wav, tmp_path):
    send(client, server, "/reascribe/transcribe", str(wav), "piano", str(tmp_path / "out.mid"))
    assert reply(client)[0] == "/reascribe/queued"
    assert commands.transcribed == [(wav, "piano", tmp_path / "out.mid")]


@pytest.mark.parametrize(
    "args, sentence",
    [
        (("take.wav", "piano"), "must be an absolute path"),
        (("{notes}", "piano"), "is not an audio file"),
        (("{wav}", "flute"), "Unknown job kind 'flute'"),
        (("{wav}",), "takes an audio file path, a kind"),
        (("{wav}", 3), "takes an audio file path, a kind"),
        (("{wav}", "piano", "relative.mid"), "must be an absolute path"),
    ],
)
def test_transcribe_refuses_bad_arguments_with_a_sentence(server, client, commands, wav, tmp_path, caplog, args,
                                                          sentence):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    args = [a.format(wav=wav, notes=notes) if isinstance(a, str) else a for a in args]
    with caplog.at_level(logging.ERROR, logger="reascribe.osc"):
        send(client, server, "/reascribe/transcribe", *args)
        address, values = reply(client)
    assert address == "/reascribe/error" and sentence in values[0]
    assert sentence in caplog.text
    assert commands.transcribed == []


def test_whether_the_file_exists_is_left_to_the_daemon(server, client, commands, tmp_path):
    # The daemon answers "does not exist" only inside the folders OSC may read: no probing elsewhere.
    send(client, server, "/reascribe/transcribe", str(tmp_path / "missing.wav"), "piano")
    assert reply(client)[0] == "/reascribe/queued"
    assert commands.transcribed == [(tmp_path / "missing.wav", "piano", None)]


def test_a_refused_job_replies_the_daemons_sentence(server, client, commands, wav):
    commands.refuse = "The daemon is stopping and takes no new jobs."
    send(client, server, "/reascribe/transcribe", str(wav), "piano")
    assert reply(client) == ("/reascribe/error", ["The daemon is stopping and takes no new jobs."])


def test_status_replies_json_to_the_sender(server, client):
    send(client, server, "/reascribe/status")
    address, values = reply(client)
    assert address == "/reascribe/status"
    assert json.loads(values[0]) == {"queued": 1, "running": "r1", "jobs": []}


def test_status_replies_to_a_given_port(server, client):
    with SimpleUDPClient("127.0.0.1", server.address[1]) as sender:
        sender.send_message("/reascribe/status", client.getsockname()[1])
        address, values = reply(client)
    assert address == "/reascribe/status" and json.loads(values[0])["running"] == "r1"


@pytest.mark.parametrize("args", [(0,), (70000,), ("9000",), (9000, 1)])
def test_status_refuses_a_bad_reply_port(server, client, args):
    send(client, server, "/reascribe/status", *args)
    address, values = reply(client)
    assert address == "/reascribe/error" and "reply port" in values[0]


def test_cancel(server, client, commands):
    send(client, server, "/reascribe/cancel", "known1")
    assert reply(client) == ("/reascribe/cancelled", ["known1"])
    send(client, server, "/reascribe/cancel", "unknown1")
    assert reply(client) == ("/reascribe/error", ["No queued or running job has the id unknown1."])
    send(client, server, "/reascribe/cancel", "../etc")
    assert reply(client)[0] == "/reascribe/error"
    assert commands.cancelled == ["known1", "unknown1"]


def test_unknown_addresses_are_logged_and_dropped(server, client, caplog):
    with caplog.at_level(logging.INFO, logger="reascribe.osc"):
        send(client, server, "/reascribe/explode", 1)
        send(client, server, "/reascribe/status")
        assert reply(client)[0] == "/reascribe/status"  # the only reply
    assert "unknown OSC address '/reascribe/explode'" in caplog.text


def test_garbage_is_logged_and_the_server_keeps_answering(server, client, caplog):
    garbage = [
        b"garbage",  # not OSC at all
        b"/reascribe/status\x00\x00\x00,i\x00\x00",  # OSC-looking, argument missing
        b"#bundle\x00" + b"\xff" * 5,  # a truncated bundle
        b"",
        bytes(range(256)) * 4,
    ]
    with caplog.at_level(logging.DEBUG, logger="reascribe.osc"):
        for data in garbage:
            client.sendto(data, server.address)
        send(client, server, "/reascribe/status")
        assert reply(client)[0] == "/reascribe/status"
    assert "dropped a non-OSC datagram" in caplog.text
    assert "dropped a malformed OSC packet" in caplog.text


def test_a_bundle_for_the_future_is_answered_at_once(server, client):
    bundle = OscBundleBuilder(timestamp=time.time() + 3600)  # python-osc would sleep an hour on it
    bundle.add_content(build_msg("/reascribe/status", []))
    client.sendto(bundle.build().dgram, server.address)
    assert reply(client)[0] == "/reascribe/status"


def test_the_dispatcher_routes_bytes_without_sockets(commands, wav):
    replies = []
    dispatcher = make_dispatcher(commands, lambda target, address, *args: replies.append((target, address, args)))
    sender = ("127.0.0.1", 5555)
    dispatcher.call_handlers_for_packet(build_msg("/reascribe/transcribe", [str(wav), "piano"]).dgram, sender)
    dispatcher.call_handlers_for_packet(b"\x00\x01garbage", sender)
    assert replies == [(sender, "/reascribe/queued", ("file-1",))]


def test_a_port_in_use_is_a_clear_error(server, commands):
    with pytest.raises(ReascribeError, match="another program .* uses that port"):
        OscServer(commands, "127.0.0.1", server.address[1])


@pytest.fixture
def reaper():
    """A UDP socket standing in for REAPER's OSC surface."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(REPLY_TIMEOUT_S)
    yield sock
    sock.close()


def test_poke_reaper_sends_the_action(reaper):
    port = reaper.getsockname()[1]
    poke_reaper(f"127.0.0.1:{port}", "_RS7d3c9f2e0a1b")
    message = OscMessage(reaper.recv(65536))
    assert message.address == "/action/_RS7d3c9f2e0a1b" and list(message) == []


def test_poke_reaper_refuses_what_is_no_action_id(reaper, caplog):
    port = reaper.getsockname()[1]
    reaper.settimeout(0.3)
    with caplog.at_level(logging.WARNING, logger="reascribe.osc"):
        poke_reaper(f"127.0.0.1:{port}", "../../x")
    assert "is not an action command id" in caplog.text
    with pytest.raises(socket.timeout):
        reaper.recv(65536)


@pytest.mark.parametrize("text, expected", [("127.0.0.1:8000", ("127.0.0.1", 8000)), ("[::1]:9000", ("::1", 9000)),
                                            ("localhost:1", ("localhost", 1))])
def test_parse_host_port(text, expected):
    assert parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["8000", "host:", ":8000", "host:0", "host:70000", "host:x"])
def test_parse_host_port_refuses(text):
    with pytest.raises(RequestError, match="is not HOST:PORT"):
        parse_host_port(text)
