"""In-process FluidSynth rendering of timed MIDI events, with a soundfont preset chosen per channel.

One synth per process keeps the soundfonts loaded (MuseScore General takes seconds to decode), and
choosing the preset per channel lets one render mix instruments from several kits.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SF2 = Path("/usr/share/sounds/sf2")
SF3 = Path("/usr/share/sounds/sf3")
SOUNDFONTS = {
    "fluidr3": SF2 / "FluidR3_GM.sf2",
    "musescore": SF3 / "MuseScore_General_Full.sf3",
    "timgm6mb": SF2 / "TimGM6mb.sf2",
    "black_pearl": SF2 / "Black_Pearl_4_LV2.sf2",
    "red_zeppelin": SF2 / "Red_Zeppelin_4_LV2.sf2",
}
DEBIAN_PACKAGES = "fluidsynth fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont avldrums.lv2-soundfont"
BLOCK = 64  # FluidSynth applies events at its 64-sample block boundaries


@dataclass(frozen=True)
class Preset:
    soundfont: str  # key of SOUNDFONTS
    bank: int
    program: int


@dataclass(frozen=True)
class Event:
    time_s: float
    channel: int
    kind: str  # "on", "off" or "cc"
    a: int  # key or controller
    b: int  # velocity or value


class Renderer:
    def __init__(self, sample_rate: int = 44100):
        import fluidsynth  # pyfluidsynth: training only

        missing = [str(p) for p in SOUNDFONTS.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"Soundfonts missing: {', '.join(missing)}; apt-get install {DEBIAN_PACKAGES}")
        self.sample_rate = sample_rate
        # Set before the synth exists (later they are ignored). No reverb or chorus: rooms come from
        # our augmentation, and their tails would carry from one render into the next.
        options = {"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 512}
        self.synth = fluidsynth.Synth(gain=0.25, samplerate=float(sample_rate), **options)
        self.sfids = {name: self.synth.sfload(str(path)) for name, path in SOUNDFONTS.items()}
        # Float output: the 16-bit writer dithers with a running random state, so renders would differ.
        self._write_float = fluidsynth._fl.fluid_synth_write_float
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] * 2
        self._rendered = 0

    def render(self, events: list[Event], presets: dict[int, Preset], duration_s: float) -> np.ndarray:
        """Mono float32 audio of ``events`` (any order), exactly ``duration_s`` long: what still rings then is cut."""
        for channel in range(16):  # silence the last render at once and reset its controllers
            self.synth.all_sounds_off(channel)
            self.synth.cc(channel, 121, 0)
        self._skip(BLOCK + (-self._rendered) % BLOCK)  # from a block boundary: identical renders every time
        for channel, preset in presets.items():
            self.synth.program_select(channel, self.sfids[preset.soundfont], preset.bank, preset.program)
        total = int(round(duration_s * self.sample_rate))
        out = np.zeros(total, np.float32)
        pos = 0
        for event in sorted(events, key=lambda e: (e.time_s, e.kind != "cc", e.kind == "on")):
            target = min(total, int(round(event.time_s * self.sample_rate)))
            pos = self._render_to(out, pos, target)
            if event.kind == "on":
                self.synth.noteon(event.channel, event.a, event.b)
            elif event.kind == "off":
                self.synth.noteoff(event.channel, event.a)
            else:
                self.synth.cc(event.channel, event.a, event.b)
        self._render_to(out, pos, total)
        return out

    def _render_to(self, out: np.ndarray, pos: int, target: int) -> int:
        if target > pos:
            n = target - pos
            left, right = np.empty(n, np.float32), np.empty(n, np.float32)
            self._write_float(self.synth.synth, n, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
            self._rendered += n
            out[pos:target] = 0.5 * (left + right)
        return max(pos, target)

    def _skip(self, n: int) -> None:
        if n:
            self._render_to(np.empty(n, np.float32), 0, n)
