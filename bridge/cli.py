"""The `reascribe` command: transcribe files, run the daemon, check it, install the REAPER scripts, demo.

Only this module prints and chooses exit codes: 0 on success, 1 with one line on stderr for anything
the user can fix, 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from reascribe import __version__
from reascribe.errors import ReascribeError
from reascribe.protocol import KINDS


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
    p.add_argument("--out", type=Path, required=True, help="the MIDI file to write")
    p.add_argument("--pedal-extend", action="store_true", help="hold notes while the sustain pedal is down")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_transcribe)

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

    options = {"pedal_extend": True} if args.pedal_extend else {}
    out = transcribe_file(
        args.audio, args.kind, args.out, options, overwrite=args.force, threads=args.threads, show_progress=not args.quiet
    )
    print(out)
    return 0


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
