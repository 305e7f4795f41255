"""Loading the checkpoints reascribe ships: a missing or unreadable file is a ModelError that says which."""

from __future__ import annotations

from pathlib import Path

import torch

from reascribe.errors import ModelError


def load_checkpoint(path: Path, what: str) -> dict:
    """The tensors-and-plain-values dict saved at ``path``; ``what`` names the model ("drum model")."""
    if not path.exists():
        raise ModelError(f"The {what} is missing ({path}); reinstall reascribe.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # weights only: never runs pickled code
    except Exception as exc:  # a truncated or foreign file: say which, not a pickle traceback
        raise ModelError(f"The {what} {path} cannot be read ({exc}); reinstall reascribe.") from exc
