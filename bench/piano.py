"""Piano benchmark: reascribe's piano path against transkun's own command, on one synthetic render.

The audio is a FluidSynth render (FluidR3_GM) of source seconds 60-120 of the MAESTRO performance in
shared/data/piano/smoke_maestro_stub_mirdata: real human timing, velocities and pedalling (452 notes,
48 sustain presses, no soft pedal in this minute), a fixed minute past the opening. It is synthetic
audio: FluidSynth's pedal makes no sound, so pedal presses are hard to hear (see
../shared/docs/anchors-measured.md, section 6.1).

Each tool runs in its own process, one after the other, as a user would run it:
  transkun:  transkun/transcribe.py's main() (pydub read, TransKun.transcribe, pretty_midi write),
             with reascribe's torchaudio stand-in registered first;
  reascribe: ``reascribe transcribe WAV --kind piano --out MID`` (load_section, PianoPipeline, beat
             tracking for the file's tempo map, write_midi).
Wall time covers the whole process (start, imports, model load, decoding, inference, writing); peak
memory is the process's maximum resident set (wait4). Scores use mir_eval's defaults: onsets within
50 ms; offsets within 20 % of the note or 50 ms. Usage: python bench/piano.py [--start-s 60 --dur-s 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mir_eval
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from reascribe.events import SUSTAIN_CC, Events, NoteEvent  # noqa: E402
from reascribe.midi_out import read_events  # noqa: E402
from reascribe.pipelines.piano import extend_to_pedal  # noqa: E402

from render import MAESTRO_MIDI, Truth, render_midi_excerpt  # noqa: E402

OUT_DIR = ROOT / "bench" / "out" / "piano"
PYTHON = sys.executable
REASCRIBE = str(Path(sys.executable).with_name("reascribe"))

# transkun/transcribe.py's own entry point, after registering the torchaudio stand-in.
TRANSKUN_MAIN = (
    "import sys; from reascribe.compat import install_torchaudio_shim; install_torchaudio_shim(); "
    "sys.argv = ['transkun', sys.argv[1], sys.argv[2]]; from transkun.transcribe import main; main()"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start-s", type=float, default=60.0)
    parser.add_argument("--dur-s", type=float, default=60.0)
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    wav, truth = render_midi_excerpt(MAESTRO_MIDI, args.start_s, args.dur_s)
    audio_s = sf.info(str(wav)).duration
    mid = {name: OUT_DIR / f"{name}.mid" for name in ("transkun", "reascribe")}
    runs = {
        "transkun": [PYTHON, "-c", TRANSKUN_MAIN, str(wav), str(mid["transkun"])],
        "reascribe": [REASCRIBE, "transcribe", str(wav), "--kind", "piano", "--out", str(mid["reascribe"]), "--quiet"],
    }
    measured = {}
    for name, cmd in runs.items():
        mid[name].unlink(missing_ok=True)
        wall_s, peak_mb = _run_measured(cmd, OUT_DIR / f"{name}.log")
        events, _ = read_events(mid[name])
        measured[name] = {"wall_s": wall_s, "rtf": wall_s / audio_s, "peak_mb": peak_mb, **_scores(events, truth)}
        extended = Events(extend_to_pedal(events.notes, _sustain_intervals(events)), events.controls)
        measured[name]["onset_offset_f1_pedal_ext_with_pedal_extend"] = _scores(extended, truth)[
            "onset_offset_f1_pedal_ext"
        ]
    same = _same_notes(mid["reascribe"], mid["transkun"])

    print(
        f"Audio: SYNTHETIC (FluidSynth + FluidR3_GM render) of MAESTRO MIDI {MAESTRO_MIDI.name}, source "
        f"{args.start_s:g}-{args.start_s + args.dur_s:g} s; WAV {audio_s:.2f} s with the release tail; "
        f"{len(truth.notes)} notes, {len(truth.sustain)} sustain presses, {len(truth.soft)} soft presses."
    )
    print(f"Machine: {os.cpu_count()} CPU cores; each tool in its own process, one after the other.\n")
    _print_table(measured)
    print(f"\nreascribe notes equal to transkun's (pitch, velocity, onset and offset within 1 ms): {same}")
    (OUT_DIR / "results.json").write_text(
        json.dumps({"audio_s": audio_s, "runs": measured, "same_notes": same}, indent=2)
    )
    return 0


def _run_measured(cmd: list[str], log_path: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one process run to completion."""
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}); see {log_path}")
    return wall_s, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def _sustain_intervals(events: Events) -> list[tuple[float, float]]:
    intervals, down_s = [], None
    for c in sorted((c for c in events.controls if c.controller == SUSTAIN_CC), key=lambda c: c.time_s):
        if c.value >= 64 and down_s is None:
            down_s = c.time_s
        elif c.value < 64 and down_s is not None:
            intervals.append((down_s, c.time_s))
            down_s = None
    return intervals


