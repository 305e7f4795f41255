"""What pipelines produce: note and controller events in seconds of the source audio."""

from __future__ import annotations

from dataclasses import dataclass, field

SUSTAIN_CC = 64
SOFT_CC = 67


@dataclass(frozen=True)
class NoteEvent:
    start_s: float
    end_s: float
    pitch_midi: int
    velocity: int

    def as_row(self) -> list:
        return [round(self.start_s, 6), round(self.end_s, 6), self.pitch_midi, self.velocity]


@dataclass(frozen=True)
class ControlEvent:
    time_s: float
    controller: int
    value: int

    def as_row(self) -> list:
        return [round(self.time_s, 6), self.controller, self.value]


@dataclass(frozen=True)
class ChordSegment:
    start_s: float
    end_s: float
    label: str  # Harte syntax (MIREX), "N" for no chord
    symbol: str = ""  # as a lead sheet writes it: "C/E", "F#m7b5", "N.C."

    def as_row(self) -> list:
        return [round(self.start_s, 6), round(self.end_s, 6), self.label, self.symbol]


@dataclass
class Events:
    """A pipeline's output. Times are seconds from the start of the audio the pipeline was given."""

    notes: list[NoteEvent] = field(default_factory=list)
    controls: list[ControlEvent] = field(default_factory=list)
    chords: list[ChordSegment] | None = None  # None: the kind recognises no chords
    key: str | None = None  # e.g. "Eb:maj", with chords

    def shifted(self, offset_s: float) -> "Events":
        """The same events moved by ``offset_s`` (section time -> source time)."""
        return Events(
            [NoteEvent(n.start_s + offset_s, n.end_s + offset_s, n.pitch_midi, n.velocity) for n in self.notes],
            [ControlEvent(c.time_s + offset_s, c.controller, c.value) for c in self.controls],
            None if self.chords is None else [ChordSegment(c.start_s + offset_s, c.end_s + offset_s, c.label, c.symbol) for c in self.chords],
            self.key,
        )
