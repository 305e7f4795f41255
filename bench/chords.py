"""Chord recognition benchmark: reascribe's chord model against Chordino, side by side, one run.

Data (never trained on):
  GuitarSet (real)     ../shared/data/chords: one real acoustic-guitar comping clip (22 s, CC BY 4.0,
                       EVAL ONLY), scored against both of its label files: "instructed" (the lead sheet)
                       and "performed" (what the player actually played, with extensions and inversions).
  POP909 held out      POP909 songs whose number ends in 0 (never read by training), whole songs rendered
  (synthetic)          with MuseScore General and the odd General MIDI programs (training used FluidR3 and
                       TimGM6mb, even programs: training/chords_data.py SET_A / SET_B), with a bass line on
                       the labelled bass notes and, for about half, Groove MIDI drums; no transposition,
                       no augmentation. Truth: the song's chord_midi.txt.

Scoring: mir_eval.chord (root, majmin, majmin_inv, sevenths, sevenths_inv), weighted by duration; the
estimate is trimmed/padded with N to the truth's span; a dataset figure pools the seconds of all its files.

Systems, each in its own process over all files (peak memory = that process's max RSS): audio loading
and one warm-up call on 5 s of audio are not timed; RTF = processing s / audio s, x real time = 1 / RTF.
  reascribe   ChordTranscriber (CQT + ChordNet + HMM), 2 torch threads;
  chordino    Chordino (NNLS chroma + HMM) through the chord-extractor package, default settings.
Chordino is GPL and only a baseline: install it into the venv for the benchmark alone,
  .venv/bin/pip install --no-build-isolation vamp==1.1.0 && .venv/bin/pip install chord-extractor==0.1.3
Usage: python bench/chords.py [--songs N] [--json OUT]   (needs pyfluidsynth and the soundfonts to render)
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mir_eval
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # training/ (the renderer of the held-out songs) is not installed
GUITARSET = ROOT.parent / "shared" / "data" / "chords"
GUITAR_CLIP = "00_BN1-129-Eb_comp"
METRICS = ("root", "majmin", "majmin_inv", "sevenths", "sevenths_inv")
SYSTEMS = ("reascribe", "chordino")
RATE = 22050
WARMUP_S = 5.0
SEED = 909
INSTALL_CHORDINO = ".venv/bin/pip install --no-build-isolation vamp==1.1.0 && .venv/bin/pip install chord-extractor==0.1.3"

# ---------------------------------------------------------------- scoring (imported by tests)

CHORDINO_QUALITY = {"": "maj", "m": "min", "7": "7", "maj7": "maj7", "m7": "min7", "dim": "dim", "aug": "aug",
                    "6": "maj6", "m6": "min6", "dim7": "dim7", "m7b5": "hdim7", "sus4": "sus4", "sus2": "sus2"}  # fmt: skip
CHORDINO_LABEL = re.compile(r"^([A-G][b#]?)([^/]*)(?:/([A-G][b#]?))?$")
DEGREE = {0: "1", 1: "b2", 2: "2", 3: "b3", 4: "3", 5: "4", 6: "b5", 7: "5", 8: "b6", 9: "6", 10: "b7", 11: "7"}


def chordino_to_harte(label: str) -> str:
    """Chordino's "Ebmaj7", "Bb6", "D/F#" as Harte ("Eb:maj7", "Bb:maj6", "D:maj/3"); "X" if unknown."""
    if label == "N":
        return "N"
    m = CHORDINO_LABEL.match(label)
    if not m or m.group(2) not in CHORDINO_QUALITY:
        return "X"
    root, quality, bass = m.groups()
    harte = f"{root}:{CHORDINO_QUALITY[quality]}"
    if bass:
        interval = (mir_eval.chord.pitch_class_to_semitone(bass) - mir_eval.chord.pitch_class_to_semitone(root)) % 12
        harte += "/" + DEGREE[interval]
    return harte


def changes_to_segments(changes: list[tuple[float, str]], end_s: float) -> tuple[np.ndarray, list[str]]:
    """Chord changes (time_s, label) as intervals up to ``end_s``, N before the first change."""
    times = [0.0] + [t for t, _ in changes] + [end_s]
    labels = ["N"] + [label for _, label in changes]
    keep = [i for i in range(len(labels)) if times[i + 1] > times[i]]
    return np.array([[times[i], times[i + 1]] for i in keep]), [labels[i] for i in keep]


def comparisons(ref_int, ref_lab, est_int, est_lab) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-segment mir_eval comparisons (-1 = not scored) and the segments' durations."""
    est_int, est_lab = mir_eval.util.adjust_intervals(np.asarray(est_int), list(est_lab), ref_int.min(), ref_int.max(),
                                                      mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD)  # fmt: skip
    merged, ref_l, est_l = mir_eval.util.merge_labeled_intervals(ref_int, ref_lab, est_int, est_lab)
    durations = mir_eval.util.intervals_to_durations(merged)
    return {m: np.asarray(getattr(mir_eval.chord, m)(ref_l, est_l), float) for m in METRICS}, durations


