"""reascribe.audio on real files written by soundfile (and ffmpeg where installed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from reascribe import audio
from reascribe.audio import MAX_SECTION_S, AudioSection, downmix, is_silent, load_section, probe
from reascribe.errors import AudioError

SR = 44100
CLICK_FRAME = 2 * SR + 123  # the marker sample of the click file
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _click_signal(n_frames: int, click_frame: int, channels: int = 2) -> np.ndarray:
    """A quiet 440 Hz sine with one full-scale sample at ``click_frame``; channel k is scaled by 1/(k+1)."""
    mono = 0.1 * np.sin(2 * np.pi * 440 * np.arange(n_frames) / SR)
    mono[click_frame] = 1.0
    return np.stack([mono / (k + 1) for k in range(channels)], axis=1).astype(np.float32)


@pytest.fixture
def click_wav(tmp_path):
    path = tmp_path / "click.wav"
    sf.write(path, _click_signal(5 * SR, CLICK_FRAME), SR, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def noise():
    """12 s of white noise: lossy codecs keep its waveform well enough to find lags by correlation."""
    return (0.3 * np.random.default_rng(7).standard_normal(12 * SR)).astype(np.float32)


def _lag_frames(section: AudioSection, reference: np.ndarray) -> int:
    """Offset of ``section`` against ``reference`` at the section's claimed start, by cross-correlation."""
    first = round(section.start_s * SR)
    ref = reference[first + 2000 : first + 20000]
    got = section.samples[:, 0]
    return max(range(-1500, 1501), key=lambda lag: float(np.dot(ref, got[2000 + lag : 20000 + lag])))


def test_probe_reports_the_file(click_wav):
    info = probe(click_wav)
    assert (info.sample_rate, info.channels, info.frames, info.format) == (SR, 2, 5 * SR, "WAV")
    assert info.duration_s == pytest.approx(5.0)


def test_section_boundaries_are_exact(click_wav):
    section = load_section(click_wav, 2.0, 3.0)
    assert section.samples.dtype == np.float32
    assert section.samples.shape == (SR, 2)
    assert section.start_s == 2.0
    assert section.duration_s == pytest.approx(1.0)
    assert np.argmax(section.samples[:, 0]) == CLICK_FRAME - 2 * SR
    assert section.samples[123, 1] == pytest.approx(0.5)  # channels keep their own content


def test_start_is_rounded_to_the_nearest_sample_and_reported(click_wav):
    section = load_section(click_wav, 2.0 + 100.6 / SR, 2.5)
    assert section.start_s == pytest.approx(2.0 + 101 / SR, abs=1e-12)
    assert np.argmax(section.samples[:, 0]) == 22


def test_negative_start_clamps_to_zero_and_end_clamps_to_file(click_wav):
    section = load_section(click_wav, -1.5, 99.0)
    assert section.start_s == 0.0
    assert section.samples.shape[0] == 5 * SR
    assert np.argmax(section.samples[:, 0]) == CLICK_FRAME


def test_whole_file_when_no_end(click_wav):
    section = load_section(click_wav, 4.0)
    assert section.samples.shape == (SR, 2)


def test_mono_mixes_channels(click_wav):
    section = load_section(click_wav, 2.0, 3.0, mono=True)
    assert section.samples.shape == (SR, 1)
    assert section.samples[123, 0] == pytest.approx((1.0 + 0.5) / 2)


def test_resampled_section_matches_one_shot_soxr(click_wav):
    section = load_section(click_wav, 1.0, 3.0, sample_rate=48000)
    source = sf.read(click_wav, dtype="float32")[0][SR : 3 * SR]
    reference = soxr.resample(source, SR, 48000, quality="HQ")
    assert section.sample_rate == 48000
    assert section.samples.shape == reference.shape == (96000, 2)
    np.testing.assert_allclose(section.samples, reference, atol=1e-4)
    assert abs(np.argmax(section.samples[:, 0]) - round((CLICK_FRAME - SR) * 48000 / SR)) <= 1


def test_8khz_mono_resampled_to_44k(tmp_path):
    path = tmp_path / "phone.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 1000 * np.arange(3 * 8000) / 8000)).astype(np.float32), 8000)
    assert probe(path).channels == 1
    section = load_section(path, 0.5, 2.5, sample_rate=SR)
    assert section.samples.shape == (2 * SR, 1)
    spectrum = np.abs(np.fft.rfft(section.samples[:, 0]))
    assert np.fft.rfftfreq(2 * SR, 1 / SR)[np.argmax(spectrum)] == pytest.approx(1000, abs=1)


