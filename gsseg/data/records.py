"""What a format loader hands to :class:`gsseg.data.SceneDataset`: one record per view."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gsseg.data.undistort import Distortion
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
        distortion: the lens distortion of ``K``'s camera, or None for a pinhole camera.
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
    distortion: Distortion | None = None


@dataclass
class ParsedScene:
    """A loader's result.

    Attributes:
        format: "transforms" or "colmap".
        source: the file or folder the cameras came from (named in error messages).
        views: every view, train and test.
        points: ([P,3] float32 xyz, [P,3] float32 rgb in [0,1]) read from the model, or None.
        points_file: a PLY to read sparse points from lazily when ``points`` is None.
        split_rule: how train and test were chosen, in words (shown by ``gsseg info``).
        missing: (image path, where it is listed) of every listed frame whose image file is absent.
        listed: how many frames / posed images the source lists (missing ones included).
        ignored: fields present in the source that are read but knowingly not used.
    """

    format: str
    source: Path
    views: list[ViewRecord]
    points: tuple[np.ndarray, np.ndarray] | None = None
    points_file: Path | None = None
    split_rule: str = ""
    missing: list[tuple[Path, str]] = field(default_factory=list)
    listed: int = 0
    ignored: list[str] = field(default_factory=list)


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
    except ValueError as e:  # an integer of more than 4300 digits
        raise file_error(path, f"malformed JSON ({e})") from None
    except RecursionError:
        raise file_error(path, "malformed JSON: nested too deeply") from None


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 8th, 11th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


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
