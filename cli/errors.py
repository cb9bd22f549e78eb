"""The CLI's exit codes (README "Exit codes") and the one error it shows a person: a line, no traceback."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    REFUSED = 1
    """The engagement (or Temporal) refused: an illegal command, a second start, no such engagement."""
    BAD_INPUT = 2
    """The command line, a spec or a filter is wrong; nothing was sent."""
    UNREACHABLE = 3
    """Temporal cannot be reached or the connection settings are wrong."""
    NO_WORKER = 4
    """Temporal answered but no worker did within CLI_WORKER_WAIT; ``status`` still printed Temporal's record."""
    UNEXPECTED = 5
    """Anything else, in one line (ENGAGEMENT_DEBUG=1 shows the traceback)."""
    INTERRUPTED = 130
    """Ctrl-C."""


class CliError(Exception):
    """A refusal to show the person as ``error: <message>``, with its exit code."""

    def __init__(self, message: str, code: Exit = Exit.REFUSED) -> None:
        super().__init__(message)
        self.code = code