def test_96khz_six_channels(tmp_path):
    rate, n = 96000, 96000 * 2
    t = np.arange(n) / rate
    tones = {0: 300.0, 1: 500.0, 2: 700.0, 3: 40.0, 4: 900.0, 5: 1100.0}  # L R C LFE Ls Rs
    data = np.stack([0.2 * np.sin(2 * np.pi * f * t) for f in tones.values()], axis=1).astype(np.float32)
    path = tmp_path / "surround.wav"
    sf.write(path, data, rate, subtype="PCM_24")
    assert probe(path).channels == 6

    native = load_section(path, 0.5, 1.5)
    assert native.samples.shape == (rate, 6)
    stereo = load_section(path, 0.5, 1.5, sample_rate=SR)
    assert stereo.samples.shape == (SR, 6)
    mixed = downmix(stereo.samples, 2)
    assert mixed.shape == (SR, 2)

    def level(signal, freq_hz):
        spectrum = np.abs(np.fft.rfft(signal)) / len(signal)
        return spectrum[int(round(freq_hz))]  # 1 s at 44.1 kHz: bins are 1 Hz apart

    left, right = mixed[:, 0], mixed[:, 1]
    assert level(left, 300) > 0.02 and level(right, 300) < 1e-4  # front left stays left
    assert level(right, 1100) > 0.01 and level(left, 1100) < 1e-4  # surround right goes right
    assert level(left, 700) == pytest.approx(level(right, 700), rel=1e-3)  # centre in both
    assert level(left, 40) < 1e-4 and level(right, 40) < 1e-4  # LFE dropped
    assert np.max(np.abs(mixed)) <= 1.0
    assert load_section(path, 0.5, 1.5, mono=True).samples.shape == (rate, 1)


@pytest.mark.parametrize(
    "name, container, subtype",
    [("x.flac", "FLAC", "PCM_16"), ("x.ogg", "OGG", "VORBIS"), ("x.mp3", "MP3", "MPEG_LAYER_III")],
)
def test_compressed_formats_read_through_libsndfile(tmp_path, noise, name, container, subtype):
    if subtype not in sf.available_subtypes(container):
        pytest.skip(f"this libsndfile cannot write {container}/{subtype}")
    path = tmp_path / name
    sf.write(path, np.stack([noise, noise], axis=1), SR, subtype=subtype)
    info = probe(path)
    assert not info.format.startswith("ffmpeg")
    for start_s in (0.0, 3.3, 7.77):
        section = load_section(path, start_s, start_s + 1.0)
        assert section.samples.shape == (SR, 2)
        assert _lag_frames(section, noise) == 0


def test_flac_section_is_sample_exact(tmp_path):
    path = tmp_path / "click.flac"
    sf.write(path, _click_signal(5 * SR, CLICK_FRAME), SR, subtype="PCM_24")
    section = load_section(path, 1.5, 2.5)
    assert np.argmax(section.samples[:, 0]) == CLICK_FRAME - round(1.5 * SR)


@needs_ffmpeg
def test_m4a_goes_through_ffmpeg(tmp_path, noise):
    wav, m4a = tmp_path / "n.wav", tmp_path / "n.m4a"
    sf.write(wav, np.stack([noise, noise], axis=1), SR)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "256k", str(m4a)], check=True
    )
    info = probe(m4a)
    assert info.format == "ffmpeg:aac" and info.sample_rate == SR and info.channels == 2
    assert info.duration_s == pytest.approx(12.0, abs=0.05)
    for start_s in (0.0, 3.3, 7.77):
        section = load_section(m4a, start_s, start_s + 1.0)
        assert section.samples.shape == (SR, 2)
        assert _lag_frames(section, noise) == 0
    assert load_section(m4a, 2.0, 3.0, sample_rate=22050, mono=True).samples.shape == (22050, 1)


def test_without_ffmpeg_other_formats_say_how_to_add_them(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "_ffmpeg_binary", lambda: None)
    path = tmp_path / "take.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(AudioError, match=r"take\.m4a.*'\.m4a'.*install ffmpeg"):
        load_section(path)


def test_without_ffmpeg_a_damaged_wav_is_called_damaged(tmp_path, monkeypatch):
    monkeypatch.setattr(audio, "_ffmpeg_binary", lambda: None)
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(7))
    with pytest.raises(AudioError, match=r"broken\.wav cannot be read as audio: it is damaged"):
        probe(path)


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("these are my lyrics, not audio\n" * 20)
    with pytest.raises(AudioError, match=r"notes\.wav cannot be read as audio"):
        load_section(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=r"noise\.flac cannot be read as audio"):
        probe(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"gone\.wav does not exist"):
        load_section(tmp_path / "gone.wav")


def test_directory(tmp_path):
    folder = tmp_path / "song.wav"
    folder.mkdir()
    with pytest.raises(AudioError, match=r"song\.wav is a folder"):
        load_section(folder)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    with pytest.raises(AudioError, match=r"empty\.wav is empty \(0 bytes\)"):
        probe(path)


def test_wav_with_no_frames(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros((0, 2), dtype=np.float32), SR)
    with pytest.raises(AudioError, match=r"header\.wav contains no audio"):
        load_section(path)


def test_section_after_the_end(click_wav):
    with pytest.raises(AudioError, match=r"The item starts after the end of its source: .*click\.wav lasts 5\.000 s"):
        load_section(click_wav, 6.0, 7.0)


