"""One-shot transcription of an audio file for the command line, with a terminal progress bar."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reascribe import audio, midi_out, pipelines, separation
from reascribe.errors import RequestError
from reascribe.execute import LAB_KINDS, execute_file
from reascribe.protocol import validate_options
from reascribe.separation import stem_for
from tqdm import tqdm


def transcribe_file(
    audio_path: Path,
    kind: str,
    out_path: Path,
    options: dict[str, Any],
    *,
    overwrite: bool = False,
    threads: int | None = None,
    show_progress: bool = True,
    separate: str | None = None,
) -> Path:
    """Write the MIDI of ``audio_path`` to ``out_path``; an existing file is only replaced if ``overwrite``.

    Chords also write ``out_path`` with the suffix ``.lab``, under the same rule.
    ``separate``: a separation backend; the pipeline then hears only the stem its kind wants."""
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise RequestError(f"{out_path} already exists; choose another name or pass --force to replace it.")
    lab_out = out_path.with_suffix(".lab") if kind in LAB_KINDS else None
    if lab_out is not None and lab_out.exists() and not overwrite:
        raise RequestError(f"{lab_out} already exists; choose another name or pass --force to replace it.")
    if not out_path.parent.is_dir():
        raise RequestError(f"The folder {out_path.parent} does not exist.")
    options = validate_options(kind, options)  # fail on bad options or a bad file before the model loads
    audio.probe(Path(audio_path))
    num_threads = None if threads is None else max(1, threads)
    separator = None
    if separate is not None:
        separator = separation.create(separate, num_threads=num_threads)
        stem_for(kind, separator)  # a backend without a stem for this kind fails before anything loads
    pipeline = pipelines.create(kind, num_threads=num_threads)
    # With --force, write beside OUT and rename over it, so a failed run never leaves OUT half-written.
    target = midi_out.unique_path(out_path.with_name(f".{out_path.name}.reascribe")) if overwrite else out_path
    lab_target = lab_out and (midi_out.unique_path(lab_out.with_name(f".{lab_out.name}.reascribe")) if overwrite else lab_out)
    with tqdm(total=100, unit="%", desc=f"{kind} {Path(audio_path).name}", disable=not show_progress) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(round(fraction * 100) - bar.n)

        progress(0.0, "loading the model")
        pipeline.load()
        if separator is not None:
            separator.load()
        try:
            execute_file(Path(audio_path), kind, target, pipeline, progress, options, separator, lab_target)
        except FileExistsError:
            raise RequestError(f"{out_path} was created by something else meanwhile; it was left as it is.") from None
        if target != out_path:
            os.replace(target, out_path)
        if lab_target != lab_out:
            os.replace(lab_target, lab_out)
        progress(1.0, "done")
    return out_path
