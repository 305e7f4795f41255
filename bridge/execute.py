"""Run one job: a REAPER request (items of a project) or a plain audio file, through a loaded pipeline.

Everything a request names is checked here before any audio is read: the source must lie inside the
project (or an allowed root), still be the file the request saw, and the item must map to source
time simply. Bad input ends as a failed item with a sentence; only cancellation propagates.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from reascribe import audio, beats, lab, midi_out
from reascribe.errors import AudioError, JobCancelled, ReascribeError, RequestError
from reascribe.events import ChordSegment, ControlEvent, Events, NoteEvent
from reascribe.pipelines import Pipeline, Progress
from reascribe.protocol import (
    Item,
    ItemResult,
    Request,
    Result,
    Status,
    validate_options,
)
from reascribe.separation import MIX, Separator, stem_for

log = logging.getLogger(__name__)

ARTIFACT_FOLDER = "reascribe"


@dataclass(frozen=True)
class KindMidi:
    program: int  # General MIDI program of the written track
    channel: int  # MIDI channel 1-16 unless the options name one
    pitched: bool  # False: note numbers name drums (see ItemResult.pitched)


MIDI_BY_KIND = {
    "piano": KindMidi(program=0, channel=1, pitched=True),
    "drums": KindMidi(program=0, channel=10, pitched=False),  # GM's drum channel; program 0 is the standard kit
    "chords": KindMidi(program=0, channel=1, pitched=True),
}
LAB_KINDS = ("chords",)  # kinds whose file jobs also write a MIREX .lab beside the MIDI


def channel_of(kind: str, options: dict[str, Any]) -> int:
    """The MIDI channel (1-16) of a job's notes: its ``channel`` option, else the kind's."""
    return options.get("channel", MIDI_BY_KIND[kind].channel)


def execute_request(request: Request, pipeline: Pipeline, progress: Progress, allowed_roots: list[Path]) -> Result:
    """Transcribe every item of ``request``; failures are per item, cancellation raises JobCancelled."""
    return execute_items(request, progress, lambda item, p: _run_item(request, item, pipeline, p, allowed_roots))


def execute_items(request: Request, progress: Progress, run_item: Callable[[Item, Progress], ItemResult]) -> Result:
    """``run_item`` for every item of ``request``; failures are per item, cancellation raises JobCancelled."""
    if request.expired():
        return Result.failure(
            request.id, request.kind, "The request expired before the daemon could start it; run the action again."
        )
    results = []
    count = len(request.items)
    for index, item in enumerate(request.items):
        item_progress = _scaled(progress, index / count, (index + 1) / count, f"item {index + 1}/{count}")
        try:
            results.append(run_item(item, item_progress))
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
    audio_path: Path,
    kind: str,
    out_path: Path,
    pipeline: Pipeline,
    progress: Progress,
    options: dict[str, Any],
    separator: Separator | None = None,
    lab_path: Path | None = None,
) -> Path:
    """Transcribe a whole audio file into a new MIDI file at ``out_path`` with a detected tempo map.

    With a loaded ``separator`` the pipeline hears only the stem its kind wants (or the whole mix, for
    a kind in the separator's ``hears_mix``); the beats still come from the whole mix. Chords also go to a MIREX ``.lab`` file: ``lab_path``, else beside the MIDI
    under a free name."""
    options = validate_options(kind, options)
    if separator is None:
        section = audio.load_section(Path(audio_path), sample_rate=pipeline.sample_rate, mono=pipeline.mono)
        _require_sound(section, Path(audio_path).name)
        mix = section
    else:
        mix = audio.load_section(Path(audio_path), sample_rate=separator.sample_rate)
        _require_sound(mix, Path(audio_path).name)
        stem = stem_for(kind, separator)
        if stem == MIX:
            section = mix  # this backend's stems would cost the transcriber notes (separation.hears_mix)
        else:
            stems = separator.separate(mix.samples, _scaled(progress, 0.0, 0.5, "separation"))
            section = audio.AudioSection(stems[stem], mix.sample_rate, mix.start_s)
            del stems  # only the wanted stem is kept while the model runs
            progress = _scaled(progress, 0.5, 1.0, f"{stem} stem")
    events = pipeline.run(section, options, progress)
    tempo_map = beats.detect_tempo_map(mix)
    written = midi_out.write_midi(
        out_path,
        events,
        tempo_map,
        program=MIDI_BY_KIND[kind].program,
        channel=channel_of(kind, options) - 1,
        track_name=f"{Path(audio_path).stem} {kind}",
    )
    if events.chords is not None:
        lab.write_lab(lab_path or midi_out.unique_path(Path(out_path).with_suffix(".lab")), events.chords)
    return written



def _run_item(request: Request, item: Item, pipeline: Pipeline, progress: Progress, allowed_roots: list[Path]) -> ItemResult:
    section = item_section(request, item, allowed_roots, pipeline.sample_rate, pipeline.mono)
    events = pipeline.run(section, request.options, progress).shifted(section.start_s)
    return ItemResult(
        item.item_guid,
        item.take_guid,
        Status.DONE,
        section=(section.start_s, section.start_s + section.duration_s),
        notes=[n.as_row() for n in events.notes],
        cc=[c.as_row() for c in events.controls],
        artifact=_write_artifact(request, item, events),
        channel=channel_of(request.kind, request.options),
        pitched=MIDI_BY_KIND[request.kind].pitched,
        chords=None if events.chords is None else [c.as_row() for c in events.chords],
        key=events.key,
        markers=None if events.chords is None else request.options.get("markers", "take"),
    )


def item_section(request: Request, item: Item, allowed_roots: list[Path], sample_rate: int, mono: bool) -> audio.AudioSection:
    """The audio ``item`` plays, checked (see the module docstring); bad input raises with a sentence."""
    label = f"'{item.name}'" if item.name else "The item"
    if item.stretch_markers:
        raise RequestError(
            f"{label} has stretch markers, which reascribe cannot follow yet; "
            "glue the item (Item > Glue items) or remove the markers, then run the action again."
        )
    if item.length_s <= 0:
        raise RequestError(f"{label} has zero length; there is nothing to transcribe.")
    source = _checked_source(request, item, allowed_roots)
    section = audio.load_section(source, item.section_start_s, item.section_end_s, sample_rate=sample_rate, mono=mono)
    _require_sound(section, source.name)
    return section


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

    item_events = in_item_time(item, events)
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
                program=MIDI_BY_KIND[request.kind].program,
                channel=channel_of(request.kind, request.options) - 1,
                track_name=f"{stem} {request.kind}",
            )
        )
    except OSError as exc:
        # The take is still applied in REAPER; only the file copy is missing.
        log.warning("request %s: cannot write the MIDI file into %s: %s", request.id, folder, exc)
        return None


def in_item_time(item: Item, events: Events) -> Events:
    """``events`` in seconds of source audio as seconds from the item's start."""

    def item_time(source_s: float) -> float:
        return (source_s - item.start_offset_s) / item.playrate

    return Events(
        [NoteEvent(item_time(n.start_s), item_time(n.end_s), n.pitch_midi, n.velocity) for n in events.notes],
        [ControlEvent(item_time(c.time_s), c.controller, c.value) for c in events.controls],
        None if events.chords is None else [ChordSegment(item_time(c.start_s), item_time(c.end_s), c.label, c.symbol) for c in events.chords],
        events.key,
    )


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w .()-]+", "_", name).strip(" .")
    return cleaned[:80] or "item"


def _scaled(progress: Progress, low: float, high: float, prefix: str) -> Progress:
    def report(fraction: float, message: str) -> None:
        progress(low + (high - low) * min(1.0, max(0.0, fraction)), f"{prefix}: {message}")

    return report