def test_zero_length_section(click_wav):
    with pytest.raises(AudioError, match=r"click\.wav from 1 s to 1 s is empty"):
        load_section(click_wav, 1.0, 1.0)


def test_section_longer_than_the_limit(tmp_path):
    rate = 1000  # keeps the file small: 31 minutes of 16-bit mono at 1 kHz is 3.7 MB
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(int((MAX_SECTION_S + 60) * rate), dtype=np.int16), rate)
    with pytest.raises(AudioError, match=r"long\.wav is 1860 s long.*split the item"):
        load_section(path)
    assert load_section(path, 60.0).duration_s == pytest.approx(MAX_SECTION_S)


def test_is_silent():
    def section(samples):
        return AudioSection(np.asarray(samples, dtype=np.float32).reshape(-1, 1), SR, 0.0)

    assert is_silent(section(np.zeros(SR)))
    assert is_silent(section(np.full(SR, 10 ** (-80 / 20))))
    assert not is_silent(section(np.full(SR, 10 ** (-60 / 20))))
    assert not is_silent(section(np.r_[np.zeros(SR), 0.01]))  # one loud sample is enough
    assert is_silent(section(np.full(SR, 10 ** (-60 / 20))), threshold_dbfs=-50.0)


# -- ffmpeg that misbehaves: stand-in scripts named ffmpeg and ffprobe --

FAKE_PROBE = """
import json, sys, time
if {sleep_s}:
    time.sleep({sleep_s})
print(json.dumps({{"streams": [{{"codec_name": "aac", "sample_rate": "44100", "channels": 1, "duration": "1.0"}}]}}))
"""

FAKE_DECODER = """
import os, sys
with open({pid_file!r}, "w") as f:
    f.write(str(os.getpid()))
line = b"[aac @ 0x55d0] Error decoding frame: invalid data found when processing input\\n"
for _ in range({error_lines}):
    sys.stderr.buffer.write(line)
sys.stderr.buffer.write(b"the last message\\n")
sys.stderr.flush()
sys.stdout.buffer.write(bytes(4 * 1000))
sys.exit({exit_code})
"""


def _fake_ffmpeg(tmp_path, monkeypatch, probe_sleep_s=0, error_lines=0, exit_code=0):
    folder = tmp_path / "fakebin"
    folder.mkdir()
    pid_file = tmp_path / "decoder.pid"
    scripts = {
        "ffprobe": FAKE_PROBE.format(sleep_s=probe_sleep_s),
        "ffmpeg": FAKE_DECODER.format(pid_file=str(pid_file), error_lines=error_lines, exit_code=exit_code),
    }
    for name, body in scripts.items():
        script = folder / name
        script.write_text(f"#!{sys.executable}\n{body}")
        script.chmod(0o755)
    monkeypatch.setattr(audio, "_ffmpeg_binary", lambda: str(folder / "ffmpeg"))
    m4a = tmp_path / "take.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    return m4a, pid_file


def _load_in_thread(path, timeout_s):
    outcome = {}

    def load():
        try:
            outcome["section"] = load_section(path)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return thread, outcome


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in ffmpeg is a script with a #! line")
def test_ffmpeg_that_floods_its_error_output_does_not_hang(tmp_path, monkeypatch):
    # 80 bytes x 20000 lines = 1.6 MB of messages before any audio: far more than a pipe holds.
    m4a, pid_file = _fake_ffmpeg(tmp_path, monkeypatch, error_lines=20000, exit_code=1)
    thread, outcome = _load_in_thread(m4a, 30)
    if thread.is_alive():  # the old deadlock: free the thread before failing
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        thread.join(10)
        pytest.fail("load_section hung on an ffmpeg that writes much to stderr")
    error = outcome["error"]
    assert isinstance(error, AudioError)
    message = str(error)
    assert message.startswith(f"ffmpeg could not decode {m4a}: ...[aac @ 0x55d0]")
    assert message.endswith("the last message.")
    assert len(message) < audio.FFMPEG_ERROR_TAIL_BYTES + 200


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in ffmpeg is a script with a #! line")
def test_ffmpeg_warnings_on_a_good_decode_are_not_an_error(tmp_path, monkeypatch):
    m4a, _ = _fake_ffmpeg(tmp_path, monkeypatch, error_lines=20000, exit_code=0)
    thread, outcome = _load_in_thread(m4a, 30)
    assert not thread.is_alive()
    assert outcome["section"].samples.shape == (1000, 1)


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in ffprobe is a script with a #! line")
def test_an_ffprobe_that_does_not_answer_is_a_sentence(tmp_path, monkeypatch):
    m4a, _ = _fake_ffmpeg(tmp_path, monkeypatch, probe_sleep_s=10)
    monkeypatch.setattr(audio, "FFPROBE_TIMEOUT_S", 0.5)
    with pytest.raises(AudioError, match=r"ffprobe took longer than 0.5 s to read the header of .*take\.m4a; the file is"):
        probe(m4a)
