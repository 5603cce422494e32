"""Atomic writes: write to a temporary file beside the target, then rename over it.

A killed process therefore never leaves a half-written checkpoint, mask file or export.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

TEMP_MARK = ".gsseg-"  # between the target's stem and mkstemp's 8 random characters
TEMP_RE = re.compile(r"\..+" + re.escape(TEMP_MARK) + r"[a-z0-9_]{8}\.tmp(\.[^.]+)*")


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    Use for writers that want a file name (``np.savez``, ``torch.save``, ``PIL.Image.save``).
    The temporary keeps the target's suffix so format sniffing by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}{TEMP_MARK}", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp made it owner-only; give it a normal file's mode
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """``open()`` that only replaces ``path`` once the ``with`` block completes."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Atomically write a compressed ``.npz``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            # mypy matches **arrays against numpy's keyword-only ``allow_pickle: bool`` parameter
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporaries (``.<stem>.gsseg-<8 random>.tmp<suffix>``)."""
    return TEMP_RE.fullmatch(name) is not None


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete the temporary files (:func:`is_temporary`) that killed writers left in ``folder``;
    other dot-files (a view named ``.v.tmp``) are kept. Call only while holding the folder's lock
    (``gsseg.utils.run_lock``), so no live writer's temporary is removed."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(f".*{TEMP_MARK}*.tmp*"):
            if p.is_file() and is_temporary(p.name):
                p.unlink(missing_ok=True)
