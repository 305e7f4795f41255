"""Decode audio files and cut the section an item plays, with bounded memory.

libsndfile (through soundfile) reads WAV, AIFF, FLAC, Ogg and MP3 and seeks to the section; every
other format (m4a, aac, wma, opus, ...) goes through the ``ffmpeg`` binary when it is installed. The
section is read in blocks that are mixed down and resampled (soxr) as they arrive, so memory grows
with the section at the output rate and channel count, never with the whole file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import numpy as np
import soundfile as sf
import soxr

from reascribe.errors import AudioError

log = logging.getLogger(__name__)

MAX_SECTION_S = 1800.0  # longest section read at once: 30 min of 44.1 kHz stereo float32 is 635 MB
BLOCK_FRAMES = 1 << 18  # frames decoded per step (6 s at 44.1 kHz)
RESAMPLE_QUALITY = "HQ"
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
FFPROBE_TIMEOUT_S = 60.0  # ffprobe only reads headers; a file it chews on longer is broken (or on a dead share)
FFMPEG_ERROR_TAIL_BYTES = 2000  # the end of ffmpeg's messages, quoted in the error sentence

# What libsndfile reads; a file with one of these extensions that it cannot open is damaged, not exotic.
SNDFILE_EXTENSIONS = frozenset(".wav .wave .bwf .rf64 .w64 .aif .aiff .aifc .flac .ogg .oga .mp3 .caf .au .snd".split())
FFMPEG_EXAMPLES = "m4a, aac, wma, opus, alac"

# Stereo downmix of common WAV channel layouts (WAVE_FORMAT_EXTENSIBLE default order): the role of
# each channel. "C" goes to both sides at -3 dB, surrounds ("l", "r") at -3 dB, the LFE is dropped.
_LAYOUT_ROLES = {
    3: "LRC",  # L R C
    4: "LRlr",  # quad
    5: "LRClr",  # 5.0
    6: "LRCElr",  # 5.1
    7: "LRCEClr",  # 6.1 (back centre)
    8: "LRCElrlr",  # 7.1
}
_MINUS_3_DB = 1.0 / math.sqrt(2.0)
_ROLE_GAINS = {
    "L": (1.0, 0.0),
    "R": (0.0, 1.0),
    "C": (_MINUS_3_DB, _MINUS_3_DB),
    "E": (0.0, 0.0),
    "l": (_MINUS_3_DB, 0.0),
    "r": (0.0, _MINUS_3_DB),
}


@dataclass
class AudioSection:
    samples: np.ndarray  # float32, shape (frames, channels)
    sample_rate: int
    start_s: float  # source second of the first sample

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    frames: int  # exact for libsndfile formats, estimated from the duration for ffmpeg ones
    duration_s: float
    format: str  # libsndfile's format ("WAV", "FLAC", "MP3") or "ffmpeg:<codec>"


def probe(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, channels and length of an audio file, without decoding it."""
    path = _check_file(Path(path))
    reasons = []
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        reasons.append(f"libsndfile: {exc}")
    else:
        return _checked_info(path, AudioInfo(info.samplerate, info.channels, info.frames, info.duration, info.format))
    ffprobe = _ffprobe_binary()
    if ffprobe is None:
        _raise_unreadable(path, reasons, ffmpeg_installed=False)
    info = _ffprobe(path, ffprobe, reasons)
    return _checked_info(path, info)


def load_section(
    path: str | os.PathLike,
    start_s: float = 0.0,
    end_s: float | None = None,
    sample_rate: int | None = None,
    mono: bool = False,
) -> AudioSection:
    """Decode source seconds ``[start_s, end_s)`` of a file (to its end when ``end_s`` is None).

    A negative ``start_s`` is clamped to 0 and an ``end_s`` beyond the file to its end. The result is
    resampled to ``sample_rate`` when given and mixed to one channel when ``mono``; ``start_s`` of the
    result is the exact source second of its first sample.
    """
    path = Path(path)
    info = probe(path)
    start_s = max(0.0, float(start_s))
    if end_s is not None and end_s <= start_s:
        raise AudioError(f"The section of {path} from {start_s:g} s to {end_s:g} s is empty; the item has no length.")
    if start_s >= info.duration_s:
        raise AudioError(
            f"The item starts after the end of its source: {path} lasts {info.duration_s:.3f} s "
            f"but the item starts at {start_s:.3f} s; trim or move the item's start."
        )
    stop_s = info.duration_s if end_s is None else min(float(end_s), info.duration_s)
    if stop_s - start_s > MAX_SECTION_S:
        raise AudioError(
            f"The section of {path} is {stop_s - start_s:.0f} s long, more than the {MAX_SECTION_S:.0f} s "
            "transcribed at once; split the item into shorter items."
        )
    if sample_rate is not None and not (MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE):
        raise AudioError(f"sample_rate={sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz.")

    if info.format.startswith("ffmpeg:"):
        first_s = start_s
        blocks = _ffmpeg_blocks(path, info, start_s, stop_s)
    else:
        first_frame = round(start_s * info.sample_rate)
        first_s = first_frame / info.sample_rate
        blocks = _sndfile_blocks(path, first_frame, round(stop_s * info.sample_rate))
    out_rate = sample_rate or info.sample_rate
    out_channels = 1 if mono else info.channels
    expected_frames = math.ceil((stop_s - first_s) * out_rate) + 1
    samples = _collect(blocks, info, out_rate, out_channels, expected_frames)
    if samples.shape[0] == 0:
        raise AudioError(f"The section of {path} from {start_s:g} s to {stop_s:g} s contains no audio.")
    return AudioSection(samples, out_rate, first_s)


