"""``RUN/segments/``: one folder per cut plus an index.

```
RUN/segments/index.json        {"version", "last": [cut names of the latest `gsseg segment`],
                                "cuts": [{name, kind, value, threshold, segments, parent, views, ...}]}
RUN/segments/<cut>/labels.npy  int32 [N] per-Gaussian label, 0 = unassigned
RUN/segments/<cut>/cut.json    the index entry plus "segment_parents": {id: parent id in the parent cut}
RUN/segments/<cut>/<stem>.png  uint16 label map per requested view
```

A cut folder is written beside its target and swapped in, so an existing cut is never
half-overwritten.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gsseg.errors import GssegError, file_error
from gsseg.utils.atomic import atomic_path, current_umask, write_json

INDEX_VERSION = 1
CUT_KINDS = ("threshold", "regions", "auto", "click", "argmax")


@dataclass
class Cut:
    """One segmentation of the Gaussians.

    name: folder name (``t0.300``, ``n016``, ``auto0``, ``click``, ``argmax``); kind: one of
    CUT_KINDS; value: what was asked (threshold, region count, auto level, click threshold);
    threshold: the hierarchy threshold used (None for clicks / argmax); labels: [N] int32;
    parent: name of the next coarser cut it nests in (same hierarchy), or None.
    """

    name: str
    kind: str
    value: float
    labels: np.ndarray
    threshold: float | None = None
    parent: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_segments(self) -> int:
        return int(len(np.unique(self.labels[self.labels > 0])))


def cut_name(kind: str, value: float) -> str:
    """Folder name of a cut: ``t0.300``, ``n016``, ``auto0``, ``click`` or ``argmax``."""
    if kind == "threshold":
        return f"t{value:.3f}"
    if kind == "regions":
        return f"n{int(value):03d}"
    if kind == "auto":
        return f"auto{int(value)}"
    if kind in ("click", "argmax"):
        return kind
    raise ValueError(f"unknown cut kind {kind!r}")


def nest_cuts(cuts: list[Cut]) -> None:
    """Set ``parent`` of hierarchy cuts (those with a threshold) to the next coarser one; equal
    thresholds keep the first name as the coarser."""
    hierarchy = [(c.threshold, c) for c in cuts if c.threshold is not None]
    ordered = [c for _, c in sorted(hierarchy, key=lambda tc: -tc[0])]
    for coarse, fine in zip(ordered[:-1], ordered[1:]):
        fine.parent = coarse.name


def segment_parents(fine: np.ndarray, coarse: np.ndarray) -> dict[int, int]:
    """For each segment id of ``fine [N]`` (> 0), the ``coarse [N]`` id most of its Gaussians carry."""
    keep = fine > 0
    f, c = fine[keep].astype(np.int64), coarse[keep].astype(np.int64)
    if f.size == 0:
        return {}
    n_c = int(c.max()) + 1
    keys, counts = np.unique(f * n_c + c, return_counts=True)
    kf, kc = keys // n_c, keys % n_c
    order = np.lexsort((kc, -counts, kf))
    first = np.ones(len(order), bool)
    first[1:] = kf[order][1:] != kf[order][:-1]
    return {int(kf[i]): int(kc[i]) for i in order[first]}


@contextlib.contextmanager
def replace_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh folder beside ``target``; on success it replaces ``target`` (the old one is
    renamed away first, then deleted), on failure it is removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _default_permissions(tmp)
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_siblings(target: Path) -> None:
    """Delete the ``.<name>.tmp-*`` / ``.<name>.old-*`` folders a killed :func:`replace_dir` left
    beside ``target``. Two writers of one target at once are not supported (the last rename wins)."""
    for p in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if p.is_dir() and re.fullmatch(rf"\.{re.escape(target.name)}\.(tmp|old)-[^/]+", p.name):
            shutil.rmtree(p, ignore_errors=True)


def _default_permissions(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; give them the usual umask-based modes."""
    umask = current_umask()
    folder.chmod(0o777 & ~umask)
    for p in folder.rglob("*"):
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def cut_entry(cut: Cut, views: list[str]) -> dict[str, Any]:
    return {
        "name": cut.name,
        "kind": cut.kind,
        "value": cut.value,
        "threshold": cut.threshold,
        "segments": cut.num_segments,
        "parent": cut.parent,
        "views": list(views),
        **cut.info,
    }


