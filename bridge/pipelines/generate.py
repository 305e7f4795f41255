"""The generator as a daemon pipeline: the infilling model, loaded once, fills ``generate`` requests."""

from __future__ import annotations

from typing import Any

from reascribe.pipelines import Progress


class GeneratePipeline:
    kind = "generate"

    def __init__(self, num_threads: int | None = None) -> None:
        self.infiller: Any = None  # sampling picks its own thread count (infill.SAMPLING_THREADS)

    def load(self) -> None:
        from reascribe.models.generator.infill import Infiller

        self.infiller = Infiller()

    def run_request(self, request, progress: Progress):
        from reascribe.generate import execute_generate_request

        return execute_generate_request(request, self.infiller, progress)
