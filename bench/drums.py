"""Drum transcription benchmark: reascribe's drums pipeline against two librosa baselines.

Data (../shared/data/drums, EVAL ONLY: never train, tune or pick checkpoints on it):
  MDB stems      real audio: 9 MedleyDB "MusicDelta" drum stems, hand-labelled onsets (MDB Drums);
  MDB mixes      real audio: the same 9 songs as full mixes (official ``_MIX`` or plain sums of the
                 real multitracks ``_RAWSUM``), same labels;
  StemGMD mixes  rendered from real performances: Groove MIDI drumming played through sampled
                 acoustic kits; the Groove MIDI file is the truth (TD-11 notes -> TD11_CLASS -> EVAL_GROUP).
                 The MIDI is time-aligned with the audio (no offset applied): isolated kick/snare
                 attacks start 0.7-2 ms after their note-on in all 5 files; each run re-checks it.

Scoring: mir_eval's onset matching, 50 ms window, per file and per group (KD SD HH TT CY); onsets of
one group closer than 20 ms are merged, in the truth and in the estimates. Dataset figures are micro:
TP/FP/FN summed over files (and over KD+SD+HH for "overall"); mean-of-class F averages those class F
over the classes with reference onsets. MDB's OT class (side stick, tambourine) is left out of the
class rows but counted in "any drum" (every labelled onset pooled, merged across classes).

Systems, each in its own process over all files (peak memory = that process's max RSS). Audio
loading and one warm-up call on 3 s of audio (numba / torch first-call costs) are not timed; the
timed part is transcription only. RTF = processing s / audio s, x real time = 1 / RTF.
  reascribe      create("drums").run(...), notes mapped back through GM_NOTE -> class -> EVAL_GROUP;
  librosa-onset  baseline A: onset_detect on the whole signal (any-drum only);
  librosa-bands  baseline B: HPSS (margin 3) percussive part, per-band onset detection for KD/SD/HH
                 (any drum: onset_detect on the percussive part).
Usage: python bench/drums.py [--quick] [--json OUT] [--systems reascribe,librosa-onset,librosa-bands]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mir_eval
import numpy as np
import pretty_midi
import soundfile as sf
from reascribe.models.drums.classes import EVAL_GROUP, GM_NOTE, TD11_CLASS

ROOT = Path(__file__).resolve().parents[1]
DRUMS = ROOT.parent / "shared" / "data" / "drums"
MDB, GMD = DRUMS / "mdb", DRUMS / "stemgmd"
WINDOW_S, MERGE_S = 0.05, 0.02
GROUPS = ("KD", "SD", "HH", "TT", "CY")
TRIO = ("KD", "SD", "HH")
SYSTEMS = ("reascribe", "librosa-onset", "librosa-bands")
SCORED = {"reascribe": (*GROUPS, "ANY"), "librosa-onset": ("ANY",), "librosa-bands": (*TRIO, "ANY")}
WARMUP_S = 3.0

# ---------------------------------------------------------------- scoring (imported by tests)


def merge_onsets(times, min_gap_s: float = MERGE_S) -> np.ndarray:
    """Sorted onsets with each one closer than ``min_gap_s`` to the last kept one dropped."""
    kept: list[float] = []
    for t in np.sort(np.asarray(times, dtype=float)):
        if not kept or t - kept[-1] >= min_gap_s:
            kept.append(float(t))
    return np.array(kept)


def score_onsets(ref, est, window_s: float = WINDOW_S) -> tuple[int, int, int]:
    """(TP, FP, FN) of mir_eval's onset matching (the matching mir_eval.onset.f_measure counts)."""
    ref, est = np.sort(np.asarray(ref, dtype=float)), np.sort(np.asarray(est, dtype=float))
    tp = len(mir_eval.util.match_events(ref, est, window_s)) if len(ref) and len(est) else 0
    return tp, len(est) - tp, len(ref) - tp


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """(F, P, R) from counts, with mir_eval's conventions (all 0 when either list is empty)."""
    if tp + fp == 0 or tp + fn == 0:
        return 0.0, 0.0, 0.0
    p, r = tp / (tp + fp), tp / (tp + fn)
    return mir_eval.util.f_measure(p, r), p, r


