"""reascribe: transcription for REAPER through a local daemon."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1
