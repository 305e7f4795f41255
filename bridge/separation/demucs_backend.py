"""The `demucs` package as a separation backend, with weights the user already has on the machine.

demucs 4.1 separates without torchaudio (it is only needed for demucs's training code). Weights are
never downloaded here: they are looked up in REASCRIBE_DEMUCS_WEIGHTS (a .th or .safetensors file of
one model), then in the caches that demucs's own command fills, torch hub's ``checkpoints/`` folder
(``<signature>-<hash>.th``) and the Hugging Face hub cache (``adefossez/HTDemucs``,
``<signature>.safetensors``). A .th file is a pickle (torch.load runs code from it): it is read only
from those places, which the user controls.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from reascribe.errors import ModelError
from reascribe.pipelines import Progress

WEIGHTS_ENV = "REASCRIBE_DEMUCS_WEIGHTS"
MODEL_NAME = "htdemucs"
SIGNATURE = "955717e8"  # htdemucs's one model (demucs/remote/htdemucs.yaml)
HF_REPO = "adefossez/HTDemucs"
SEGMENT_OVERLAP = 0.25  # demucs's default overlap of its ~8 s segments


def _weights_candidates() -> list[Path]:
    import torch

    found = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob(f"{SIGNATURE}-*.th"))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HF_REPO, f"{SIGNATURE}.safetensors")
        if isinstance(cached, str):
            found.append(Path(cached))
    except ImportError:
        pass
    return found


def find_weights() -> Path:
    """The weights file to load, or a ModelError that says where it was looked for and how to get it."""
    configured = os.environ.get(WEIGHTS_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelError(f"{WEIGHTS_ENV} names {path}, which is not a file; point it at a demucs .th or .safetensors file.")
        return path
    candidates = _weights_candidates()
    if candidates:
        return candidates[0]
    import torch

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    raise ModelError(
        f"demucs weights not found at {hub}/{SIGNATURE}-*.th nor in the Hugging Face cache ({HF_REPO}); "
        f"on a machine with internet run `python -m demucs -n {MODEL_NAME} any.wav` once (it downloads them), "
        f"then copy the downloaded {SIGNATURE}.safetensors or {SIGNATURE}-*.th here and set {WEIGHTS_ENV} to it, "
        "or use the hpss backend, which needs no weights."
    )


def load_weights(path: Path):
    """A demucs model from a .safetensors or .th file."""
    try:
        if path.suffix == ".safetensors":
            from demucs.hf import load_safetensors_model

            return load_safetensors_model(path)
        from demucs.states import load_model

        return load_model(path)
    except Exception as exc:
        raise ModelError(f"{path} is not a demucs model file that this demucs can load ({type(exc).__name__}: {exc}).") from exc


class DemucsSeparator:
    backend = "demucs"
    stems: tuple[str, ...] = ("drums", "bass", "other", "vocals")  # htdemucs's; replaced by the model's on load
    sample_rate = 44100
    hears_mix: frozenset[str] = frozenset()

    def __init__(self, num_threads: int | None = None, model=None) -> None:
        """``model``: an already built demucs model (tests give one with random weights)."""
        self.num_threads = num_threads
        self.model = model
        if model is not None:
            self._adopt(model)

    def load(self) -> None:
        if self.model is not None:
            return
        try:
            import demucs.apply  # noqa: F401
        except ImportError as exc:
            raise ModelError(
                f"The demucs backend needs the demucs package ({exc}); install it with "
                "`pip install 'reascribe[demucs]'` or use the hpss backend."
            ) from exc
        model = load_weights(find_weights())
        model.eval()
        self._adopt(model)
        self.model = model

    def _adopt(self, model) -> None:
        self.stems = tuple(model.sources)
        self.sample_rate = int(model.samplerate)

    def separate(self, samples: np.ndarray, progress: Progress) -> dict[str, np.ndarray]:
        import torch
        from demucs.apply import apply_model

        self.load()
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"samples must be (frames, channels) with frames > 0, not {x.shape}")
        n, channels = x.shape
        wanted = self.model.audio_channels
        mix = np.repeat(x, wanted, axis=1) if channels == 1 else x[:, :wanted]  # demucs models are stereo
        if channels > wanted:
            raise ValueError(f"{channels} channels; mix them down to {wanted} first")
        wav = torch.from_numpy(np.ascontiguousarray(mix.T))
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8  # demucs's own normalisation (demucs.api)
        segment_frames = int(float(self.model.segment) * self.sample_rate)
        stride = int((1 - SEGMENT_OVERLAP) * segment_frames)
        segments = max(1, -(-n // stride))
        done = 0

        def callback(info: dict) -> None:
            nonlocal done
            if info.get("state") == "end":
                done += 1
                progress(min(0.99, done / segments), f"separating, segment {done}/{segments}")

        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            progress(0.0, "separating")
            with torch.inference_mode():
                out = apply_model(
                    self.model, ((wav - mean) / std)[None], shifts=0, split=True, overlap=SEGMENT_OVERLAP,
                    callback=callback,
                )[0]
        finally:
            torch.set_num_threads(previous)
        out = (out * std + mean).numpy()  # (stems, model channels, frames)
        progress(1.0, "separated")
        stems = {}
        for name, stem in zip(self.stems, out):
            stem = stem.T
            stems[name] = np.ascontiguousarray(stem.mean(axis=1, keepdims=True) if channels == 1 else stem, dtype=np.float32)
        return stems
