"""The drum classes reascribe transcribes, their General MIDI notes, and the Groove MIDI (Roland TD-11)
note numbers mapped onto them.

The TD-11 mapping follows the Groove MIDI Dataset's own table (Gillick et al. 2019, "Learning to
Groove with Inverse Sequence Transformations", table 2), which also folds edge, rim and bell hits into
their instrument. ``GM_RENDER_NOTE`` turns TD-11 notes that General MIDI soundfonts lack (22, 26, 58)
into the GM note of the same sound, so renders have a sample for every hit.
"""

from __future__ import annotations

CLASSES = (
    "kick",
    "snare",
    "hihat_closed",
    "hihat_open",
    "tom_low",
    "tom_mid",
    "tom_high",
    "crash",
    "ride",
)

# General MIDI percussion key map (channel 10): what a drum sampler expects by default.
GM_NOTE = {
    "kick": 36,
    "snare": 38,
    "hihat_closed": 42,
    "hihat_open": 46,
    "tom_low": 43,
    "tom_mid": 47,
    "tom_high": 50,
    "crash": 49,
    "ride": 51,
}

TD11_CLASS = {
    36: "kick",
    38: "snare", 40: "snare", 37: "snare",  # head, rim, cross-stick
    48: "tom_high", 50: "tom_high",
    45: "tom_mid", 47: "tom_mid",
    43: "tom_low", 58: "tom_low",
    46: "hihat_open", 26: "hihat_open",
    42: "hihat_closed", 22: "hihat_closed", 44: "hihat_closed",  # bow, edge, pedal
    49: "crash", 55: "crash", 57: "crash", 52: "crash",
    51: "ride", 59: "ride", 53: "ride",
}

GM_RENDER_NOTE = {**{n: n for n in TD11_CLASS}, 22: 42, 26: 46, 58: 43}

# The three- and five-class groups of the drum transcription literature (MDB Drums' "class" labels):
# KD kick, SD snare, HH hi-hat, TT toms, CY cymbals.
EVAL_GROUP = {
    "kick": "KD",
    "snare": "SD",
    "hihat_closed": "HH",
    "hihat_open": "HH",
    "tom_low": "TT",
    "tom_mid": "TT",
    "tom_high": "TT",
    "crash": "CY",
    "ride": "CY",
}
