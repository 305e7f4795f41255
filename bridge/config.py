"""Daemon configuration: defaults, a TOML file, then command-line flags, in that order of precedence."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from reascribe.errors import RequestError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_OSC_PORT = 9410


def user_dir() -> Path:
    """Per-user folder for the spool, the config file and logs."""
    appdata = os.environ.get("APPDATA")
    if sys.platform == "win32" and appdata:
        return Path(appdata) / "reascribe"
    return Path.home() / ".reascribe"


def default_spool_dir() -> Path:
    env = os.environ.get("REASCRIBE_SPOOL")
    return Path(env) if env else user_dir() / "spool"


def default_config_file() -> Path:
    return user_dir() / "config.toml"


@dataclass
class Config:
    spool_dir: Path = field(default_factory=default_spool_dir)
    drop_dirs: list[Path] = field(default_factory=list)
    drop_out_dir: Path | None = None
    allowed_roots: list[Path] = field(default_factory=list)
    osc_host: str = "127.0.0.1"
    osc_port: int = DEFAULT_OSC_PORT
    reaper_osc: str | None = None  # "host:port" of REAPER's OSC surface, to apply results at once
    torch_threads: int | None = None
    max_attempts: int = 3
    log_file: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None, **overrides: object) -> "Config":
        """Read ``path`` (or the default config file when it exists), then apply non-None overrides."""
        values: dict[str, object] = {}
        file = path or default_config_file()
        if path is not None and not file.is_file():
            raise RequestError(f"The config file {file} does not exist.")
        if file.is_file():
            try:
                values.update(tomllib.loads(file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise RequestError(f"The config file {file} cannot be read: {exc}.") from None
        values.update({k: v for k, v in overrides.items() if v is not None and v != []})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RequestError(f"Unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(sorted(known))}.")
        return cls(**_typed(values))


def _typed(values: dict[str, object]) -> dict[str, object]:
    out = dict(values)
    for key in ("spool_dir", "drop_out_dir", "log_file", "reaper_osc", "osc_host"):
        if out.get(key) is not None and not isinstance(out[key], (str, os.PathLike)):
            raise RequestError(f"The setting '{key}' must be text, not {out[key]!r}.")
    for key in ("spool_dir", "drop_out_dir", "log_file"):
        if out.get(key) is not None:
            out[key] = Path(os.path.expanduser(str(out[key]))).resolve()
    for key in ("drop_dirs", "allowed_roots"):
        if key in out:
            if not isinstance(out[key], list):
                raise RequestError(f"The setting '{key}' must be a list of folders.")
            out[key] = [Path(os.path.expanduser(str(p))).resolve() for p in out[key]]
    for key, low, high in (("osc_port", 1, 65535), ("max_attempts", 1, 100), ("torch_threads", 1, 1024)):
        value = out.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise RequestError(f"The setting '{key}' must be a whole number from {low} to {high}, not {value!r}.")
    return out
