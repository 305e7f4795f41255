"""The live call-and-response session on mido's in-memory ports, with a scripted phrase and clock."""

from __future__ import annotations

import time

import mido
import mido.ports
import pytest

from reascribe.errors import RequestError
from reascribe.generate import FillOptions
from reascribe.models.generator.infill import Infiller
from reascribe.session import CallAndResponse, estimate_grid, open_ports, serve

BEAT_S = 0.6  # the player's tempo: 100 BPM


class ListOutput(mido.ports.BaseOutput):
    def __init__(self, clock):
        super().__init__("answers")
        self.clock, self.sent = clock, []

    def _send(self, msg):
        self.sent.append((self.clock(), msg))


def phrase(n_notes=8):
    """(time_s, message): an eighth-note line at 100 BPM, each note held half its slot."""
    out = []
    for i in range(n_notes):
        t, pitch = i * BEAT_S / 2, (60, 62, 64, 65, 67, 65, 64, 62)[i % 8]
        out += [(t, mido.Message("note_on", note=pitch, velocity=90)),
                (t + BEAT_S / 4, mido.Message("note_off", note=pitch))]
    return sorted(out, key=lambda x: x[0])


def test_tempo_and_phase_are_estimated_from_onsets_with_timing_jitter():
    onsets = [5.0 + i * BEAT_S / 2 + (0.01 if i % 3 else -0.008) for i in range(12)]
    beat_s, origin_s = estimate_grid(onsets)
    assert beat_s == pytest.approx(BEAT_S, rel=0.01) and origin_s == pytest.approx(5.0, abs=0.01)
    assert estimate_grid([0.0, 1.0]) is None


def test_a_phrase_gets_an_answer_on_the_next_bar_line_in_the_players_tempo():
    now = [0.0]
    inport, outport = mido.ports.BaseInput("player"), ListOutput(lambda: now[0])
    session = CallAndResponse(Infiller(), answer_bars=2, options=FillOptions(variations=1, seed=3))
    script = phrase()
    t_end = 12.0

    def stop():
        now[0] = round(now[0] + 0.01, 3)  # a simulated clock: 10 ms a loop
        while script and script[0][0] <= now[0]:
            inport._messages.append(script.pop(0)[1])
        return now[0] >= t_end

    serve(session, inport, outport, clock=lambda: now[0], stop=stop)
    ons = [(t, m) for t, m in outport.sent if m.type == "note_on"]
    offs = [(t, m) for t, m in outport.sent if m.type == "note_off"]
    assert ons, "no answer was played"
    bar_s = 4 * BEAT_S
    # The last note ends at 2.25 s; a beat of silence ends the phrase at 2.85 s; the next bar line is 4.8 s.
    first, last = ons[0][0], offs[-1][0]
    assert first >= 2 * bar_s - 0.021 and last <= 4 * bar_s + 0.021
    step_s = BEAT_S / 4
    for t, _ in ons:  # on the player's sixteenth grid, within two loop ticks (input and output are polled)
        assert abs(t / step_s - round(t / step_s)) * step_s <= 0.021
    assert sorted(m.note for _, m in ons) == sorted(m.note for _, m in offs)  # nothing left hanging


def test_playing_again_cuts_the_answer_short():
    session = CallAndResponse(Infiller(), answer_bars=4, options=FillOptions(variations=1, seed=1))
    for t, msg in phrase():
        session.feed(msg, t)
    assert session.tick(3.0) == [] and session.scheduled  # answer written, first note not yet due
    session.scheduled.append((9.0, mido.Message("note_off", note=70)))
    cut = session.feed(mido.Message("note_on", note=72, velocity=80), 3.1)
    assert cut and all(m.type == "note_off" for m in cut) and not session.scheduled


class SlowInfiller:
    """The model, taking ``delay_s`` longer to write (a busy machine)."""

    def __init__(self, delay_s: float):
        self.model, self.delay_s = Infiller(), delay_s

    def fill(self, *args, **kwargs):
        time.sleep(self.delay_s)
        return self.model.fill(*args, **kwargs)


@pytest.mark.parametrize("delay_s, first_bar", [(0.0, 2), (0.8, 3)])
def test_an_answer_written_after_its_bar_line_waits_for_the_next_one(delay_s, first_bar):
    session = CallAndResponse(SlowInfiller(delay_s), answer_bars=1, options=FillOptions(variations=1, seed=2))
    for t, msg in phrase():
        session.feed(msg, t)
    bar_s = 4 * BEAT_S
    # At 4.2 s the next bar line 0.25 s away is 4.8 s (bar 2): writing the answer for longer than 0.6 s
    # would start it late and off the beat, so it moves to bar 3, its notes where they were in their bar.
    session.tick(4.2)
    ons = [t for t, m in session.scheduled if m.type == "note_on"]
    assert ons and min(ons) >= first_bar * bar_s - 1e-6 and max(ons) < (first_bar + 1) * bar_s
    step_s = BEAT_S / 4
    assert all(abs(t / step_s - round(t / step_s)) < 1e-6 for t in ons)


def test_without_a_midi_system_it_says_so_in_a_sentence():
    with pytest.raises(RequestError, match="no MIDI ports|no MIDI input named"):
        open_ports("nowhere in", "nowhere out", virtual=True)
