"""Where gsseg keeps what it derives from a dataset it may not write to.

Undistorted and resized photos are written once per dataset, working size and camera to
``$GSSEG_CACHE`` (default ``$XDG_CACHE_HOME/gsseg``, i.e. ``~/.cache/gsseg``), under
``datasets/<folder name>-<hash of its absolute path>/``: a dataset folder is often read-only
(a shared capture, a mounted disk), so nothing is written inside it. Each file's name carries a
hash of everything it depends on (the photo's path, size and modification time, the camera, its
distortion and the working size), so a changed photo or setting is never served stale. Deleting
the folder is always safe; ``GSSEG_CACHE=off`` keeps everything in memory instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gsseg.utils.atomic import atomic_path

CACHE_ENV = "GSSEG_CACHE"
VERSION = 1  # bump when the stored rasters change meaning


def cache_root() -> Path | None:
    """The cache folder, or None when ``GSSEG_CACHE`` is ``off`` / ``0`` / empty-but-set."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        if value.strip().lower() in ("", "0", "off", "none", "false"):
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "gsseg"


def digest(obj: Any, n: int = 16) -> str:
    """Stable hex digest of a JSON-serialisable value."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dataset_cache_dir(root: Path) -> Path | None:
    """``<cache>/datasets/<name>-<hash>`` for the dataset folder ``root`` (None when caching is off)."""
    base = cache_root()
    if base is None:
        return None
    root = Path(root).resolve()
    return base / "datasets" / f"{root.name or 'root'}-{digest(str(root), 10)}"


def file_stamp(path: Path) -> list[Any]:
    """What identifies a file's content cheaply: absolute path, size, modification time (ns)."""
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def is_writable_dir(path: Path) -> bool:
    """Whether new files may be made in ``path``: writable for this user *and* not marked read-only
    in its mode bits (root may write anywhere; a folder published read-only is still respected)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def derived_dir(root: Path, name: str) -> Path:
    """Where data derived from the dataset folder ``root`` is kept (masks, ...): ``root/<name>`` when
    it exists or ``root`` is writable, else ``<cache>/datasets/<dataset>/<name>``."""
    inside = Path(root) / name
    if inside.exists() or is_writable_dir(Path(root)):
        return inside
    base = dataset_cache_dir(root)
    return inside if base is None else base / name


class RasterCache:
    """``.npy`` rasters in one folder, read memory-mapped; writes are atomic and failures silent
    (a full or read-only disk only costs the recomputation)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def path(self, name: str, key: Any) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{name}.{digest([VERSION, key])}.npy"

    def get(self, name: str, key: Any) -> np.ndarray | None:
        path = self.path(name, key)
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, name: str, key: Any, arr: np.ndarray) -> None:
        path = self.path(name, key)
        if path is None:
            return
        try:
            with atomic_path(path) as tmp:
                np.save(tmp, np.ascontiguousarray(arr), allow_pickle=False)
        except OSError:
            return
