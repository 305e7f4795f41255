"""The token grammar of a middle, as a mask per step: what the sampler may write next.

It is the fill's hard constraints: every note starts inside the gap (from its start position in the
first bar to its last position in the last bar), positions rise within a bar, notes at one position
rise in pitch (one note per position for a melody), exactly ``LEN`` bars are written, then EOS.
"""

from __future__ import annotations

import torch

from reascribe.models.generator.vocab import DUR_BINS, N_VEL, VOCAB, Gap

_V = VOCAB
N_PITCH, N_DRUM = 128, _V.dur0 - _V.drum0


class MiddleGrammar:
    """State of one middle being written; ``mask()`` is the allowed next tokens, ``push()`` advances."""

    def __init__(self, gap: Gap, part: str):
        self.gap, self.part = gap, part
        self.bars, self.pos, self.last = 0, -1, _V.MID
        self.pitch_floor = -1  # notes at one position rise in pitch (drums: in class)
        self.notes = 0  # notes written in the whole middle
        self.notes_in_bar = 0
        self.notes_at_pos = 0  # notes written at the current position
        self.done = False

    def mask(self) -> torch.Tensor:
        allowed = torch.zeros(len(_V), dtype=torch.bool)
        kind = _V.kind(self.last)
        if self.done:
            allowed[_V.PAD] = True
        elif kind == "MID":
            allowed[_V.BAR] = True
        elif kind == "POS":
            self._allow_notes(allowed, -1)
        elif kind == "PITCH":
            allowed[_V.dur0 : _V.dur0 + len(DUR_BINS)] = True
        elif kind in ("DUR", "DRUM"):
            allowed[_V.vel0 : _V.vel0 + N_VEL] = True
        else:  # after BAR or a complete note
            self._allow_positions(allowed)
            if kind == "VEL" and self.part != "melody":
                self._allow_notes(allowed, self.pitch_floor)
            if self.bars < self.gap.n_bars:
                allowed[_V.BAR] = True
            else:
                allowed[_V.EOS] = True
        return allowed

    def _allow_positions(self, allowed: torch.Tensor) -> None:
        lo = max(self.pos + 1, self.gap.start_pos if self.bars == 1 else 0)
        hi = self.gap.last_pos if self.bars == self.gap.n_bars else self.gap.steps_per_bar - 1
        if lo <= hi:
            allowed[_V.pos0 + lo : _V.pos0 + hi + 1] = True

    def _allow_notes(self, allowed: torch.Tensor, floor: int) -> None:
        if self.part == "drums":
            allowed[_V.drum0 + floor + 1 : _V.drum0 + N_DRUM] = True
        else:
            allowed[_V.pitch0 + floor + 1 : _V.pitch0 + N_PITCH] = True

    def steps_in_bar(self) -> int:
        """Sixteenths of the gap in the bar being written (0 before the first BAR)."""
        if self.bars == 0:
            return 0
        lo = self.gap.start_pos if self.bars == 1 else 0
        hi = self.gap.last_pos + 1 if self.bars == self.gap.n_bars else self.gap.steps_per_bar
        return hi - lo

    def first_step(self) -> int:
        """The gap's first position in the bar being written."""
        return self.gap.start_pos if self.bars == 1 else 0

    def steps_so_far(self) -> int:
        """Sixteenths of the gap in the bar being written, up to and including the current position."""
        return max(0, self.pos + 1 - self.first_step())

    def in_first_onset(self) -> bool:
        """Whether the middle's first onset is being written: a position is set and every note so far is
        there."""
        return self.pos >= 0 and self.notes == self.notes_at_pos

    def push(self, token: int) -> None:
        kind = _V.kind(token)
        if kind == "BAR":
            self.bars, self.pos, self.notes_in_bar, self.notes_at_pos = self.bars + 1, -1, 0, 0
        elif kind == "VEL":
            self.notes += 1
            self.notes_in_bar += 1
            self.notes_at_pos += 1
        elif kind == "POS":
            self.pos, self.pitch_floor, self.notes_at_pos = token - _V.pos0, -1, 0
        elif kind == "PITCH":
            self.pitch_floor = token - _V.pitch0
        elif kind == "DRUM":
            self.pitch_floor = token - _V.drum0
        elif kind == "EOS":
            self.done = True
        self.last = token
