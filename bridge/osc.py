"""OSC in (commands on 127.0.0.1) and out (poking REAPER to apply a result now).

Routing is a python-osc ``Dispatcher`` of small handlers that check their arguments, call the
daemon's ``OscCommands`` (which only enqueue) and reply at once; the transport is a blocking UDP
server on its own thread. Garbage never reaches a handler: non-OSC datagrams and packets that do not
parse are logged at debug level and dropped.

Replies go to the sender (or to 127.0.0.1:<port> for ``/reascribe/status <port>``):
``/reascribe/queued <job id>``, ``/reascribe/cancelled <job id>``, ``/reascribe/status <json>`` and
``/reascribe/error <sentence>`` when a command was refused.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from pathlib import Path
from typing import Any, Protocol

from pythonosc import osc_packet
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_server import BlockingOSCUDPServer

from reascribe.dropfolder import AUDIO_EXTENSIONS
from reascribe.errors import ReascribeError, RequestError
from reascribe.protocol import KINDS, absolute_path, is_valid_id

log = logging.getLogger(__name__)

TRANSCRIBE = "/reascribe/transcribe"
STATUS = "/reascribe/status"
CANCEL = "/reascribe/cancel"
QUEUED_REPLY = "/reascribe/queued"
CANCELLED_REPLY = "/reascribe/cancelled"
ERROR_REPLY = "/reascribe/error"
SERVE_TIMEOUT_S = 5.0  # the server thread's longest wait, should the wake-up datagram of stop() be lost
ACTION_NAME = re.compile(r"^_?[A-Za-z0-9_]{1,128}$")  # numeric command ids and named ones (_RS...)


class OscCommands(Protocol):
    """What the OSC handlers ask of the daemon; each call returns at once."""

    def transcribe(self, audio_path: Path, kind: str, out_path: Path | None) -> str:
        """Queue a file job and return its id; raises ReascribeError with a sentence when refused.

        The paths are only checked to be absolute audio paths here: which folders OSC may read and write
        (and whether the file exists, which must not be told about other folders) is the daemon's call.
        """

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when no such job is queued or running."""

    def status(self) -> dict:
        """The daemon's state as a JSON-able dict."""


class _Dispatcher(Dispatcher):
    def __init__(self) -> None:
        super().__init__(strict_timing=False)  # never sleep on the server thread for a future time tag

    def call_handlers_for_packet(self, data: bytes, client_address: tuple[str, int]) -> list:
        try:
            osc_packet.OscPacket(data)  # python-osc drops ParseError without a word; say it first
        except osc_packet.ParseError as exc:
            log.debug("dropped a malformed OSC packet from %s: %s", client_address, exc)
            return []
        return super().call_handlers_for_packet(data, client_address)


class _Server(BlockingOSCUDPServer):
    def verify_request(self, request: Any, client_address: Any) -> bool:
        if super().verify_request(request, client_address):
            return True
        log.debug("dropped a non-OSC datagram of %d bytes from %s", len(request[0]), client_address)
        return False

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("an OSC handler failed on a message from %s", client_address)


