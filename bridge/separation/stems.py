"""Stems as WAV files beside each other, named by the stem, never replacing a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from reascribe.midi_out import _publish_without_replacing, unique_path

# 32-bit float: stems may peak above the mix's full scale, and they sum back to it without rounding.
SUBTYPE = "FLOAT"


def write_stems(stems: dict[str, np.ndarray], sample_rate: int, out_dir: Path, base: str) -> list[Path]:
    """``out_dir/<base>_<stem>.wav`` for every stem (``<base>_<stem> (2).wav`` if taken); each file
    appears complete or not at all."""
    written = []
    for name, samples in stems.items():
        path = unique_path(Path(out_dir) / f"{base}_{name}.wav")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=out_dir)
        os.close(fd)
        try:
            sf.write(tmp, samples, sample_rate, subtype=SUBTYPE, format="WAV")
            _publish_without_replacing(Path(tmp), path)
        finally:
            os.unlink(tmp)
        written.append(path)
    return written
