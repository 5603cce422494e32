"""One writer at a time per run (or mask store): an exclusive ``flock`` on ``<folder>/.lock``.

The lock belongs to the open file, so the OS drops it when the holder exits or is killed
(``kill -9`` included): a ``.lock`` file left behind by a dead process never blocks anyone.
The file is never deleted (deleting it would let two processes lock two different files of
the same name); it holds the holder's pid and command, shown to whoever is refused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import ModuleType
from typing import Iterator

from gsseg.errors import GssegError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

LOCK_NAME = ".lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path, command: str, what: str = "run", create: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if needed and ``create``) while the ``with`` block runs.

    Raises GssegError naming the folder and the holder's pid when another process holds it.
    """
    folder = Path(folder)
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip() or "another process"
                raise GssegError(
                    f"{folder}: this {what} is being written by {holder}; wait for it to finish "
                    f"or stop it (the lock {path} is released when that process exits)"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} (gsseg {command})\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