class OscServer:
    """The command server: ``start`` binds and serves on a thread, ``stop`` shuts it down and joins."""

    def __init__(self, commands: OscCommands, host: str = "127.0.0.1", port: int = 9410) -> None:
        self.commands = commands
        self.dispatcher = make_dispatcher(commands, self.reply)
        try:
            self._server = _Server((host, port), self.dispatcher)
        except OSError as exc:
            raise ReascribeError(
                f"Cannot listen for OSC on {host}:{port} ({exc.strerror or exc}); another program (or "
                "daemon) uses that port: choose another with --osc-port."
            ) from None
        self._server.timeout = SERVE_TIMEOUT_S
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="reascribe-osc")

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        log.info("listening for OSC on %s:%d", *self.address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stopping.set()
            self._wake()
            self._thread.join()
        self._server.server_close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            self._server.handle_request()  # blocks until a datagram, a wake-up or the timeout

    def _wake(self) -> None:
        """An empty datagram to our own socket ends the blocking wait at once."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        try:
            with socket.socket(self._server.address_family, socket.SOCK_DGRAM) as sock:
                sock.sendto(b"", (host, port))
        except OSError as exc:
            log.debug("cannot wake the OSC server (%s); it stops within %.0f s", exc, SERVE_TIMEOUT_S)

    def reply(self, target: tuple[str, int], address: str, *args: Any) -> None:
        try:
            self._server.socket.sendto(build_msg(address, list(args)).dgram, target)
        except OSError as exc:
            log.warning("cannot reply %s to %s: %s", address, target, exc)


def make_dispatcher(commands: OscCommands, reply: Any) -> Dispatcher:
    """The routing table; ``reply(target, address, *args)`` sends an answer."""

    def transcribe(sender: tuple[str, int], address: str, *args: Any) -> None:
        try:
            audio_path, kind, out_path = _transcribe_arguments(args)
            job_id = commands.transcribe(audio_path, kind, out_path)
        except ReascribeError as exc:
            log.error("%s refused: %s", TRANSCRIBE, exc)
            reply(sender, ERROR_REPLY, str(exc))
            return
        reply(sender, QUEUED_REPLY, job_id)

    def status(sender: tuple[str, int], address: str, *args: Any) -> None:
        target = sender
        if args:
            port = args[0]
            if len(args) > 1 or isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                log.warning("%s: the only argument is an optional reply port (1-65535), not %r", STATUS, args)
                reply(sender, ERROR_REPLY, f"{STATUS} takes an optional reply port (1-65535), not {list(args)!r}.")
                return
            target = ("127.0.0.1", port)
        reply(target, STATUS, json.dumps(commands.status(), ensure_ascii=False))

    def cancel(sender: tuple[str, int], address: str, *args: Any) -> None:
        if len(args) != 1 or not is_valid_id(args[0]):
            log.warning("%s needs one job id, not %r", CANCEL, args)
            reply(sender, ERROR_REPLY, f"{CANCEL} takes one job id (letters, digits, '-' and '_').")
            return
        if commands.cancel(args[0]):
            reply(sender, CANCELLED_REPLY, args[0])
        else:
            reply(sender, ERROR_REPLY, f"No queued or running job has the id {args[0]}.")

    def unknown(sender: tuple[str, int], address: str, *args: Any) -> None:
        log.info("ignored the unknown OSC address %r from %s", address, sender)

    dispatcher = _Dispatcher()
    dispatcher.map(TRANSCRIBE, transcribe, needs_reply_address=True)
    dispatcher.map(STATUS, status, needs_reply_address=True)
    dispatcher.map(CANCEL, cancel, needs_reply_address=True)
    dispatcher.set_default_handler(unknown, needs_reply_address=True)
    return dispatcher


def _transcribe_arguments(args: tuple) -> tuple[Path, str, Path | None]:
    if not 2 <= len(args) <= 3 or not all(isinstance(a, str) for a in args):
        raise RequestError(f"{TRANSCRIBE} takes an audio file path, a kind and optionally an output path (strings).")
    path_text, kind = args[0], args[1]
    if kind not in KINDS:
        raise RequestError(f"Unknown job kind {kind!r}; this version knows {', '.join(KINDS)}.")
    audio_path = absolute_path(path_text, "The audio file")
    if audio_path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise RequestError(f"{path_text} is not an audio file reascribe knows (by its extension).")
    out_path = absolute_path(args[2], "The output path") if len(args) == 3 and args[2] else None
    return audio_path, kind, out_path


def poke_reaper(host_port: str, action_name: str) -> None:
    """Send ``/action/<action_name>`` to REAPER's OSC surface, so it runs the action (applies results) now.

    Fire-and-forget UDP: a REAPER that is closed or not listening simply does not hear it.
    """
    if not ACTION_NAME.match(action_name):
        log.warning("not poking REAPER: %r is not an action command id", action_name)
        return
    host, port = parse_host_port(host_port)
    message = build_msg(f"/action/{action_name}", [])
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.dgram, (host, port))
    except OSError as exc:
        log.warning("cannot poke REAPER at %s: %s", host_port, exc)
        return
    log.debug("poked REAPER at %s with /action/%s", host_port, action_name)


def parse_host_port(text: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:8000"`` for IPv6) as (host, port); raises RequestError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RequestError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:8000).")
    return host, int(port)
