"""A stand-in for the one part of torchaudio that transkun uses (``functional.melscale_fbanks``).

Real torchaudio pins CUDA builds of torch and would add gigabytes; see ``reascribe.compat``.
"""

from reascribe.compat.torchaudio import functional

__all__ = ["functional"]