def downmix(samples: np.ndarray, channels: int) -> np.ndarray:
    """``samples`` (frames, n) mixed to 1 or 2 channels; fewer channels than asked are returned as is.

    Stereo from more than two channels follows the usual WAV layouts (centre and surrounds at -3 dB,
    LFE dropped; unknown layouts alternate left/right), scaled so no output exceeds full scale.
    """
    if channels not in (1, 2):
        raise ValueError(f"channels={channels} must be 1 or 2")
    n_in = samples.shape[1]
    if n_in <= channels:
        return samples
    if n_in == 2:
        return samples.mean(axis=1, keepdims=True, dtype=np.float32)
    roles = _LAYOUT_ROLES.get(n_in, "LR" * (n_in // 2) + "C" * (n_in % 2))
    gains = np.array([_ROLE_GAINS[r] for r in roles], dtype=np.float32)  # (n_in, 2)
    gains /= gains.sum(axis=0, keepdims=True)
    if channels == 1:
        gains = gains.mean(axis=1, keepdims=True)
    return (samples @ gains).astype(np.float32)


def is_silent(section: AudioSection, threshold_dbfs: float = -70.0) -> bool:
    """True when no sample of the section reaches ``threshold_dbfs`` (peak level)."""
    if section.samples.size == 0:
        return True
    peak = float(np.max(np.abs(section.samples)))
    return peak <= 10.0 ** (threshold_dbfs / 20.0)


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise AudioError(f"The audio file {path} does not exist; it may have been moved, renamed or deleted.")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file.")
    if not os.access(path, os.R_OK):
        raise AudioError(f"The audio file {path} cannot be opened: permission denied.")
    if path.stat().st_size == 0:
        raise AudioError(f"The audio file {path} is empty (0 bytes); it may still be recording or copying.")
    return path


def _checked_info(path: Path, info: AudioInfo) -> AudioInfo:
    if info.frames <= 0 or info.duration_s <= 0:
        raise AudioError(f"The audio file {path} contains no audio (0 samples).")
    if not (MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE):
        raise AudioError(f"The audio file {path} has an implausible sample rate of {info.sample_rate} Hz.")
    return info


def _raise_unreadable(path: Path, reasons: list[str], ffmpeg_installed: bool) -> NoReturn:
    ext = path.suffix.lower()
    detail = "; ".join(reasons)
    if ffmpeg_installed or ext in SNDFILE_EXTENSIONS:
        raise AudioError(f"{path} cannot be read as audio: it is damaged or not an audio file ({detail}).")
    kind = f"'{ext}'" if ext else "without an extension"
    raise AudioError(
        f"{path} is in a format ({kind}) that needs ffmpeg to decode; install ffmpeg (it adds "
        f"{FFMPEG_EXAMPLES} and more) or convert the file to WAV or FLAC."
    )


def _sndfile_blocks(path: Path, first_frame: int, stop_frame: int) -> Iterator[np.ndarray]:
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(first_frame)
            remaining = stop_frame - first_frame
            while remaining > 0:
                block = f.read(min(BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
                if block.shape[0] == 0:  # the header promised more frames than the file holds
                    log.warning("%s ended %d frames early", path, remaining)
                    return
                remaining -= block.shape[0]
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path} could not be decoded past its start: it is damaged ({exc}).") from None


def _ffmpeg_binary() -> str | None:
    return shutil.which("ffmpeg")


def _ffprobe_binary() -> str | None:
    """ffprobe, which ships with ffmpeg; None unless both are installed."""
    ffmpeg = _ffmpeg_binary()
    if ffmpeg is None:
        return None
    beside = Path(ffmpeg).with_name("ffprobe" + Path(ffmpeg).suffix)
    return str(beside) if beside.exists() else shutil.which("ffprobe")


def _ffprobe(path: Path, ffprobe: str, reasons: list[str]) -> AudioInfo:
    cmd = [ffprobe, *"-v error -select_streams a:0 -of json -show_entries".split()]
    cmd += ["stream=codec_name,sample_rate,channels,duration:format=duration", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=FFPROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AudioError(
            f"ffprobe took longer than {FFPROBE_TIMEOUT_S:g} s to read the header of {path}; the file is damaged "
            "or on a drive that does not answer. Copy it to a local drive or convert it to WAV or FLAC."
        ) from None
    try:
        doc = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        doc = {}
    streams = doc.get("streams") or []
    if proc.returncode != 0 or not streams:
        reasons.append(f"ffmpeg: {_tail_text(proc.stderr) or 'no audio stream'}")
        _raise_unreadable(path, reasons, ffmpeg_installed=True)
    stream = streams[0]
    duration = stream.get("duration") or doc.get("format", {}).get("duration")
    try:
        rate, channels, duration_s = int(stream["sample_rate"]), int(stream["channels"]), float(duration)
    except (KeyError, TypeError, ValueError):
        reasons.append("ffmpeg: the audio stream has no sample rate, channel count or duration")
        _raise_unreadable(path, reasons, ffmpeg_installed=True)
    return AudioInfo(rate, channels, round(duration_s * rate), duration_s, f"ffmpeg:{stream.get('codec_name', '?')}")


def _ffmpeg_blocks(path: Path, info: AudioInfo, start_s: float, stop_s: float) -> Iterator[np.ndarray]:
    ffmpeg = _ffmpeg_binary()
    if ffmpeg is None:
        raise AudioError(f"ffmpeg was uninstalled while {path} was being read; install ffmpeg again.")
    cmd = [ffmpeg, *"-nostdin -hide_banner -loglevel error".split()]
    cmd += ["-ss", f"{start_s:.6f}", "-t", f"{stop_s - start_s:.6f}", "-i", str(path)]
    cmd += "-map 0:a:0 -vn -sn -dn -f f32le -acodec pcm_f32le -".split()  # first audio stream, raw float32
    frame_bytes = 4 * info.channels
    # ffmpeg's messages go to a file, not a pipe: a damaged file can make it write more than a pipe holds
    # while we only read stdout, and both processes would wait on each other forever.
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors) as proc:
            assert proc.stdout is not None
            while True:
                chunk = proc.stdout.read(BLOCK_FRAMES * frame_bytes)
                usable = len(chunk) - len(chunk) % frame_bytes
                if usable:
                    yield np.frombuffer(chunk[:usable], dtype="<f4").reshape(-1, info.channels)
                if len(chunk) < BLOCK_FRAMES * frame_bytes:
                    break
            returncode = proc.wait()
        if returncode != 0:
            raise AudioError(f"ffmpeg could not decode {path}: {_tail(errors) or 'unknown error'}.")


def _tail(f: IO[bytes]) -> str:
    """The end of ffmpeg's messages in ``f``: at most FFMPEG_ERROR_TAIL_BYTES, from a line start."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - FFMPEG_ERROR_TAIL_BYTES))
    return _tail_text(f.read().decode("utf-8", "replace"), cut=size > FFMPEG_ERROR_TAIL_BYTES)


def _tail_text(text: str, cut: bool = False) -> str:
    """The last FFMPEG_ERROR_TAIL_BYTES characters of ``text`` from a line start, "..." when shortened."""
    if len(text) > FFMPEG_ERROR_TAIL_BYTES:
        text, cut = text[-FFMPEG_ERROR_TAIL_BYTES:], True
    if cut:
        text = "..." + text[text.index("\n") + 1 :] if "\n" in text.rstrip() else "..." + text
    return text.strip()


def _collect(
    blocks: Iterator[np.ndarray], info: AudioInfo, out_rate: int, out_channels: int, expected_frames: int
) -> np.ndarray:
    """Mix down and resample blocks as they arrive into one preallocated array."""
    resampler = None
    if out_rate != info.sample_rate:
        resampler = soxr.ResampleStream(
            info.sample_rate, out_rate, out_channels, dtype="float32", quality=RESAMPLE_QUALITY
        )
    out = np.empty((expected_frames, out_channels), dtype=np.float32)
    filled = 0

    def append(block: np.ndarray) -> None:
        nonlocal out, filled
        if filled + block.shape[0] > out.shape[0]:
            out = np.concatenate([out[:filled], block])  # rare: the estimate was short by a few frames
        else:
            out[filled : filled + block.shape[0]] = block
        filled += block.shape[0]

    for block in blocks:
        block = downmix(block, 1) if out_channels == 1 else block
        if resampler is not None:
            block = resampler.resample_chunk(np.ascontiguousarray(block), last=False).reshape(-1, out_channels)
        append(block)
    if resampler is not None:
        append(
            resampler.resample_chunk(np.zeros((0, out_channels), dtype=np.float32), last=True).reshape(-1, out_channels)
        )
    return out[:filled]
