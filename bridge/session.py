"""Live call and response: listen to a player on a MIDI input; when a phrase ends, answer on an output.

``CallAndResponse`` is the logic, driven by ``feed(message, now_s)`` and ``tick(now_s)`` with explicit
times, so it runs on any mido port (tests use in-memory ports). A phrase ends after a beat of silence;
its tempo comes from its onsets; the answer starts on the next bar line (counting bars from the
phrase's first note) that leaves time to write it (an answer that took longer to write waits for the
bar line after), and lasts ``answer_bars`` bars, continuing the phrase through the infilling model.
Playing again cuts the answer short. ``run_session`` opens real or virtual ports through mido's rtmidi
backend and says so in a sentence when the platform has none.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field

import mido

from reascribe.errors import RequestError
from reascribe.events import NoteEvent
from reascribe.generate import FillOptions, fill_gap
from reascribe.tempo import TempoMap

log = logging.getLogger(__name__)

MIN_PHRASE_NOTES = 3
DEFAULT_BEAT_S = 0.5  # the silence that ends a phrase until its tempo is known (120 BPM)
MIN_BEAT_S, MAX_BEAT_S = 60 / 180, 60 / 60  # tempo estimates fold into 60-180 BPM
WRITE_MARGIN_S = 0.25  # the answer starts on a bar line at least this long after the phrase ends
BEATS_PER_BAR = 4
POLL_S = 0.002


def estimate_grid(onsets_s: list[float]) -> tuple[float, float] | None:
    """(beat_s, origin_s): the beat period and phase that put the onsets closest to a sixteenth-note grid.

    The period starts from the median spacing folded into 60-180 BPM, is searched within 10 % for the
    smallest grid error, then refined with the phase by least squares over every onset."""
    onsets = sorted(set(round(t, 3) for t in onsets_s))
    iois = [b - a for a, b in zip(onsets, onsets[1:]) if b - a > 0.05]
    if len(iois) < 2:
        return None
    base = statistics.median(iois)
    while base < MIN_BEAT_S:
        base *= 2
    while base > MAX_BEAT_S:
        base /= 2

    def steps(beat_s: float) -> list[float]:
        return [(t - onsets[0]) / (beat_s / 4) for t in onsets]

    def grid_error(beat_s: float) -> float:
        return sum(abs(k - round(k)) for k in steps(beat_s))

    candidates = [base * (0.9 + 0.005 * i) for i in range(41)]
    beat_s = min(candidates, key=lambda b: (round(grid_error(b), 3), abs(b - base)))
    index = [round(k) for k in steps(beat_s)]
    slope, origin_s = statistics.linear_regression(index, onsets)
    return slope * 4, origin_s


@dataclass
class CallAndResponse:
    infiller: object
    answer_bars: int = 2
    options: FillOptions = field(default_factory=lambda: FillOptions(variations=1))
    notes: list[NoteEvent] = field(default_factory=list)  # the phrase so far, absolute seconds
    channels: list[int] = field(default_factory=list)
    sounding: dict = field(default_factory=dict)  # (channel, pitch) -> (start_s, velocity)
    last_event_s: float = 0.0
    scheduled: list[tuple[float, mido.Message]] = field(default_factory=list)  # the answer, by time

    def feed(self, msg: mido.Message, now_s: float) -> list[mido.Message]:
        """Take one message from the player; returns messages to send at once (cutting an answer short)."""
        if msg.type not in ("note_on", "note_off"):
            return []
        key = (msg.channel, msg.note)
        out = []
        if msg.type == "note_on" and msg.velocity > 0:
            if self.scheduled:  # the player takes over
                out = [m for _, m in self.scheduled if m.type == "note_off"]
                self.scheduled = []
            self.sounding[key] = (now_s, msg.velocity)
        elif key in self.sounding:
            start_s, velocity = self.sounding.pop(key)
            self.notes.append(NoteEvent(start_s, max(now_s, start_s + 0.01), msg.note, velocity))
            self.channels.append(msg.channel + 1)
        self.last_event_s = now_s
        return out

    def grid(self) -> tuple[float, float]:
        """(beat_s, origin_s) of the phrase so far; its first note is on a bar line."""
        return estimate_grid([n.start_s for n in self.notes]) or (DEFAULT_BEAT_S, self.notes[0].start_s)

    def phrase_ended(self, now_s: float) -> bool:
        return (len(self.notes) >= MIN_PHRASE_NOTES and not self.sounding and not self.scheduled
                and now_s - self.last_event_s >= self.grid()[0])

    def tick(self, now_s: float) -> list[mido.Message]:
        """Messages due now: answer notes whose time came, after writing an answer when a phrase ended."""
        if self.phrase_ended(now_s):
            self._answer(now_s)
        due = [m for t, m in self.scheduled if t <= now_s]
        self.scheduled = [(t, m) for t, m in self.scheduled if t > now_s]
        return due

    def _answer(self, now_s: float) -> None:
        beat_s, origin_s = self.grid()
        bar_s = beat_s * BEATS_PER_BAR
        bars_done = int((now_s + WRITE_MARGIN_S - origin_s) / bar_s) + 1
        start_s = bars_done * bar_s  # phrase time: 0 is the phrase's first note, on a bar line
        end_s = start_s + self.answer_bars * bar_s
        phrase = [NoteEvent(n.start_s - origin_s, n.end_s - origin_s, n.pitch_midi, n.velocity) for n in self.notes]
        tempo_map = TempoMap.constant(60.0 / beat_s, BEATS_PER_BAR, 4)
        started = time.perf_counter()
        fill = fill_gap(self.infiller, phrase, tempo_map, start_s, end_s, self.options, self.channels)
        ready_s = now_s + time.perf_counter() - started
        # An answer written after its bar line began would start late and off the beat: it waits for the
        # next bar line instead, so it stays in time.
        late_bars = max(0, math.ceil((ready_s - origin_s - start_s) / bar_s))
        shift_s = origin_s + late_bars * bar_s
        channel = self.channels[-1] - 1
        log.info("answering %d notes at %.0f BPM with %d notes%s", len(phrase), 60 / beat_s, len(fill.variations[0]),
                 f", {late_bars} bar(s) later than planned: it took long to write" if late_bars else "")
        for n in fill.variations[0]:
            on = mido.Message("note_on", note=n.pitch_midi, velocity=n.velocity, channel=channel)
            self.scheduled.append((shift_s + n.start_s, on))
            self.scheduled.append((shift_s + n.end_s, mido.Message("note_off", note=n.pitch_midi, channel=channel)))
        self.scheduled.sort(key=lambda item: (item[0], item[1].type == "note_on"))
        self.notes, self.channels = [], []


def serve(session: CallAndResponse, inport, outport, clock=time.monotonic, stop=lambda: False) -> None:
    """Pump messages between the ports and the session until ``stop()``."""
    while not stop():
        for msg in inport.iter_pending():
            for out in session.feed(msg, clock()):
                outport.send(out)
        for out in session.tick(clock()):
            outport.send(out)
        time.sleep(POLL_S)


def open_ports(in_name: str, out_name: str, virtual: bool = False):
    """Real (or virtual) rtmidi ports; RequestError with a sentence when the platform cannot give them."""
    try:
        if not virtual:
            names = mido.get_input_names(), mido.get_output_names()
            for name, known, what in ((in_name, names[0], "input"), (out_name, names[1], "output")):
                if name not in known:
                    raise RequestError(f"There is no MIDI {what} named {name!r}; the {what}s here are: "
                                       f"{', '.join(known) or 'none'}.")
        return mido.open_input(in_name, virtual=virtual), mido.open_output(out_name, virtual=virtual)
    except (OSError, SystemError, RuntimeError, ImportError, NotImplementedError) as exc:
        raise RequestError(
            f"This machine offers no MIDI ports ({' '.join(str(exc).split())}); reascribe session needs a MIDI "
            "interface or virtual ports (Linux: the ALSA sequencer, /dev/snd/seq; Windows: a loopback driver "
            "such as loopMIDI, since Windows has no virtual ports)."
        ) from None


def run_session(in_name: str, out_name: str, *, virtual: bool = False, temperature: float = 0.8,
                density: float = 1.0, answer_bars: int = 2) -> int:
    from reascribe.models.generator.infill import Infiller

    inport, outport = open_ports(in_name, out_name, virtual)
    session = CallAndResponse(Infiller(), answer_bars,
                              FillOptions(variations=1, temperature=temperature, density=density))
    log.warning("listening on %r, answering on %r (Ctrl+C to stop)", in_name, out_name)
    with inport, outport:
        try:
            serve(session, inport, outport)
        finally:
            outport.reset()  # no answer note left hanging
    return 0