def pooled(parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> dict[str, float]:
    """Duration-weighted scores over all files' segments together."""
    return {m: float(mir_eval.chord.weighted_accuracy(np.concatenate([c[m] for c, _ in parts]),
                                                      np.concatenate([d for _, d in parts]))) for m in METRICS}  # fmt: skip


# ---------------------------------------------------------------- material


def render_heldout(songs: list[int], folder: Path) -> list[dict]:
    from training import chords_data

    files = []
    for n in songs:
        rng = np.random.default_rng([SEED, n])
        events, presets, duration, _, _ = chords_data.pop909_example(n, rng, chords_data.SET_B, transpose=False,
                                                                     excerpt_s=None)  # fmt: skip
        audio = chords_data.render(events, presets, duration, rng, augmented=False)
        path = folder / f"pop909_{n:03d}.wav"
        sf.write(path, audio, RATE)
        files.append({"audio": str(path), "refs": {"": str(chords_data.POP909 / f"{n:03d}" / "chord_midi.txt")}})
    return files


def heldout_songs(count: int) -> list[int]:
    from training.chords_data import songs

    test = songs("test")
    return test[:: max(1, len(test) // count)][:count]


# ---------------------------------------------------------------- systems (child processes)


def _load(system: str):
    if system == "reascribe":
        from reascribe.models.chords.transcriber import ChordTranscriber

        model = ChordTranscriber(num_threads=2)
        return lambda audio: [(s.start_s, s.label) for s in model.transcribe(audio, lambda f, m: None).segments]
    import vamp  # chord-extractor's own call, on audio we already hold
    from chord_extractor.extractors import Chordino

    params = Chordino()._params
    return lambda audio: [(float(c["timestamp"]), chordino_to_harte(c["label"]))
                          for c in vamp.collect(audio, RATE, "nnls-chroma:chordino", parameters=params)["list"]]  # fmt: skip


def child_main(system: str, files_json: str, out_json: str) -> None:
    transcribe = _load(system)
    transcribe(np.zeros(int(WARMUP_S * RATE), np.float32) + 1e-4 * np.sin(np.arange(int(WARMUP_S * RATE)) * 0.05))
    out = {"files": {}, "seconds": 0.0, "audio_s": 0.0}
    for path in json.loads(files_json):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(axis=1)
        assert rate == RATE, (path, rate)
        start = time.perf_counter()
        changes = transcribe(audio)
        out["seconds"] += time.perf_counter() - start
        out["audio_s"] += len(audio) / RATE
        out["files"][path] = changes
    out["peak_mb"] = peak_rss_mb()
    Path(out_json).write_text(json.dumps(out))


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss would include
    the parent's peak (which holds the decoded soundfonts), so it is only the fallback."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_system(system: str, files: list[str], tmp: Path) -> dict:
    out = tmp / f"{system}.json"
    cmd = [sys.executable, __file__, "--child", system, json.dumps(files), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode:
        raise SystemExit(f"{system} failed:\n{proc.stderr[-2000:]}")
    return json.loads(out.read_text())


# ---------------------------------------------------------------- report


def score(files: list[dict], runs: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{reference set: {system: scores}} pooled over the files."""
    report: dict[str, dict[str, dict[str, float]]] = {}
    for ref_name in files[0]["refs"]:
        for system, run in runs.items():
            parts = []
            for f in files:
                ref_int, ref_lab = mir_eval.io.load_labeled_intervals(f["refs"][ref_name])
                duration = sf.info(f["audio"]).duration
                est_int, est_lab = changes_to_segments(run["files"][f["audio"]], duration)
                parts.append(comparisons(ref_int, ref_lab, est_int, est_lab))
            report.setdefault(ref_name, {})[system] = pooled(parts)
    return report


def print_table(title: str, report: dict) -> None:
    print(f"\n### {title}\n")
    print("| truth | system | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for ref_name, systems in report.items():
        for system, scores in systems.items():
            print(f"| {ref_name or 'chord_midi.txt'} | {system} | " + " | ".join(f"{scores[m]:.3f}" for m in METRICS) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=12, help="held-out POP909 songs to render (default 12)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        import chord_extractor
    except ImportError:
        print(f"Chordino is not installed; for the benchmark only: {INSTALL_CHORDINO}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        guitar = tmp / f"{GUITAR_CLIP}.wav"
        import librosa

        sf.write(guitar, librosa.load(GUITARSET / "guitarset_audio" / f"{GUITAR_CLIP}_mic.flac", sr=RATE)[0], RATE)
        labs = GUITARSET / "guitarset_lab"
        real = [{"audio": str(guitar), "refs": {"instructed": str(labs / f"{GUITAR_CLIP}.chord1_instructed.lab"),
                                                 "performed": str(labs / f"{GUITAR_CLIP}.chord2_performed.lab")}}]  # fmt: skip
        songs = heldout_songs(args.songs)
        synthetic = render_heldout(songs, tmp)
        paths = [f["audio"] for f in real + synthetic]
        runs = {system: run_system(system, paths, tmp) for system in SYSTEMS}
        synthetic_s = sum(sf.info(f["audio"]).duration for f in synthetic)
        results = {"real": score(real, runs), "synthetic": score(synthetic, runs), "songs": songs, "synthetic_s": synthetic_s,
                   "speed": {s: {"x_real_time": r["audio_s"] / r["seconds"], "rtf": r["seconds"] / r["audio_s"],
                                 "peak_mb": r["peak_mb"], "audio_s": r["audio_s"]} for s, r in runs.items()}}  # fmt: skip
    print_table(f"Real audio: GuitarSet {GUITAR_CLIP} (22 s, acoustic guitar)", results["real"])
    print_table(f"Synthetic: {len(songs)} held-out POP909 songs rendered with unseen instruments "
                f"({results['synthetic_s']:.0f} s; songs {', '.join(f'{n:03d}' for n in songs)})",
                results["synthetic"])  # fmt: skip
    print("\n### Speed (2 CPU cores; model load and a warm-up call not timed)\n")
    print("| system | x real time | RTF | peak RSS MB |\n|---|---|---|---|")
    for system, s in results["speed"].items():
        print(f"| {system} | {s['x_real_time']:.0f} | {s['rtf']:.4f} | {s['peak_mb']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:])
    else:
        sys.exit(main())
