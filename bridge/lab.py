"""Chord segments as a MIREX ``.lab`` file: one ``start end label`` line per segment, Harte labels."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reascribe.events import ChordSegment


def lab_text(segments: list[ChordSegment]) -> str:
    return "".join(f"{s.start_s:.3f}\t{s.end_s:.3f}\t{s.label}\n" for s in segments)


def write_lab(path: str | os.PathLike, segments: list[ChordSegment]) -> Path:
    """Write ``segments`` to a new file at ``path``, complete or not at all; raises FileExistsError rather
    than replace a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(lab_text(segments))
        try:
            os.link(tmp, path)  # atomic, and refuses an existing name
        except FileExistsError:
            raise
        except OSError:  # file systems without hard links
            with open(path, "x", encoding="utf-8", newline="\n") as out:
                out.write(lab_text(segments))
    finally:
        os.unlink(tmp)
    return path
