"""One-shot separation of an audio file into stem WAVs for the command line, with a progress bar."""

from __future__ import annotations

from pathlib import Path

from reascribe import audio, separation
from reascribe.execute_stems import separate_to_folder
from tqdm import tqdm


def separate_file(
    audio_path: Path,
    out_dir: Path,
    backend: str = separation.DEFAULT_BACKEND,
    *,
    threads: int | None = None,
    show_progress: bool = True,
) -> list[Path]:
    """Write one WAV per stem of ``audio_path`` into ``out_dir`` (created if missing); returns their paths."""
    audio_path, out_dir = Path(audio_path), Path(out_dir)
    audio.probe(audio_path)  # a bad file fails before any model loads
    separator = separation.create(backend, num_threads=threads)
    separator.load()
    with tqdm(total=100, unit="%", desc=f"separate {audio_path.name}", disable=not show_progress) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(round(fraction * 100) - bar.n)

        return separate_to_folder(audio_path, out_dir, separator, progress)
