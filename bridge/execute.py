"""Run one job: a REAPER request (items of a project) or a plain audio file, through a loaded pipeline.

Everything a request names is checked here before any audio is read: the source must lie inside the
project (or an allowed root), still be the file the request saw, and the item must map to source
time simply. Bad input ends as a failed item with a sentence; only cancellation propagates.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from reascribe import audio, beats, midi_out
from reascribe.errors import AudioError, JobCancelled, ReascribeError, RequestError
from reascribe.events import Events, ControlEvent, NoteEvent
from reascribe.pipelines import Pipeline, Progress
from reascribe.protocol import Item, ItemResult, Request, Result, Status, validate_options

log = logging.getLogger(__name__)

ARTIFACT_FOLDER = "reascribe"
PROGRAM_BY_KIND = {"piano": 0}  # General MIDI program of the written track


def execute_request(request: Request, pipeline: Pipeline, progress: Progress, allowed_roots: list[Path]) -> Result:
    """Transcribe every item of ``request``; failures are per item, cancellation raises JobCancelled."""
    if request.expired():
        return Result.failure(
            request.id, request.kind, "The request expired before the daemon could start it; run the action again."
        )
    results = []
    count = len(request.items)
    for index, item in enumerate(request.items):
        item_progress = _scaled(progress, index / count, (index + 1) / count, f"item {index + 1}/{count}")
        try:
            results.append(_run_item(request, item, pipeline, item_progress, allowed_roots))
        except JobCancelled:
            raise
        except ReascribeError as exc:
            log.info("request %s item %s failed: %s", request.id, item.item_guid, exc)
            results.append(ItemResult(item.item_guid, item.take_guid, Status.FAILED, str(exc)))
        except Exception as exc:  # a bug or a model crash must not lose the other items
            log.exception("request %s item %s crashed", request.id, item.item_guid)
            results.append(
                ItemResult(
                    item.item_guid,
                    item.take_guid,
                    Status.FAILED,
                    f"Transcription failed unexpectedly ({type(exc).__name__}); the daemon log has the details.",
                )
            )
    return Result.from_items(request.id, request.kind, results)


def execute_file(
    audio_path: Path, kind: str, out_path: Path, pipeline: Pipeline, progress: Progress, options: dict[str, Any]
) -> Path:
    """Transcribe a whole audio file into a new MIDI file at ``out_path`` with a detected tempo map."""
    options = validate_options(kind, options)
    section = audio.load_section(Path(audio_path), sample_rate=pipeline.sample_rate, mono=pipeline.mono)
    _require_sound(section, Path(audio_path).name)
    events = pipeline.run(section, options, progress)
    tempo_map = beats.detect_tempo_map(section)
    return midi_out.write_midi(
        out_path, events, tempo_map, program=PROGRAM_BY_KIND[kind], track_name=f"{Path(audio_path).stem} {kind}"
    )


def _run_item(request: Request, item: Item, pipeline: Pipeline, progress: Progress, allowed_roots: list[Path]) -> ItemResult:
    label = f"'{item.name}'" if item.name else "The item"
    if item.stretch_markers:
        raise RequestError(
            f"{label} has stretch markers, which reascribe cannot follow yet; "
            "glue the item (Item > Glue items) or remove the markers, then run the action again."
        )
    if item.length_s <= 0:
        raise RequestError(f"{label} has zero length; there is nothing to transcribe.")
    source = _checked_source(request, item, allowed_roots)
    section = audio.load_section(
        source, item.section_start_s, item.section_end_s, sample_rate=pipeline.sample_rate, mono=pipeline.mono
    )
    _require_sound(section, source.name)
    events = pipeline.run(section, request.options, progress).shifted(section.start_s)
    return ItemResult(
        item.item_guid,
        item.take_guid,
        Status.DONE,
        section=(section.start_s, section.start_s + section.duration_s),
        notes=[n.as_row() for n in events.notes],
        cc=[c.as_row() for c in events.controls],
        artifact=_write_artifact(request, item, events),
    )


def _checked_source(request: Request, item: Item, allowed_roots: list[Path]) -> Path:
    source = Path(os.path.realpath(item.source_path))
    roots = [Path(os.path.realpath(r)) for r in [*request.project.roots(), *allowed_roots]]
    if not any(source.is_relative_to(root) for root in roots):
        raise RequestError(
            f"The source file {item.source_path} lies outside the project folder {request.project.dir}; "
            "copy it into the project (File > Project settings > Media > Copy) or add its folder to "
            "allowed_roots in reascribe's config."
        )
    if not source.is_file():
        raise AudioError(f"The source file {item.source_path} is missing; it was moved or deleted.")
    size = source.stat().st_size
    if item.source_size_bytes is not None and size != item.source_size_bytes:
        raise AudioError(
            f"The source file {item.source_path} changed since the request was made; run the action again."
        )
    return source


def _require_sound(section: audio.AudioSection, name: str) -> None:
    if section.duration_s <= 0:
        raise AudioError(f"{name}: the section to transcribe is empty.")
    if audio.is_silent(section):
        raise AudioError(f"{name} is silent in the selected range; there is nothing to transcribe.")


def _write_artifact(request: Request, item: Item, events: Events) -> str | None:
    """The item's MIDI as a file inside the project: time 0 at the item start, the project's tempo map."""

    def item_time(source_s: float) -> float:
        return (source_s - item.start_offset_s) / item.playrate

    item_events = Events(
        [NoteEvent(item_time(n.start_s), item_time(n.end_s), n.pitch_midi, n.velocity) for n in events.notes],
        [ControlEvent(item_time(c.time_s), c.controller, c.value) for c in events.controls],
    )
    folder = request.project.media_dir / ARTIFACT_FOLDER
    stem = _safe_name(item.name or item.source_path.stem)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = midi_out.unique_path(folder / f"{stem}-{request.kind}-{request.id[-8:]}.mid")
        return str(
            midi_out.write_midi(
                path,
                item_events,
                request.tempo_map.shifted(item.position_s),
                program=PROGRAM_BY_KIND[request.kind],
                track_name=f"{stem} {request.kind}",
            )
        )
    except OSError as exc:
        # The take is still applied in REAPER; only the file copy is missing.
        log.warning("request %s: cannot write the MIDI file into %s: %s", request.id, folder, exc)
        return None


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w .()-]+", "_", name).strip(" .")
    return cleaned[:80] or "item"


def _scaled(progress: Progress, low: float, high: float, prefix: str) -> Progress:
    def report(fraction: float, message: str) -> None:
        progress(low + (high - low) * min(1.0, max(0.0, fraction)), f"{prefix}: {message}")

    return report