# ---------------------------------------------------------------- truth


def read_mdb_classes(path) -> dict[str, np.ndarray]:
    """MDB Drums ``*_class.txt`` (``time \\t CLASS``, trailing spaces) -> class -> onset times."""
    out: dict[str, list[float]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            time_s, label = line.split()
            out.setdefault(label, []).append(float(time_s))
    return {k: np.array(v) for k, v in out.items()}


def read_gmd_midi(path) -> dict[str, np.ndarray]:
    """Groove MIDI file -> EVAL_GROUP -> onset times (TD-11 notes outside TD11_CLASS under "unmapped")."""
    out: dict[str, list[float]] = {}
    for note in (n for inst in pretty_midi.PrettyMIDI(str(path)).instruments for n in inst.notes):
        group = EVAL_GROUP[TD11_CLASS[note.pitch]] if note.pitch in TD11_CLASS else "unmapped"
        out.setdefault(group, []).append(note.start)
    return {k: np.sort(v) for k, v in out.items()}


def gmd_midi_for(audio: Path) -> Path:
    """``<name>_<kit>_MIX.flac`` -> ``<name>.mid`` (kit names may hold underscores: match by prefix)."""
    found = [m for m in (GMD / "annotations_gmd_midi").glob("*.mid") if audio.name.startswith(m.stem + "_")]
    if len(found) != 1:
        raise ValueError(f"{audio.name}: {len(found)} Groove MIDI files match")
    return found[0]


def truth_for(audio: Path) -> dict[str, np.ndarray]:
    """Merged reference onsets per group, plus "ANY" (every labelled onset) and "OT" (MDB only)."""
    if GMD in audio.parents:
        raw = read_gmd_midi(gmd_midi_for(audio))
    else:
        raw = read_mdb_classes(MDB / "annotations" / "class" / f"{audio.stem.rsplit('_', 1)[0]}_class.txt")
    truth = {g: merge_onsets(raw.get(g, [])) for g in (*GROUPS, "OT")}
    truth["ANY"] = merge_onsets(np.concatenate([np.asarray(v, dtype=float) for v in raw.values()]))
    return truth


def gmd_alignment(audio: Path) -> tuple[float, int]:
    """Median lag (s) of isolated kick/snare attacks after their MIDI note-on, and how many were used.
    Attack = first crossing of 10 % of the rise of a 1 ms RMS envelope, in [-40, +60] ms."""
    y, sr = sf.read(str(audio), always_2d=True)
    env = np.sqrt(np.convolve(y.mean(axis=1) ** 2, np.ones(sr // 1000) / (sr // 1000), "same"))
    raw = read_gmd_midi(gmd_midi_for(audio))
    every = np.unique(np.concatenate(list(raw.values())))
    lags = []
    for t in np.union1d(raw.get("KD", []), raw.get("SD", [])):
        i0, i_base, i1 = int((t - 0.04) * sr), int((t - 0.03) * sr), int((t + 0.06) * sr)
        if i0 < 0 or ((every < t) & (every > t - 0.08)).any():
            continue  # another note in the 80 ms before: not isolated
        base, seg = env[i0:i_base].max() + 1e-9, env[i0:i1]
        if seg.max() > 3 * base:
            lags.append((i0 + np.argmax(seg > base + 0.1 * (seg.max() - base))) / sr - t)
    return float(np.median(lags)), len(lags)


def datasets(quick: bool) -> list[dict]:
    sets = [
        ("MDB stems", "real audio", sorted((MDB / "audio_drum_only").glob("*.flac"))),
        ("MDB mixes", "real audio", sorted((MDB / "audio_mix").glob("*.flac"))),
        ("StemGMD mixes", "rendered from real performances", sorted((GMD / "audio_mix").glob("*_MIX.flac"))),
    ]
    return [{"name": n, "label": lab, "files": fs[:2] if quick else fs} for n, lab, fs in sets]


# ---------------------------------------------------------------- systems (run in a child process)
# Baseline parameters are fixed a priori (librosa defaults; bands as in anchors-measured.md, hi-hat
# from 5 kHz) and were never tuned on the evaluation files.
SR, N_FFT, HOP, N_MELS, HPSS_MARGIN = 22050, 2048, 256, 128, 3.0
BANDS_HZ = {"KD": (30.0, 150.0), "SD": (150.0, 2000.0), "HH": (5000.0, SR / 2)}


class Unavailable(RuntimeError):
    """A system that cannot be loaded; its message is printed as it is."""


def _load_reascribe():
    from reascribe.pipelines import create, no_progress

    try:
        pipeline = create("drums")
        pipeline.load()
    except Exception as exc:  # a missing pipeline, model or checkpoint: report and let the baselines run
        raise Unavailable(f"reascribe drums model not available: {type(exc).__name__}: {exc}") from exc
    group_of = {note: EVAL_GROUP[cls] for cls, note in GM_NOTE.items()}

    def transcribe(section) -> dict[str, list[float]]:
        notes = pipeline.run(section, {}, no_progress).notes
        out = {"ANY": [n.start_s for n in notes]}
        for n in notes:
            out.setdefault(group_of.get(n.pitch_midi, "unmapped"), []).append(n.start_s)
        return out

    return pipeline.sample_rate, getattr(pipeline, "mono", True), transcribe


def _load_librosa_onset():
    import librosa

    def transcribe(section) -> dict[str, list[float]]:
        y = section.samples[:, 0]
        return {"ANY": librosa.onset.onset_detect(y=y, sr=SR, hop_length=HOP, units="time").tolist()}

    return SR, True, transcribe


def _load_librosa_bands():
    import librosa

    mel_hz = librosa.mel_frequencies(n_mels=N_MELS, fmin=0.0, fmax=SR / 2)

    def transcribe(section) -> dict[str, list[float]]:
        y = librosa.effects.percussive(section.samples[:, 0], margin=HPSS_MARGIN)
        mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
        mel_db = librosa.power_to_db(mel, ref=np.max)
        out = {"ANY": librosa.onset.onset_detect(y=y, sr=SR, hop_length=HOP, units="time").tolist()}
        for group, (lo, hi) in BANDS_HZ.items():
            band = mel_db[(mel_hz >= lo) & (mel_hz <= hi)]
            env = librosa.onset.onset_strength(S=band, sr=SR, n_fft=N_FFT, hop_length=HOP)
            out[group] = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=HOP, units="time").tolist()
        return out

    return SR, True, transcribe


LOADERS = {"reascribe": _load_reascribe, "librosa-onset": _load_librosa_onset, "librosa-bands": _load_librosa_bands}


def child_main(system: str, files_json: str, out_json: str) -> None:
    """Transcribe every file with one system; write estimates, timings and this process's peak RSS."""
    from reascribe.audio import load_section

    files = json.loads(Path(files_json).read_text())
    result: dict = {"system": system, "available": True, "files": {}, "seconds": {}, "cpu_s": 0.0}
    try:
        sr, mono, transcribe = LOADERS[system]()
        transcribe(load_section(files[0], 0.0, WARMUP_S, sample_rate=sr, mono=mono))  # warm-up, untimed
        for f in files:
            section = load_section(f, 0.0, None, sample_rate=sr, mono=mono)  # one file at a time, untimed
            wall0, cpu0 = time.perf_counter(), time.process_time()
            try:
                result["files"][f] = transcribe(section)
            except Exception as exc:
                raise RuntimeError(f"on {Path(f).name}: {type(exc).__name__}: {exc}") from exc
            result["seconds"][f] = (time.perf_counter() - wall0, section.duration_s)
            result["cpu_s"] += time.process_time() - cpu0
    except Unavailable as exc:
        result.update(available=False, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure is reported in the table, the other systems go on
        result.update(available=False, reason=f"{system} failed: {type(exc).__name__}: {exc}")
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    Path(out_json).write_text(json.dumps(result))


def run_system(system: str, files: list[str], tmp: Path) -> dict:
    files_json, out_json = tmp / "files.json", tmp / f"{system}.json"
    files_json.write_text(json.dumps(files))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", system, str(files_json), str(out_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0 or not out_json.exists():
        reason = f"{system} process exited {proc.returncode}: {proc.stderr[-500:]}"
        return {"system": system, "available": False, "reason": reason}
    return json.loads(out_json.read_text())


# ---------------------------------------------------------------- scoring a dataset and printing


def score_dataset(files: list[Path], runs: dict) -> dict:
    """Per system: per-file (TP, FP, FN) per group and micro P/R/F over the dataset."""
    truths = {f: truth_for(f) for f in files}
    scored = {}
    for system, run in runs.items():
        if not run["available"]:
            continue
        groups = SCORED[system]
        per_file = {
            f.name: {g: score_onsets(truths[f][g], merge_onsets(run["files"][str(f)].get(g, []))) for g in groups}
            for f in files
        }
        micro = {g: np.sum([c[g] for c in per_file.values()], axis=0).tolist() for g in groups}
        if set(TRIO) <= set(groups):
            micro["KD/SD/HH"] = np.sum([micro[g] for g in TRIO], axis=0).tolist()
        scored[system] = {"per_file": per_file, "micro": {g: {"counts": c, "fpr": prf(*c)} for g, c in micro.items()}}
    n_ref = {g: int(sum(len(t[g]) for t in truths.values())) for g in (*GROUPS, "OT", "ANY")}
    return {"systems": scored, "n_ref": n_ref}


def mean_of_class(micro: dict, groups, n_ref: dict) -> float | None:
    fs = [micro[g]["fpr"][0] for g in groups if g in micro and n_ref[g] > 0]
    return float(np.mean(fs)) if fs and len(fs) == sum(n_ref[g] > 0 for g in groups) else None


ROWS = [(g, g, "librosa-bands") for g in GROUPS] + [
    ("overall KD/SD/HH (pooled micro F)", "KD/SD/HH", "librosa-bands"),
    ("mean-of-class F, KD/SD/HH", "mean3", "librosa-bands"),
    ("mean-of-class F, 5 classes", "mean5", "librosa-bands"),
    ("any drum (librosa: onset_detect, whole signal)", "ANY", "librosa-onset"),
    ("any drum (librosa: onset_detect on HPSS percussive)", "ANY", "librosa-bands"),
]


def _cell(scores: dict | None, key: str, n_ref: dict) -> tuple[str, float | None]:
    if scores is None:
        return "n/a", None
    micro = scores["micro"]
    if key in ("mean3", "mean5"):
        f = mean_of_class(micro, TRIO if key == "mean3" else GROUPS, n_ref)
        return ("-", None) if f is None else (f"{f:.3f}", f)
    if key not in micro:
        return "-", None
    if key in n_ref and n_ref[key] == 0:  # nothing to find: F is undefined, say how many were invented
        return f"no ref ({micro[key]['counts'][1]} estimated)", None
    f, p, r = micro[key]["fpr"]
    return f"{f:.3f} ({p:.2f}/{r:.2f})", f


PER_FILE = [
    ("reascribe", TRIO, "KD/SD/HH"),
    ("librosa-bands", TRIO, "KD/SD/HH"),
    ("reascribe", ("ANY",), "any"),
    ("librosa-onset", ("ANY",), "any"),
]


def print_dataset(ds: dict, scored: dict, seconds: float) -> None:
    files, n_ref = ds["files"], scored["n_ref"]
    extra = ""
    if ds["name"] == "MDB mixes":
        n_mix = sum(f.stem.endswith("_MIX") for f in files)
        extra = f": {n_mix} official mixes (_MIX), {len(files) - n_mix} plain multitrack sums (_RAWSUM)"
    print(f"\n### {ds['name']} ({ds['label']}), {len(files)} files{extra}, {seconds:.1f} s of audio\n")
    if n_ref["OT"]:
        print(f"MDB class OT (side stick, tambourine): {n_ref['OT']} onsets, in 'any drum' only.\n")
    print("| class | ref onsets | reascribe F (P/R) | librosa F (P/R) | ratio |\n|---|---|---|---|---|")
    systems = scored["systems"]
    for label, key, baseline in ROWS:
        ours, ours_f = _cell(systems.get("reascribe"), key, n_ref)
        base, base_f = _cell(systems.get(baseline), key, n_ref)
        ratio = f"{ours_f / base_f:.2f}" if ours_f is not None and base_f else "-"
        refs = n_ref.get(key, sum(n_ref[g] for g in TRIO) if key == "KD/SD/HH" else "")
        print(f"| {label} | {refs} | {ours} | {base} | {ratio} |")
    print("\nlibrosa: class rows are baseline B (HPSS + bands); any-drum rows say which.")
    print("\n| file | " + " | ".join(f"{sys_} {label} F" for sys_, _, label in PER_FILE) + " |")
    print("|---|" + "---|" * len(PER_FILE))
    for f in files:
        cells = []
        for system, groups, _ in PER_FILE:
            counts = systems.get(system, {}).get("per_file", {}).get(f.name)
            cells.append(f"{prf(*np.sum([counts[g] for g in groups], axis=0))[0]:.3f}" if counts else "n/a")
        print(f"| {f.name} | " + " | ".join(cells) + " |")


def speed(run: dict) -> dict:
    wall, audio = np.sum(list(run["seconds"].values()), axis=0)
    return {"audio_s": audio, "wall_s": wall, "cpu_s": run["cpu_s"], "rtf": wall / audio, "peak_mb": run["peak_mb"]}


def print_speed(runs: dict, report: dict) -> None:
    print("\n### Speed (transcription only; loading and a 3 s warm-up not timed)\n")
    print("| system | audio s | processing s | CPU s | x real time | RTF | peak memory MB |")
    print("|---|---|---|---|---|---|---|")
    for system, run in runs.items():
        if not run["available"]:
            report[system] = {"available": False, "reason": run["reason"]}
            print(f"| {system} | not available | | | | | |")
            continue
        s = report[system] = speed(run)
        print(
            f"| {system} | {s['audio_s']:.1f} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {1 / s['rtf']:.1f} "
            f"| {s['rtf']:.4f} | {s['peak_mb']:.0f} |"
        )


def print_alignment(files: list[Path]) -> dict:
    lags = {f.name: gmd_alignment(f) for f in files}
    cells = [f"{name.removesuffix('_MIX.flac')} {lag * 1e3:+.1f} ms (n={n})" for name, (lag, n) in lags.items()]
    print("\nMIDI-audio alignment, median lag of isolated kick/snare attacks after note-on: " + ", ".join(cells))
    return lags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="first 2 files of each dataset")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(*args.child)
        return 0

    sets = datasets(args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        all_files = [str(f) for ds in sets for f in ds["files"]]
        runs = {s: run_system(s, all_files, Path(tmp)) for s in args.systems.split(",")}
    for run in runs.values():
        if not run["available"]:
            print(f"**{run['reason']}**")

    report: dict = {"window_s": WINDOW_S, "merge_s": MERGE_S, "datasets": {}, "speed": {}}
    for ds in sets:
        scored = score_dataset(ds["files"], runs)
        print_dataset(ds, scored, sum(sf.info(str(f)).duration for f in ds["files"]))
        entry = report["datasets"][ds["name"]] = {"label": ds["label"], "files": [f.name for f in ds["files"]]}
        entry.update(scored)
        if ds["name"] == "StemGMD mixes":
            entry["alignment_lag_s"] = print_alignment(ds["files"])
    print_speed(runs, report["speed"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
