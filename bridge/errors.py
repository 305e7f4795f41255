"""Exceptions whose message is a sentence a musician can act on.

Every error that reaches a user (REAPER console, drop-folder note, CLI stderr) is one of these; its
``str()`` is shown as is, so it names the file or value and, where there is one, the fix.
"""


class ReascribeError(Exception):
    """Root of all errors reascribe reports to the user."""


class RequestError(ReascribeError):
    """A request or command is malformed, expired, hostile or names something that is not there."""


class AudioError(ReascribeError):
    """Audio cannot be read, is empty or silent, or the item's section cannot be cut."""


class ModelError(ReascribeError):
    """A model cannot be loaded or failed while running."""


class JobCancelled(ReascribeError):
    """The user cancelled the job."""

    def __init__(self, message: str = "The job was cancelled.") -> None:
        super().__init__(message)
