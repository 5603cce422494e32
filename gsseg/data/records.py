"""What a format loader hands to :class:`gsseg.data.SceneDataset`: one record per view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gsseg.errors import file_error


@dataclass
class ViewRecord:
    """One posed view at its native (full) resolution.

    Attributes:
        name: unique image stem, used for every per-view file (depth, gt, masks).
        image_path: the full-resolution image.
        width, height: native image size in pixels.
        K: [3,3] float64 intrinsics (pixel centre of pixel (u, v) at (u + 0.5, v + 0.5)).
        viewmat: [4,4] float64 world-to-camera, OpenCV axes.
        split: "train" or "test".
        depth_path: the view's depth map when the dataset names one (else ``depth/<name>.npy``).
        depth_scale: metres (scene units) per stored depth unit, for integer depth PNGs.
    """

    name: str
    image_path: Path
    width: int
    height: int
    K: np.ndarray
    viewmat: np.ndarray
    split: str
    depth_path: Path | None = None
    depth_scale: float = 1.0


@dataclass
class ParsedScene:
    """A loader's result.

    Attributes:
        format: "transforms" or "colmap".
        source: the file or folder the cameras came from (named in error messages).
        views: every view, train and test.
        points: ([P,3] float32 xyz, [P,3] float32 rgb in [0,1]) read from the model, or None.
        points_file: a PLY to read sparse points from lazily when ``points`` is None.
    """

    format: str
    source: Path
    views: list[ViewRecord]
    points: tuple[np.ndarray, np.ndarray] | None = None
    points_file: Path | None = None


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    if not path.is_file():
        raise file_error(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise file_error(path, f"cannot read file ({e})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise file_error(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def unique_names(paths: list[str]) -> list[str]:
    """Image stems for relative image paths, disambiguated by their folders when stems collide.

    ``["train/r_0.png", "test/r_0.png"]`` gives ``["train_r_0", "test_r_0"]``; ``["images/a.png"]``
    gives ``["a"]``.
    """
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    out = []
    for p, s in zip(paths, stems):
        if counts[s] == 1:
            out.append(s)
        else:
            parts = [q for q in Path(p).with_suffix("").parts if q not in (".", "..", "/")]
            out.append("_".join(parts))
    return out
