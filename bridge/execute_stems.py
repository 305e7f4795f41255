"""Jobs on stems: separate items (or a file) into stem WAVs, or transcribe a mix kind by kind.

A separation holds its section and every stem in memory at once (32-bit float, several times the
section), so it takes at most MAX_SECTION_S at a time; a mix keeps only the stems its kinds hear
while the transcribers run. Item checks and per-item failures are those of transcription jobs
(``execute``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from reascribe import audio, beats, midi_out
from reascribe.errors import AudioError, ReascribeError
from reascribe.events import Events
from reascribe.execute import (
    ARTIFACT_FOLDER,
    MIDI_BY_KIND,
    _require_sound,
    _safe_name,
    _scaled,
    channel_of,
    execute_items,
    in_item_time,
    item_section,
)
from reascribe.pipelines import Pipeline, Progress
from reascribe.protocol import Item, ItemResult, Request, Result, Status, mix_kinds
from reascribe.separation import MIX, Separator, stem_for
from reascribe.separation.stems import write_stems

MAX_SECTION_S = 900.0  # 15 min of stereo 44.1 kHz: 0.3 GB of audio, about 1.5 GB with its stems
SEPARATION_SHARE = 0.4  # of a mix job's progress bar; the transcribers share the rest
PipelineFor = Callable[[str, Progress], Pipeline]  # a loaded pipeline of a kind (loading reports progress)


def execute_separate_request(
    request: Request, separator: Separator, progress: Progress, allowed_roots: list[Path]
) -> Result:
    """Write the stems of every item into ``<media_dir>/reascribe/``; failures are per item."""
    return execute_items(request, progress, lambda item, p: _separate_item(request, item, separator, p, allowed_roots))


def execute_mix_request(
    request: Request, separator: Separator, pipeline_for: PipelineFor, progress: Progress, allowed_roots: list[Path]
) -> Result:
    """Separate every item and transcribe each kind of ``request.options["kinds"]`` from its stem."""
    return execute_items(
        request, progress, lambda item, p: _mix_item(request, item, separator, pipeline_for, p, allowed_roots)
    )


def separate_to_folder(audio_path: Path, out_dir: Path, separator: Separator, progress: Progress) -> list[Path]:
    """One WAV per stem of a whole file, ``<out_dir>/<file stem>_<stem>.wav`` (numbered if taken)."""
    section = _whole_file(Path(audio_path), separator)
    stems = separator.separate(section.samples, progress)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return write_stems(stems, section.sample_rate, Path(out_dir), Path(audio_path).stem)


def mix_to_midi(
    audio_path: Path, out_path: Path, separator: Separator, pipeline_for: PipelineFor, progress: Progress,
    options: dict[str, Any] | None = None,
) -> Path:
    """A new MIDI file at ``out_path`` with one track per kind, each transcribed from its stem, on a
    tempo map detected from the whole mix."""
    options = options or {}
    section = _whole_file(Path(audio_path), separator)
    parts = transcribe_stems(section, separator, pipeline_for, options, progress)
    name = Path(audio_path).stem
    return midi_out.write_midi_tracks(
        out_path,
        [_midi_part(kind, options.get(kind, {}), events, f"{name} {kind}") for kind, _, events in parts],
        beats.detect_tempo_map(section),
    )


def transcribe_stems(
    section: audio.AudioSection, separator: Separator, pipeline_for: PipelineFor, options: dict[str, Any],
    progress: Progress,
) -> list[tuple[str, str, Events]]:
    """(kind, stem, events in seconds from the section's start) for each kind of ``options["kinds"]``."""
    kinds = options.get("kinds") or list(mix_kinds())
    wanted = {kind: stem_for(kind, separator) for kind in kinds}  # fails before separating when one has no stem
    stems = {MIX: section.samples}
    if set(wanted.values()) - {MIX}:
        separated = separator.separate(section.samples, _scaled(progress, 0.0, SEPARATION_SHARE, "separation"))
        stems.update((name, samples) for name, samples in separated.items() if name in wanted.values())
    parts = []
    share = (1.0 - SEPARATION_SHARE) / len(kinds)
    for n, kind in enumerate(kinds):
        low = SEPARATION_SHARE + n * share
        part_progress = _scaled(progress, low, low + share, kind)
        pipeline = pipeline_for(kind, part_progress)
        stem = audio.AudioSection(stems[wanted[kind]], section.sample_rate, section.start_s)
        parts.append((kind, wanted[kind], pipeline.run(stem, options.get(kind, {}), part_progress)))
    return parts


def _separate_item(
    request: Request, item: Item, separator: Separator, progress: Progress, allowed_roots: list[Path]
) -> ItemResult:
    section = _item_section(request, item, separator, allowed_roots)
    stems = separator.separate(section.samples, progress)
    folder = request.project.media_dir / ARTIFACT_FOLDER
    base = f"{_safe_name(item.name or item.source_path.stem)}-{request.id[-8:]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_stems(stems, section.sample_rate, folder, base)
    except OSError as exc:
        raise ReascribeError(
            f"The stems cannot be written into {folder} ({exc.strerror or exc}); make sure the project's disk "
            "has free space and the folder is writable."
        ) from exc
    return ItemResult(
        item.item_guid,
        item.take_guid,
        Status.DONE,
        section=(section.start_s, section.start_s + section.duration_s),
        stems=[{"name": name, "path": str(path)} for name, path in zip(stems, paths)],
    )


def _mix_item(
    request: Request, item: Item, separator: Separator, pipeline_for: PipelineFor, progress: Progress,
    allowed_roots: list[Path],
) -> ItemResult:
    section = _item_section(request, item, separator, allowed_roots)
    parts = [
        (kind, stem, events.shifted(section.start_s))
        for kind, stem, events in transcribe_stems(section, separator, pipeline_for, request.options, progress)
    ]
    if not any(events.notes or events.chords for _, _, events in parts):
        label = f"'{item.name}'" if item.name else "The item"
        raise AudioError(f"{label}: no notes were found in any of its stems ({', '.join(k for k, _, _ in parts)}).")
    return ItemResult(
        item.item_guid,
        item.take_guid,
        Status.DONE,
        section=(section.start_s, section.start_s + section.duration_s),
        artifact=_write_mix_artifact(request, item, parts),
        parts=[_part(kind, stem, events, request.options.get(kind, {})) for kind, stem, events in parts],
    )


def _part(kind: str, stem: str, events: Events, options: dict[str, Any]) -> dict:
    """A result part: the fields of a transcription's result item for its kind (docs/protocol.md)."""
    part = {
        "kind": kind,
        "stem": stem,
        "notes": [n.as_row() for n in events.notes],
        "cc": [c.as_row() for c in events.controls],
        "channel": channel_of(kind, options),
        "pitched": MIDI_BY_KIND[kind].pitched,
    }
    if events.chords is not None:
        part.update(chords=[c.as_row() for c in events.chords], key=events.key)
    return part


def _item_section(request: Request, item: Item, separator: Separator, allowed_roots: list[Path]) -> audio.AudioSection:
    label = f"'{item.name}'" if item.name else "The item"
    _check_length(item.length_s * item.playrate, label)
    return item_section(request, item, allowed_roots, separator.sample_rate, mono=False)


def _whole_file(path: Path, separator: Separator) -> audio.AudioSection:
    _check_length(audio.probe(path).duration_s, path.name)
    section = audio.load_section(path, sample_rate=separator.sample_rate)
    _require_sound(section, path.name)
    return section


def _check_length(seconds: float, label: str) -> None:
    if seconds > MAX_SECTION_S:
        raise AudioError(
            f"{label} plays {seconds:.0f} s of audio, more than the {MAX_SECTION_S:.0f} s separated at once "
            "(this bounds memory); split it into shorter parts."
        )


def _midi_part(kind: str, options: dict[str, Any], events: Events, name: str) -> midi_out.MidiPart:
    return midi_out.MidiPart(events, MIDI_BY_KIND[kind].program, channel_of(kind, options) - 1, name)


def _write_mix_artifact(request: Request, item: Item, parts: list[tuple[str, str, Events]]) -> str | None:
    """One MIDI file with a track per kind, time 0 at the item's start, on the project's tempo map."""
    stem = _safe_name(item.name or item.source_path.stem)
    folder = request.project.media_dir / ARTIFACT_FOLDER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = midi_out.unique_path(folder / f"{stem}-mix-{request.id[-8:]}.mid")
        tracks = [_midi_part(kind, request.options.get(kind, {}), in_item_time(item, events), f"{stem} {kind}")
                  for kind, _, events in parts]
        return str(midi_out.write_midi_tracks(path, tracks, request.tempo_map.shifted(item.position_s)))
    except OSError:
        return None  # the MIDI still reaches REAPER through the result; only the file copy is missing