def write_cut_files(folder: Path, cut: Cut, views: list[str], parents: dict[int, int]) -> None:
    """labels.npy and cut.json of ``cut`` into ``folder`` (label maps are written by the caller)."""
    with atomic_path(folder / "labels.npy") as tmp:
        np.save(tmp, cut.labels.astype(np.int32))
    entry = cut_entry(cut, views)
    entry["segment_parents"] = {str(k): v for k, v in sorted(parents.items())}
    write_json(folder / "cut.json", entry)


class SegmentsDir:
    """Reader/writer of ``RUN/segments``."""

    def __init__(self, run_root: str | Path) -> None:
        self.root = Path(run_root) / "segments"

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def read_index(self) -> dict[str, Any]:
        """The index; an empty one when there is none yet."""
        if not self.index_path.is_file():
            return {"version": INDEX_VERSION, "last": [], "cuts": []}
        try:
            index = json.loads(self.index_path.read_text())
            if not isinstance(index.get("cuts"), list):
                raise ValueError("no 'cuts' list")
            return index
        except (ValueError, AttributeError) as e:
            raise file_error(self.index_path, f"malformed segmentation index ({e}); re-run `gsseg segment`") from None

    def update_index(self, cuts: list[dict[str, Any]]) -> dict[str, Any]:
        """Add/replace ``cuts`` entries and mark them as the latest segmentation. Older entries
        whose parent was replaced lose the parent link (it belonged to another hierarchy)."""
        index = self.read_index()
        new = {c["name"] for c in cuts}
        kept = []
        for c in index["cuts"]:
            if c.get("name") in new:
                continue
            if c.get("parent") in new:
                c = {**c, "parent": None}
            kept.append(c)
        index = {"version": INDEX_VERSION, "last": [c["name"] for c in cuts], "cuts": kept + list(cuts)}
        write_json(self.index_path, index)
        return index

    def cut_dir(self, name: str) -> Path:
        return self.root / name

    def names(self) -> list[str]:
        return [c["name"] for c in self.read_index()["cuts"]]

    def entry(self, name: str) -> dict[str, Any]:
        """cut.json of a cut; GssegError naming the available cuts when it does not exist."""
        path = self.cut_dir(name) / "cut.json"
        if not path.is_file():
            names = self.names()
            hint = f"available cuts: {', '.join(names)}" if names else "run `gsseg segment RUN` first"
            raise GssegError(f"{self.root}: no cut named {name!r} ({hint})")
        try:
            return json.loads(path.read_text())
        except ValueError as e:
            raise file_error(path, f"malformed cut description ({e}); re-run `gsseg segment`") from None

    def labels(self, name: str, num_gaussians: int | None = None) -> np.ndarray:
        """labels.npy of a cut -> int32 [N]; GssegError when missing or of the wrong length."""
        self.entry(name)
        path = self.cut_dir(name) / "labels.npy"
        try:
            labels = np.load(path).astype(np.int32)
        except (OSError, ValueError) as e:
            raise file_error(path, f"unreadable labels ({e}); re-run `gsseg segment`") from None
        if labels.ndim != 1 or (num_gaussians is not None and len(labels) != num_gaussians):
            raise file_error(
                path,
                f"has {labels.shape} labels but the scene has {num_gaussians} Gaussians; "
                "the scene changed since: re-run `gsseg segment`",
            )
        return labels

    def default_cut(self) -> str:
        """The coarsest auto cut of the latest segmentation, else its coarsest cut of any kind."""
        index = self.read_index()
        if not index["cuts"]:
            run = self.root.parent
            raise GssegError(f"{run}: no segmentation yet; run `gsseg segment {run} --auto` first")
        by_name = {c["name"]: c for c in index["cuts"]}
        last = [by_name[n] for n in index.get("last", []) if n in by_name] or index["cuts"]
        autos = [c for c in last if c["kind"] == "auto"]
        pool = autos or last
        return min(pool, key=lambda c: c["segments"] if c["segments"] > 0 else float("inf"))["name"]
