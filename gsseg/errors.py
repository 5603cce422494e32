"""User-facing errors.

Raise :class:`GssegError` for anything the *user* can fix (a missing file, a malformed
JSON, a wrong option). The CLI prints its message as one line and exits non-zero, with no
traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from pathlib import Path


class GssegError(Exception):
    """An error caused by user input, reported as one clear line."""


def file_error(path: str | Path, problem: str) -> GssegError:
    """``GssegError`` whose message names the file first: ``"<path>: <problem>"``."""
    return GssegError(f"{path}: {problem}")


class Interrupted(Exception):
    """Ctrl-C during a verb (raised instead of KeyboardInterrupt, which Typer turns into a silent exit)."""
