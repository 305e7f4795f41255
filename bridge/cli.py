"""The `reascribe` command: transcribe and separate files, fill gaps in MIDI, answer live (session), run the
daemon, check it, install the REAPER scripts, demo.

Only this module prints and chooses exit codes: 0 on success, 1 with one line on stderr for anything
the user can fix, 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from reascribe import __version__
from reascribe.errors import ReascribeError, RequestError
from reascribe.protocol import KINDS
from reascribe.separation import BACKENDS, DEFAULT_BACKEND


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    level = args.log_level or ("info" if args.command == "daemon" else "warning")
    logging.basicConfig(level=getattr(logging, level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ReascribeError as exc:
        print(f"reascribe: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no: a folder that cannot be written, a full disk
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"reascribe: {exc.strerror or exc}{where}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reascribe: interrupted.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reascribe", description="Transcribe audio to MIDI for REAPER.")
    parser.add_argument("--version", action="version", version=f"reascribe {__version__}")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default: info for the daemon, else warning"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe an audio file into a MIDI file")
    p.add_argument("audio", type=Path)
    p.add_argument("--kind", choices=KINDS, default="piano")
    p.add_argument("--out", type=Path, required=True, help="the MIDI file to write (chords: also OUT with .lab)")
    p.add_argument("--pedal-extend", action="store_true", help="piano: hold notes while the sustain pedal is down")
    p.add_argument("--note-length", type=float, metavar="SECONDS", help="drums: length of each note (default 0.1)")
    p.add_argument("--note-map", action="append", metavar="DRUM=NOTE",
                   help="drums: the MIDI note of a drum, e.g. kick=35 (repeatable; default General MIDI)")
    p.add_argument("--channel", type=int, help="drums, chords: MIDI channel 1-16 (default 10 for drums, 1 for chords)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--separate", nargs="?", const=DEFAULT_BACKEND, choices=BACKENDS, metavar="BACKEND",
                   help="separate first and transcribe what the kind hears best (piano: the harmonic stem; drums: "
                        "demucs's drum stem, or the whole mix with hpss, whose percussive stem costs the drum "
                        f"model hits); BACKEND is one of {', '.join(BACKENDS)} (default {DEFAULT_BACKEND})")
    p.set_defaults(func=_transcribe)

    p = sub.add_parser("separate", help="split an audio file into stems (one WAV per stem)")
    p.add_argument("audio", type=Path)
    p.add_argument("--out", type=Path, required=True, help="the folder for the stems (created if missing)")
    p.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                   help="hpss: drums / harmonic / residual, no weights needed (default); demucs: drums / bass / "
                        "other / vocals, needs the demucs package and its weights")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_separate)

    p = sub.add_parser("generate", help="fill a time range of a MIDI part with new notes (variations as tracks)")
    p.add_argument("--context", type=Path, required=True, help="the MIDI file with the part around the gap")
    p.add_argument("--start", type=float, required=True, metavar="SEC", help="where the gap starts, in seconds")
    p.add_argument("--end", type=float, required=True, metavar="SEC", help="where the gap ends, in seconds")
    p.add_argument("--out", type=Path, required=True, help="the MIDI file to write (never replaced)")
    p.add_argument("--variations", type=_ranged(int, 1, 8), default=3, help="fills to write, one track each (1-8)")
    p.add_argument("--temperature", type=_ranged(float, 0.1, 2.0), default=0.8,
                   help="0.1-2.0: lower is safer, higher is more adventurous (default 0.8)")
    p.add_argument("--density", type=_ranged(float, 0.25, 4.0), default=1.0,
                   help="notes per beat relative to the context: 0.5 sparser, 2 busier (default 1)")
    p.add_argument("--part", choices=("auto", "drums", "melodic"), default="auto",
                   help="auto: drums on channel 10 or kit notes, else melodic (default)")
    p.add_argument("--seed", type=int, help="repeatable results")
    p.set_defaults(func=_generate)

    p = sub.add_parser("session", help="live call and response: answer each phrase played on a MIDI input")
    p.add_argument("--in", dest="in_port", required=True, metavar="PORT", help="MIDI input port name (see --list)")
    p.add_argument("--out", dest="out_port", required=True, metavar="PORT", help="MIDI output port name")
    p.add_argument("--virtual", action="store_true", help="create virtual ports with these names (not on Windows)")
    p.add_argument("--temperature", type=_ranged(float, 0.1, 2.0), default=0.8)
    p.add_argument("--density", type=_ranged(float, 0.25, 4.0), default=1.0)
    p.add_argument("--answer-bars", type=_ranged(int, 1, 8), default=2, help="length of each answer in bars")
    p.set_defaults(func=_session)

    p = sub.add_parser("daemon", help="run the daemon: REAPER requests, drop folders and OSC commands")
    p.add_argument("--config", type=Path, help="TOML config file (default ~/.reascribe/config.toml)")
    p.add_argument("--spool", type=Path, dest="spool_dir")
    p.add_argument("--drop", type=Path, action="append", dest="drop_dirs", help="a folder to watch (repeatable)")
    p.add_argument("--drop-out", type=Path, dest="drop_out_dir", help="where drop-folder MIDI goes")
    p.add_argument("--allowed-root", type=Path, action="append", dest="allowed_roots")
    p.add_argument("--osc-port", type=int)
    p.add_argument("--reaper-osc", help="HOST:PORT of REAPER's OSC surface, to apply results at once")
    p.add_argument("--threads", type=int, dest="torch_threads")
    p.add_argument("--log-file", type=Path)
    p.add_argument("--pipeline-factory", default="reascribe.pipelines:create", help=argparse.SUPPRESS)
    p.set_defaults(func=_daemon)

    p = sub.add_parser("status", help="is the daemon running, and what is it doing")
    p.add_argument("--config", type=Path, help="TOML config file (default ~/.reascribe/config.toml)")
    p.add_argument("--spool", type=Path, dest="spool_dir")
    p.set_defaults(func=_status)

    p = sub.add_parser("install-reaper", help="copy the ReaScripts into REAPER's resource folder")
    p.add_argument("--resource-path", type=Path, help="REAPER's resource folder (Options > Show resource path)")
    p.add_argument("--config", type=Path, help="TOML config file (default ~/.reascribe/config.toml)")
    p.add_argument("--spool", type=Path, dest="spool_dir")
    p.add_argument("--autostart", action="store_true", help="start the bridge when REAPER starts (__startup.lua)")
    p.set_defaults(func=_install_reaper)

    p = sub.add_parser("demo", help="transcribe the bundled piano clip (no REAPER needed)")
    p.add_argument("--out", type=Path, default=Path("reascribe-demo"), help="folder for the demo output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_demo)
    return parser


def _transcribe(args: argparse.Namespace) -> int:
    from reascribe.transcribe import transcribe_file

    out = transcribe_file(
        args.audio,
        args.kind,
        args.out,
        _options(args),
        overwrite=args.force,
        threads=args.threads,
        show_progress=not args.quiet,
        separate=args.separate,
    )
    print(out)
    return 0


def _separate(args: argparse.Namespace) -> int:
    from reascribe.separate import separate_file

    threads = None if args.threads is None else max(1, args.threads)
    for path in separate_file(args.audio, args.out, args.backend, threads=threads, show_progress=not args.quiet):
        print(path)
    return 0


def _options(args: argparse.Namespace) -> dict:
    """The job options the flags set; the protocol checks that they fit the kind."""
    options: dict = {"pedal_extend": True} if args.pedal_extend else {}
    if args.note_length is not None:
        options["note_length"] = args.note_length
    if args.channel is not None:
        options["channel"] = args.channel
    if args.note_map:
        options["note_map"] = {}
        for entry in args.note_map:
            drum, _, note = entry.partition("=")
            if not note.strip().isdigit():
                raise RequestError(f"--note-map {entry!r} must look like DRUM=NOTE, e.g. kick=35.")
            options["note_map"][drum.strip()] = int(note)
    return options


def _ranged(kind: type, low: float, high: float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low}-{high}")
        return value

    return parse


def _generate(args: argparse.Namespace) -> int:
    from reascribe.generate import FillOptions, generate_file

    options = FillOptions(args.variations, args.temperature, args.density, args.part, args.seed)
    print(generate_file(args.context, args.start, args.end, args.out, options))
    return 0


def _session(args: argparse.Namespace) -> int:
    from reascribe.session import run_session

    return run_session(args.in_port, args.out_port, virtual=args.virtual, temperature=args.temperature,
                       density=args.density, answer_bars=args.answer_bars)


def _daemon(args: argparse.Namespace) -> int:
    from reascribe.config import Config
    from reascribe.daemon import Daemon

    fields = ("spool_dir", "drop_dirs", "drop_out_dir", "allowed_roots", "osc_port", "reaper_osc", "torch_threads", "log_file")
    config = Config.load(args.config, **{name: getattr(args, name) for name in fields})
    return Daemon(config, pipeline_factory=args.pipeline_factory).run()


def _spool_dir(args: argparse.Namespace) -> Path:
    """The spool the daemon uses: --spool, else the config file's, else the default."""
    from reascribe.config import Config

    return Config.load(args.config, spool_dir=args.spool_dir).spool_dir


def _status(args: argparse.Namespace) -> int:
    from reascribe.status import describe

    text, running = describe(_spool_dir(args))
    print(text)
    return 0 if running else 1


def _install_reaper(args: argparse.Namespace) -> int:
    from reascribe.reaper_install import install

    print(install(args.resource_path, _spool_dir(args), autostart=args.autostart))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from reascribe.demo import run_demo

    print(run_demo(args.out, show_progress=not args.quiet))
    return 0
