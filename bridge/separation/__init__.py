"""Source separation: split a mix into stems the transcribers can hear clearly.

Every backend has one shape: ``stems`` (names, in output order), ``sample_rate`` (the rate
``separate`` wants), ``hears_mix`` (the kinds whose transcriber does better on the whole input than on
any of its stems), ``load()`` (once; may raise ModelError) and ``separate(samples, progress)``
taking float32 (frames, channels) and returning one array of the same shape per stem.
``progress(fraction, message)`` may raise JobCancelled, which stops the separation.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from reascribe.errors import RequestError
from reascribe.pipelines import Progress

BACKENDS = ("hpss", "demucs")
DEFAULT_BACKEND = "hpss"

# The stem each transcriber wants, in order of preference (hpss names first, then demucs's). A kind
# listed here can also be transcribed from a mix (protocol.mix_kinds): chords would name the harmonic stem.
KIND_STEMS = {"drums": ("drums",), "piano": ("harmonic", "other")}
MIX = "mix"  # what stem_for names when a transcriber should hear the input itself


class Separator(Protocol):
    backend: str
    stems: tuple[str, ...]
    sample_rate: int
    hears_mix: frozenset[str]

    def load(self) -> None: ...

    def separate(self, samples: np.ndarray, progress: Progress) -> dict[str, np.ndarray]: ...


def create(backend: str = DEFAULT_BACKEND, num_threads: int | None = None) -> Separator:
    """A new, not yet loaded separator; heavy dependencies are imported lazily."""
    if backend == "hpss":
        from reascribe.separation.hpss import HpssSeparator

        return HpssSeparator()
    if backend == "demucs":
        from reascribe.separation.demucs_backend import DemucsSeparator

        return DemucsSeparator(num_threads=num_threads)
    raise RequestError(f"Unknown separation backend {backend!r}; choose one of {', '.join(BACKENDS)}.")


def stem_for(kind: str, separator: Separator) -> str:
    """The stem of ``separator`` that the ``kind`` transcriber should hear, or MIX for the input itself."""
    if kind in separator.hears_mix and kind in KIND_STEMS:
        return MIX
    for stem in KIND_STEMS.get(kind, ()):
        if stem in separator.stems:
            return stem
    raise RequestError(
        f"The {separator.backend} separation has no stem for {kind} (it makes {', '.join(separator.stems)}); "
        "transcribe without --separate or choose another backend."
    )
