"""One-shot transcription of an audio file for the command line, with a terminal progress bar."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reascribe import audio, pipelines
from reascribe.errors import RequestError
from reascribe.execute import execute_file


def transcribe_file(
    audio_path: Path,
    kind: str,
    out_path: Path,
    options: dict[str, Any],
    *,
    overwrite: bool = False,
    threads: int | None = None,
    show_progress: bool = True,
) -> Path:
    """Write the MIDI of ``audio_path`` to ``out_path``; an existing file is only replaced if ``overwrite``."""
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise RequestError(f"{out_path} already exists; choose another name or pass --force to replace it.")
    if not out_path.parent.is_dir():
        raise RequestError(f"The folder {out_path.parent} does not exist.")
    audio.probe(Path(audio_path))  # fail on a bad file before the model loads
    pipeline = pipelines.create(kind, num_threads=None if threads is None else max(1, threads))
    with tqdm(total=100, unit="%", desc=f"{kind} {Path(audio_path).name}", disable=not show_progress) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(round(fraction * 100) - bar.n)

        progress(0.0, "loading the model")
        pipeline.load()
        # Write beside the target and rename, so a failed run never leaves a half-written OUT.
        fd, tmp_name = tempfile.mkstemp(suffix=".mid", dir=out_path.parent, prefix=".reascribe-")
        os.close(fd)
        os.unlink(tmp_name)
        try:
            written = execute_file(Path(audio_path), kind, Path(tmp_name), pipeline, progress, options)
            if overwrite:
                os.replace(written, out_path)
            else:
                os.link(written, out_path)  # fails instead of replacing a file created meanwhile
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        progress(1.0, "done")
    return out_path
