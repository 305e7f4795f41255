"""Separation benchmark: SDR per stem, drum transcription from mixes with and without separation, speed.

Data (../shared/data, EVAL ONLY: never train, tune or choose parameters on it):
  MedleyDB      2 real multitrack songs. The input is ``mixture_sum_of_stems.flac`` (= scale x the sum
                of the stems; scale Rock 0.816, Reggae 1.0, per shared/data/README.md), so the true
                stems are exact; outputs are divided by the scale before scoring. References: "drums"
                = the drum set stem, "rest" = the sum of every other stem (bass, guitars, voice).
  StemGMD       2 grooves x 5 sampled acoustic kits (rendered from real performances, MP3): the mix is
                only drums, so HPSS's drum stem is scored against the whole kit; per kit part, the
                share of its energy that HPSS puts in each stem when the part is separated alone.
  MDB drums     9 real songs (MDB Drums annotations): drum onsets transcribed from the clean drum
                stem, from the full mix, and from the mix's hpss drum stem, side by side. With hpss,
                transcription from a mix (Transcribe from mix, --separate) hears the full mix: the
                percussive stem cost the drum model hits on held-out renders (separation.hears_mix).

SDR = 10 log10(|s|^2 / |s - s_hat|^2), s the reference and s_hat the estimate, both channels:
"whole" over the whole track, "median" = the median over 1 s windows whose reference is not silent
(below -60 dBFS RMS). This is the plain SDR, not BSS Eval's (no distortion filter allowed), so it is
stricter than museval's figures. "mix as estimate" is the floor a separator must beat.
Onset scoring is bench/drums.py's (mir_eval matching, 50 ms, 20 ms merging), imported from it.
Each backend runs in its own process; RTF = separation seconds / audio seconds, peak memory = that
process's max RSS (decoding and the first call's warm-up included in the memory, not in the time).
Usage: python bench/separate.py [--backends hpss,demucs] [--json OUT]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import drums as drum_bench  # bench/drums.py: truth and onset scoring

SEP = ROOT.parent / "shared" / "data" / "separation"
MEDLEY_SCALE = {"MusicDelta_Rock": 0.816, "MusicDelta_Reggae": 1.0}
KIT_PARTS = ("KICK", "SNARE", "TOMS", "HIHAT", "CYMBALS")
WINDOW_S, SILENT_DBFS = 1.0, -60.0
PART_SECONDS = 10.0  # kit parts are separated alone over their first 10 s (enough hits, bounded time)


def sdr(reference: np.ndarray, estimate: np.ndarray, rate: int) -> tuple[float, float]:
    """(whole-track SDR, median of 1 s window SDRs over windows where the reference sounds), in dB."""
    n = min(len(reference), len(estimate))
    s, e = reference[:n].astype(np.float64), estimate[:n].astype(np.float64)

    def one(a, b):
        return 10 * np.log10((np.sum(a**2) + 1e-12) / (np.sum((a - b) ** 2) + 1e-12))

    w = int(WINDOW_S * rate)
    windows = [(s[i : i + w], e[i : i + w]) for i in range(0, n - w + 1, w)]
    floor = 10 ** (SILENT_DBFS / 20)
    scores = [one(a, b) for a, b in windows if np.sqrt(np.mean(a**2)) > floor]
    return float(one(s, e)), float(np.median(scores)) if scores else float("nan")


def read(path: Path, rate: int) -> np.ndarray:
    from reascribe.audio import load_section

    return load_section(path, sample_rate=rate).samples


# ---------------------------------------------------------------- one backend, in a child process


def child_main(backend: str, out_json: str) -> None:
    from reascribe import separation
    from reascribe.pipelines import no_progress

    result: dict = {"backend": backend, "available": True, "sdr": {}, "gmd": {}, "parts": {}, "seconds": [0.0, 0.0]}
    try:
        separator = separation.create(backend)
        separator.load()
        rate = separator.sample_rate
        separator.separate(np.zeros((rate, 2), np.float32), no_progress)  # warm-up, untimed

        def run(samples):
            t0 = time.perf_counter()
            stems = separator.separate(samples, no_progress)
            result["seconds"][0] += time.perf_counter() - t0
            result["seconds"][1] += len(samples) / rate
            return stems

        drum_stem = "drums"  # every backend makes one; what the drum transcriber hears is stem_for's choice
        for song, scale in MEDLEY_SCALE.items():
            folder = SEP / "medleydb" / song
            stems = {k: v / scale for k, v in run(read(folder / "mixture_sum_of_stems.flac", rate)).items()}
            true = {p.stem: read(p, rate) for p in sorted((folder / "stems").glob("*.flac"))}
            ref_drums = sum(v for k, v in true.items() if "drum" in k)
            ref_rest = sum(v for k, v in true.items() if "drum" not in k)
            mix = ref_drums + ref_rest
            est_rest = sum(v for k, v in stems.items() if k != drum_stem)
            rows = {"drums: mix as estimate": sdr(ref_drums, mix, rate), f"drums: {drum_stem} stem": sdr(ref_drums, stems[drum_stem], rate),
                    "rest: mix as estimate": sdr(ref_rest, mix, rate), "rest: all other stems": sdr(ref_rest, est_rest, rate)}
            if "harmonic" in stems:
                rows["rest: harmonic stem alone"] = sdr(ref_rest, stems["harmonic"], rate)
            result["sdr"][song] = rows
        for mix_path in sorted((SEP / "stemgmd").glob("*/*/*_MIX.mp3")):
            kit = f"{mix_path.parent.parent.name[:2]}{mix_path.parent.name}"
            mix = read(mix_path, rate)
            stems = run(mix)
            energy = {k: float(np.sum(v.astype(np.float64) ** 2)) for k, v in stems.items()}
            total = sum(energy.values())
            result["gmd"][kit] = {"sdr": sdr(mix, stems[drum_stem], rate), "share": {k: e / total for k, e in energy.items()}}
            for part in KIT_PARTS:
                alone = read(mix_path.with_name(mix_path.name.replace("_MIX", f"_{part}_true")), rate)[: int(PART_SECONDS * rate)]
                if np.sum(alone**2) < 1e-6:
                    continue  # the part does not play in this groove
                part_stems = separator.separate(alone, no_progress)
                e = {k: float(np.sum(v.astype(np.float64) ** 2)) for k, v in part_stems.items()}
                result["parts"].setdefault(part, []).append({k: v / sum(e.values()) for k, v in e.items()})
    except Exception as exc:  # noqa: BLE001 - an unavailable backend is a row in the table, not a crash
        result.update(available=False, reason=f"{type(exc).__name__}: {exc}")
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out_json).write_text(json.dumps(result))


def transcription_child(out_json: str) -> None:
    """Drum onsets per MDB song: clean stem, full mix, mix's hpss drum stem (reascribe's model if present,
    and librosa onset_detect as a model-free reference that always runs)."""
    import librosa
    from reascribe import separation
    from reascribe.audio import AudioSection, load_section
    from reascribe.pipelines import no_progress

    result: dict = {"files": {}, "systems": {}}
    systems = {}
    try:
        _, _, transcribe = drum_bench._load_reascribe()
        systems["reascribe"] = transcribe
    except drum_bench.Unavailable as exc:
        result["systems"]["reascribe"] = str(exc)

    def onsets(section):
        y = section.samples.mean(axis=1)
        if section.sample_rate != drum_bench.SR:
            import soxr

            y = soxr.resample(y, section.sample_rate, drum_bench.SR)
        return {"ANY": librosa.onset.onset_detect(y=y, sr=drum_bench.SR, hop_length=drum_bench.HOP, units="time").tolist()}

    systems["librosa-onset"] = onsets
    separator = separation.create("hpss")
    for mix in sorted((drum_bench.MDB / "audio_mix").glob("*.flac")):
        song = mix.stem.rsplit("_", 1)[0]
        mix_section = load_section(mix, sample_rate=separator.sample_rate)
        stem = separator.separate(mix_section.samples, no_progress)["drums"]
        inputs = {
            "clean drum stem": load_section(drum_bench.MDB / "audio_drum_only" / f"{song}_Drum.flac", sample_rate=separator.sample_rate),
            "full mix": mix_section,
            "mix, hpss drums": AudioSection(stem, mix_section.sample_rate, 0.0),
        }
        result["files"][mix.name] = {s: {k: f(v) for k, v in inputs.items()} for s, f in systems.items()}
    Path(out_json).write_text(json.dumps(result))


def child(args: list[str], tmp: Path, name: str) -> dict:
    out = tmp / f"{name}.json"
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args, str(out)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0 or not out.exists():
        return {"available": False, "reason": f"process exited {proc.returncode}: {proc.stderr[-500:]}"}
    return json.loads(out.read_text())


# ---------------------------------------------------------------- tables


def print_backend(run: dict) -> None:
    name = run.get("backend", "?")
    if not run["available"]:
        print(f"\n**{name}: not available: {run['reason']}**")
        return
    print(f"\n### {name}: MedleyDB (real multitracks), SDR dB whole / median of 1 s windows\n")
    print("| song | reference: estimate | SDR whole | SDR median |\n|---|---|---|---|")
    for song, rows in run["sdr"].items():
        for label, (whole, median) in rows.items():
            print(f"| {song} | {label} | {whole:.2f} | {median:.2f} |")
    print(f"\n### {name}: StemGMD (rendered from real performances, drums only)\n")
    print("| groove/kit | drum stem vs whole kit SDR whole / median | energy share per stem |\n|---|---|---|")
    for kit, row in run["gmd"].items():
        share = ", ".join(f"{k} {v:.0%}" for k, v in row["share"].items())
        print(f"| {kit} | {row['sdr'][0]:.2f} / {row['sdr'][1]:.2f} | {share} |")
    if run["parts"]:
        print(f"\nKit parts separated alone (first {PART_SECONDS:g} s), mean energy share per stem over the kits:\n")
        stems = list(next(iter(run["parts"].values()))[0])
        print("| part | kits | " + " | ".join(stems) + " |\n|---|---|" + "---|" * len(stems))
        for part, shares in run["parts"].items():
            print(f"| {part} | {len(shares)} | " + " | ".join(f"{np.mean([s[k] for s in shares]):.0%}" for k in stems) + " |")
        silent = [p for p in KIT_PARTS if p not in run["parts"]]
        if silent:
            print(f"\n{', '.join(silent)}: silent in every groove here, left out.")


def print_transcription(run: dict) -> dict:
    if not run.get("files"):
        print(f"\n**drum transcription not run: {run.get('reason')}**")
        return {}
    for system, reason in run["systems"].items():
        print(f"\n**{reason}**")
    inputs = ("clean drum stem", "full mix", "mix, hpss drums")
    files = [drum_bench.MDB / "audio_mix" / name for name in run["files"]]
    truths = {f.name: drum_bench.truth_for(f) for f in files}
    systems = next(iter(run["files"].values())).keys()
    report = {}
    print("\n### MDB drums (real audio, 9 songs): onset F (P/R), micro over files, 50 ms\n")
    print("| system | class | " + " | ".join(inputs) + " |\n|---|---|" + "---|" * len(inputs))
    for system in systems:
        groups = ("KD", "SD", "HH", "KD/SD/HH", "ANY") if system == "reascribe" else ("ANY",)
        for group in groups:
            cells = []
            for source in inputs:
                parts = drum_bench.TRIO if group == "KD/SD/HH" else (group,)
                counts = np.sum([drum_bench.score_onsets(truths[f][g], drum_bench.merge_onsets(run["files"][f][system][source].get(g, [])))
                                 for f in truths for g in parts], axis=0)
                f_, p, r = drum_bench.prf(*counts)
                report[f"{system} {group} {source}"] = f_
                cells.append(f"{f_:.3f} ({p:.2f}/{r:.2f})")
            print(f"| {system} | {group} | " + " | ".join(cells) + " |")
    print("\nTranscribe from mix with hpss gives the drum model the full mix (separation.hears_mix): its column "
          "is what users get.")
    return report


def print_speed(runs: dict) -> None:
    print("\n### Speed (separation only; the warm-up call not timed)\n")
    print("| backend | audio s | separation s | RTF | x real time | peak memory MB |\n|---|---|---|---|---|---|")
    for name, run in runs.items():
        if not run["available"]:
            print(f"| {name} | not available | | | | |")
            continue
        wall, audio = run["seconds"]
        print(f"| {name} | {audio:.1f} | {wall:.2f} | {wall / audio:.3f} | {audio / wall:.1f} | {run['peak_mb']:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="hpss,demucs")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "transcription":
            transcription_child(args.child[1])
        else:
            child_main(*args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        runs = {b: child([b], Path(tmp), b) for b in args.backends.split(",")}
        for name, run in runs.items():
            run.setdefault("backend", name)
        transcription = child(["transcription"], Path(tmp), "transcription")
    for run in runs.values():
        print_backend(run)
    f_scores = print_transcription(transcription)
    print_speed(runs)
    if args.json:
        args.json.write_text(json.dumps({"backends": runs, "transcription_f": f_scores}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
