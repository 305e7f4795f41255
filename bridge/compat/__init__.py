"""Stand-ins for heavy dependencies that a model package imports but barely uses."""

from __future__ import annotations

import importlib.util
import logging
import sys

log = logging.getLogger(__name__)


def install_torchaudio_shim() -> bool:
    """Make ``import torchaudio`` give our minimal stand-in, unless a real torchaudio is installed.

    transkun calls only ``torchaudio.functional.melscale_fbanks``; installing torchaudio would pull
    CUDA builds of torch. Returns True when the stand-in is (now) the module that ``import`` finds.
    """
    current = sys.modules.get("torchaudio")
    if current is not None:
        return current.__name__ == "reascribe.compat.torchaudio"
    if importlib.util.find_spec("torchaudio") is not None:
        log.debug("a real torchaudio is installed; not installing the stand-in")
        return False
    from reascribe.compat import torchaudio

    sys.modules["torchaudio"] = torchaudio
    sys.modules["torchaudio.functional"] = torchaudio.functional
    log.debug("installed the torchaudio stand-in")
    return True