def _note_arrays(notes) -> tuple[np.ndarray, np.ndarray]:
    intervals = np.array([[n[0], n[1]] for n in notes]).reshape(-1, 2)
    return intervals, mir_eval.util.midi_to_hz(np.array([n[2] for n in notes], dtype=float))


def _f1(ref, est, **kwargs) -> float:
    if not len(ref) or not len(est):
        return 0.0
    ref_i, ref_p = _note_arrays(ref)
    est_i, est_p = _note_arrays(est)
    return mir_eval.transcription.precision_recall_f1_overlap(ref_i, ref_p, est_i, est_p, **kwargs)[2]


def _onset_f1(ref_s: list[float], est_s: list[float]) -> float:
    if not ref_s or not est_s:
        return 0.0
    return mir_eval.onset.f_measure(np.array(ref_s), np.array(est_s), window=0.05)[0]


def _scores(events: Events, truth: Truth) -> dict[str, float]:
    est = [(n.start_s, n.end_s, n.pitch_midi) for n in events.notes]
    truth_notes = [NoteEvent(s, e, p, v) for s, e, p, v in truth.notes]
    extended = [(n.start_s, n.end_s, n.pitch_midi) for n in extend_to_pedal(truth_notes, truth.sustain)]
    key_release = [(s, e, p) for s, e, p, _ in truth.notes]
    pedal = _sustain_intervals(events)
    as_notes = lambda intervals: [(a, b, SUSTAIN_CC) for a, b in intervals]  # noqa: E731
    return {
        "notes": len(est),
        "onset_f1": _f1(key_release, est, offset_ratio=None),
        "onset_offset_f1_key_release": _f1(key_release, est),
        "onset_offset_f1_pedal_ext": _f1(extended, est),
        "sustain_presses": len(pedal),
        "pedal_interval_f1": _f1(as_notes(truth.sustain), as_notes(pedal)),
        "pedal_press_f1": _onset_f1([a for a, _ in truth.sustain], [a for a, _ in pedal]),
        "pedal_release_f1": _onset_f1([b for _, b in truth.sustain], [b for _, b in pedal]),
    }


def _same_notes(a: Path, b: Path) -> str:
    notes_a, notes_b = read_events(a)[0].notes, read_events(b)[0].notes
    key = lambda n: (n.pitch_midi, n.start_s)  # noqa: E731
    pairs = zip(sorted(notes_a, key=key), sorted(notes_b, key=key))
    equal = sum(
        1
        for x, y in pairs
        if (x.pitch_midi, x.velocity) == (y.pitch_midi, y.velocity)
        and abs(x.start_s - y.start_s) < 1e-3
        and abs(x.end_s - y.end_s) < 1e-3
    )
    return f"{equal} of {len(notes_a)} (transkun wrote {len(notes_b)})"


ROWS = [
    ("notes written", "notes", "{:.0f}"),
    ("note onset F1", "onset_f1", "{:.3f}"),
    ("onset+offset F1 vs key-release truth", "onset_offset_f1_key_release", "{:.3f}"),
    ("onset+offset F1 vs pedal-extended truth", "onset_offset_f1_pedal_ext", "{:.3f}"),
    (
        "onset+offset F1 vs pedal-extended truth, output with pedal_extend",
        "onset_offset_f1_pedal_ext_with_pedal_extend",
        "{:.3f}",
    ),
    ("sustain presses written", "sustain_presses", "{:.0f}"),
    ("pedal F1, CC64 intervals as notes", "pedal_interval_f1", "{:.3f}"),
    ("pedal press F1 @ 50 ms", "pedal_press_f1", "{:.3f}"),
    ("pedal release F1 @ 50 ms", "pedal_release_f1", "{:.3f}"),
    ("wall time, whole process (s)", "wall_s", "{:.1f}"),
    ("real-time factor", "rtf", "{:.2f}"),
    ("peak memory (MB)", "peak_mb", "{:.0f}"),
]


def _print_table(measured: dict) -> None:
    ours, theirs = measured["reascribe"], measured["transkun"]
    print("| metric | reascribe | transkun | ratio |")
    print("|---|---|---|---|")
    for label, key, fmt in ROWS:
        ratio = f"{ours[key] / theirs[key]:.2f}" if theirs[key] else "-"
        print(f"| {label} | {fmt.format(ours[key])} | {fmt.format(theirs[key])} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
