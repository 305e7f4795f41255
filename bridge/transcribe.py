"""One-shot transcription of an audio file for the command line, with a terminal progress bar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reascribe import audio, midi_out, pipelines
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
    # With --force, write beside OUT and rename over it, so a failed run never leaves OUT half-written.
    target = midi_out.unique_path(out_path.with_name(f".{out_path.name}.reascribe")) if overwrite else out_path
    with tqdm(total=100, unit="%", desc=f"{kind} {Path(audio_path).name}", disable=not show_progress) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(round(fraction * 100) - bar.n)

        progress(0.0, "loading the model")
        pipeline.load()
        try:
            execute_file(Path(audio_path), kind, target, pipeline, progress, options)
        except FileExistsError:
            raise RequestError(f"{out_path} was created by something else meanwhile; it was left as it is.") from None
        if target != out_path:
            os.replace(target, out_path)
        progress(1.0, "done")
    return out_path
