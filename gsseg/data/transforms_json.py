"""NeRF-Blender / nerfstudio / instant-ngp ``transforms*.json`` datasets.

Two layouts are read:

* ``transforms_train.json`` (+ optional ``transforms_test.json``): one file per split;
* ``transforms.json``: one file, split by ``train_filenames`` / ``test_filenames`` (or
  ``val_filenames``) when present, otherwise every ``test_every``-th frame (8: Mip-NeRF 360's
  rule) by sorted image path is a test view.

Frames whose image file is missing are left out (the dataset reports how many; ``strict``
refuses them). ``transform_matrix`` is an OpenGL camera-to-world matrix, converted once to
OpenCV world-to-camera with :meth:`Cameras.from_opengl_c2w`.

Fields read, at the top level or overridden per frame:

* intrinsics ``fl_x``/``fl_y``/``cx``/``cy`` or ``camera_angle_x`` (+ ``camera_angle_y``);
  ``w``/``h`` (default: the image's own size);
* lens distortion, undistorted by :mod:`gsseg.data.undistort`: ``k1, k2, k3, p1, p2`` (OpenCV's
  radial-tangential model); ``camera_model: OPENCV_FISHEYE`` or instant-ngp's ``is_fisheye``
  (``k1..k4`` of OpenCV's fisheye model); ``camera_model: FULL_OPENCV`` (``k1..k6, p1, p2``, OpenCV's
  rational model). A non-zero ``k4`` on any other camera is refused: nerfstudio and OpenCV
  disagree on what it means;
* depth: nerfstudio ``depth_file_path`` (+ ``depth_unit_scale_factor``), instant-ngp
  ``depth_path`` (+ ``integer_depth_scale``);
* ``ply_file_path``: sparse points (default ``points3d.ply``).

Fields knowingly ignored (listed by ``gsseg info``): ``aabb_scale``, ``scale``, ``offset`` (where
instant-ngp puts the scene in its unit cube; Gaussians need no bound), ``sharpness`` (instant-ngp's
blur score, written to help pick frames; every listed frame is used), ``applied_transform``
(nerfstudio's record of the transform it already applied to the poses and points), ``mask_path``
(per-frame loss masks), ``enable_depth_loading``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsseg.data.cameras import Cameras
from gsseg.data.images import IMAGE_SUFFIXES, image_size
from gsseg.data.records import ParsedScene, ViewRecord, ordinal, read_json, unique_names
from gsseg.data.undistort import Distortion, fisheye_distortion, opencv_distortion
from gsseg.errors import GssegError, file_error
from gsseg.utils.atomic import write_json

SPLIT_FILES = {"train": "transforms_train.json", "test": "transforms_test.json"}
SINGLE_FILE = "transforms.json"
CAMERA_MODELS = (None, "OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "OPENCV_FISHEYE", "FULL_OPENCV")
IGNORED_FIELDS = (
    "aabb_scale",
    "scale",
    "offset",
    "sharpness",
    "applied_transform",
    "mask_path",
    "enable_depth_loading",
)


@dataclass
class _Frame:
    """One parsed frame before naming: native size, intrinsics and OpenGL camera-to-world."""

    rel_path: str
    image_path: Path
    width: int
    height: int
    K: np.ndarray
    c2w_gl: np.ndarray
    split: str
    depth_path: Path | None
    depth_scale: float
    source: Path
    distortion: Distortion | None = None


def is_transforms_dataset(root: Path) -> bool:
    """Whether ``root`` holds ``transforms_train.json`` or ``transforms.json``."""
    return (root / SPLIT_FILES["train"]).is_file() or (root / SINGLE_FILE).is_file()


def load_transforms(root: Path, test_every: int = 8, check_images: bool = True) -> ParsedScene:
    """Parse a transforms dataset in ``root`` (see the module docstring for the layouts).

    ``check_images`` reads every image header so size mismatches are reported at load time
    rather than mid-training. Frames whose image file is missing are returned in ``missing``.
    """
    frames: list[_Frame] = []
    missing: list[tuple[Path, str]] = []
    tops: list[dict[str, Any]] = []
    if (root / SPLIT_FILES["train"]).is_file():
        source = root / SPLIT_FILES["train"]
        top = _read_top(source)
        tops.append(top)
        frames += _parse_frames(source, top, lambda i, p: "train", check_images, missing)
        rule = f"{SPLIT_FILES['train']} / {SPLIT_FILES['test']}"
        test_file = root / SPLIT_FILES["test"]
        if test_file.is_file():
            test_top = _read_top(test_file)
            tops.append(test_top)
            frames += _parse_frames(test_file, test_top, lambda i, p: "test", check_images, missing)
            if not any(f.split == "test" for f in frames):
                raise file_error(test_file, "has no frames" + _missing_note(missing) + " (empty test split)")
        else:
            rule = f"{SPLIT_FILES['train']} only (no test views)"
    else:
        source = root / SINGLE_FILE
        top = _read_top(source)
        tops.append(top)
        split_of, rule = _single_file_splitter(source, top, test_every)
        frames += _parse_frames(source, top, split_of, check_images, missing)
        if rule == "auto":
            if test_every < 0:
                raise GssegError(f"test_every must be >= 0, got {test_every}")
            order = sorted(range(len(frames)), key=lambda i: frames[i].rel_path)
            for rank, i in enumerate(order):
                frames[i].split = "test" if test_every > 0 and rank % test_every == 0 and len(frames) > 1 else "train"
            rule = (
                f"every {ordinal(test_every)} frame held out as a test view (by sorted file name; "
                f"{SINGLE_FILE} has no split)"
                if test_every > 0
                else "no test views (test_every 0)"
            )
    if not any(f.split == "train" for f in frames):
        raise file_error(source, "no training frames" + _missing_note(missing) + " (empty train split)")

    same_file: dict[Path, _Frame] = {}
    for f in frames:  # ./images/../images/x.png and images/x.png are one image: it would get two view names
        first = same_file.setdefault(f.image_path.resolve(), f)
        if first is not f and first.rel_path != f.rel_path:  # the same text twice: "listed twice" below
            raise file_error(
                f.source, f"image '{f.rel_path}' is the same file as '{first.rel_path}' (listed twice); list it once"
            )
    names = unique_names([f.rel_path for f in frames])
    seen: dict[str, str] = {}
    for name, f in zip(names, frames):
        if name in seen:
            what = (
                "is listed twice" if seen[name] == f.rel_path else f"and '{seen[name]}' both map to view name '{name}'"
            )
            raise file_error(f.source, f"image '{f.rel_path}' {what}")
        seen[name] = f.rel_path

    cams = Cameras.from_opengl_c2w(
        torch.from_numpy(np.stack([f.c2w_gl for f in frames])),
        torch.from_numpy(np.stack([f.K for f in frames])),
        [f.width for f in frames],
        [f.height for f in frames],
        names,
    )
    views = [
        ViewRecord(
            name,
            f.image_path,
            f.width,
            f.height,
            f.K,
            cams.viewmats[i].double().numpy(),
            f.split,
            f.depth_path,
            f.depth_scale,
            f.distortion,
        )
        for i, (name, f) in enumerate(zip(names, frames))
    ]
    ply = top.get("ply_file_path")
    points_file = (root / str(ply)) if isinstance(ply, str) else root / "points3d.ply"
    ignored = sorted(
        {k for t in tops for k in IGNORED_FIELDS if k in t}
        | {k for t in tops for fr in t["frames"] if isinstance(fr, dict) for k in IGNORED_FIELDS if k in fr}
    )
    return ParsedScene(
        "transforms",
        source,
        views,
        points_file=points_file if points_file.is_file() else None,
        split_rule=rule,
        missing=missing,
        listed=len(frames) + len(missing),
        ignored=ignored,
    )


def _missing_note(missing: list[tuple[Path, str]]) -> str:
    return f" with an image file ({len(missing)} listed frames have none)" if missing else ""


def write_transforms(path: str | Path, cameras: Cameras, file_paths: list[str], **extra: Any) -> None:
    """Atomically write ``cameras`` as a transforms JSON (OpenGL camera-to-world, pixel intrinsics).

    Shared intrinsics are written once at the top level, otherwise per frame. ``file_paths`` are
    relative to the JSON's folder; ``extra`` keys are added at the top level.
    """
    if len(file_paths) != len(cameras):
        raise ValueError("one file path per camera is needed")
    c2w = cameras.to_opengl_c2w()
    intr = [
        {
            "w": int(cameras.widths[i]),
            "h": int(cameras.heights[i]),
            "fl_x": float(cameras.Ks[i, 0, 0]),
            "fl_y": float(cameras.Ks[i, 1, 1]),
            "cx": float(cameras.Ks[i, 0, 2]),
            "cy": float(cameras.Ks[i, 1, 2]),
        }
        for i in range(len(cameras))
    ]
    shared = all(d == intr[0] for d in intr)
    frames = []
    for i, fp in enumerate(file_paths):
        frame: dict[str, Any] = {"file_path": fp, "transform_matrix": c2w[i].tolist()}
        if not shared:
            frame.update(intr[i])
        frames.append(frame)
    out: dict[str, Any] = {"camera_model": "OPENCV", **(intr[0] if shared else {}), **extra, "frames": frames}
    write_json(path, out)


def _read_top(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise file_error(path, "top level must be a JSON object with a 'frames' list")
    if "frames" not in data:
        raise file_error(path, "missing key 'frames'")
    if not isinstance(data["frames"], list):
        raise file_error(path, "'frames' must be a list")
    return data


def _single_file_splitter(path: Path, top: dict[str, Any], test_every: int):
    """Split rule for ``transforms.json``: (split of frame i, rule in words); the rule "auto" means
    every ``test_every``-th frame, assigned once the frames with an image are known."""
    train_list = _filename_set(path, top, "train_filenames")
    test_list = _filename_set(path, top, "test_filenames")
    test_key = "test_filenames"
    if test_list is None:
        test_list = _filename_set(path, top, "val_filenames")
        test_key = "val_filenames"
    if train_list is not None or test_list is not None:
        if test_list is not None and not test_list:
            raise file_error(path, f"'{test_key}' is empty (empty test split)")

        def by_list(i: int, rel: str) -> str | None:
            key = _norm(rel)
            if test_list is not None and key in test_list:
                return "test"
            if train_list is None or key in train_list:
                return "train"
            return None

        keys = [k for k, v in (("train_filenames", train_list), (test_key, test_list)) if v is not None]
        return by_list, f"{' / '.join(keys)} in {path.name}"
    return (lambda i, rel: "auto"), "auto"


def _filename_set(path: Path, top: dict[str, Any], key: str) -> set[str] | None:
    if key not in top:
        return None
    value = top[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise file_error(path, f"'{key}' must be a list of file paths")
    return {_norm(v) for v in value}


def _norm(rel: str) -> str:
    """Split-list key for a file path: no leading './', no image extension."""
    p = rel.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    stem, dot, ext = p.rpartition(".")
    if dot and "." + ext in IMAGE_SUFFIXES:
        return stem
    return p


def _parse_frames(
    path: Path, top: dict[str, Any], split_of, check_images: bool, missing: list[tuple[Path, str]]
) -> list[_Frame]:
    """The frames of one JSON with an image file; those without are appended to ``missing``."""
    out = []
    for i, frame in enumerate(top["frames"]):
        where = f"frame {i}"
        if not isinstance(frame, dict):
            raise file_error(path, f"{where} must be a JSON object")
        for key in ("file_path", "transform_matrix"):
            if key not in frame:
                raise file_error(path, f"{where}: missing key '{key}'")
        rel = frame["file_path"]
        if not isinstance(rel, str) or not rel:
            raise file_error(path, f"{where}: 'file_path' must be a non-empty string")
        split = split_of(i, rel)
        if split is None:
            continue
        c2w = _matrix(path, frame["transform_matrix"], where)
        merged = {**top, **frame}
        image_path, shown = _resolve_image(path, rel)
        if image_path is None:
            missing.append((shown, f"listed in {path.name} {where} as '{rel}'"))
            continue
        width, height = _size(path, merged, image_path, where, check_images)
        K, distortion = _intrinsics(path, merged, width, height, where)
        rel_to_root = (
            image_path.relative_to(path.parent).as_posix()
            if image_path.is_relative_to(path.parent)
            else image_path.name
        )
        depth_path, depth_scale = _depth(path, merged, where)
        out.append(
            _Frame(rel_to_root, image_path, width, height, K, c2w, split, depth_path, depth_scale, path, distortion)
        )
    return out


def _depth(path: Path, d: dict[str, Any], where: str) -> tuple[Path | None, float]:
    """nerfstudio ``depth_file_path`` (``.npy`` in scene units, or an integer PNG scaled by
    ``depth_unit_scale_factor``, default 1e-3 = millimetres)."""
    key = "depth_file_path" if "depth_file_path" in d else "depth_path"
    rel = d.get(key)
    if rel is None:
        return None, 1.0
    if not isinstance(rel, str) or not rel:
        raise file_error(path, f"{where}: '{key}' must be a non-empty string")
    depth_path = path.parent / rel.replace("\\", "/")
    if depth_path.suffix == ".npy":
        return depth_path, 1.0
    if key == "depth_path":  # instant-ngp: stored value x integer_depth_scale = scene units
        return depth_path, _number(path, d, "integer_depth_scale", where) if "integer_depth_scale" in d else 1e-3
    scale = _number(path, d, "depth_unit_scale_factor", where) if "depth_unit_scale_factor" in d else 1e-3
    return depth_path, scale


def _resolve_image(path: Path, rel: str) -> tuple[Path | None, Path]:
    """(the image a ``file_path`` names, or None when absent; the path to name when it is absent).
    Relative to the JSON, with or without an extension."""
    base = path.parent / rel.replace("\\", "/")
    if base.suffix in IMAGE_SUFFIXES:
        candidates = [base]
    else:
        candidates = [base.with_name(base.name + s) for s in IMAGE_SUFFIXES] + [base]
    for c in candidates:
        if c.is_file():
            return c, c
    return None, candidates[0] if len(candidates) == 1 else base.with_name(base.name + ".png")


def _matrix(path: Path, value: Any, where: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise file_error(path, f"{where}: 'transform_matrix' must be a 4x4 list of numbers") from None
    if m.shape == (3, 4):
        m = np.concatenate([m, [[0.0, 0.0, 0.0, 1.0]]])
    if m.shape != (4, 4):
        raise file_error(path, f"{where}: 'transform_matrix' must be a finite 4x4 matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise file_error(path, f"{where}: 'transform_matrix' must be a finite 4x4 matrix, but it contains NaN or Inf")
    R = m[:3, :3]
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-2:
        raise file_error(
            path, f"{where}: the rotation part of 'transform_matrix' is not orthonormal (a scaled camera matrix?)"
        )
    if np.linalg.det(R) < 0:
        raise file_error(
            path, f"{where}: the rotation part of 'transform_matrix' is a mirror (determinant -1), not a camera pose"
        )
    if np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-6:
        raise file_error(
            path, f"{where}: the bottom row of 'transform_matrix' must be [0, 0, 0, 1], got {m[3].tolist()}"
        )
    return m


def _number(path: Path, d: dict[str, Any], key: str, where: str) -> float:
    v = d[key]
    try:
        ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        ok = False
    if not ok:
        shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:30] + f"... ({len(repr(v))} characters)"
        raise file_error(path, f"{where}: '{key}' must be a finite number, got {shown}")
    return float(v)


def _angle(path: Path, d: dict[str, Any], key: str, where: str) -> float:
    """A field of view in radians, in (0, pi)."""
    a = _number(path, d, key, where)
    if not 0 < a < math.pi:
        raise file_error(path, f"{where}: '{key}' must be a field of view in radians in (0, pi), got {a:g}")
    return a


FOCAL_RANGE = (1e-2, 1e3)  # focal length / longest image side: ~178 degrees .. ~0.06 degrees of view


def _size(path: Path, d: dict[str, Any], image_path: Path, where: str, check_images: bool) -> tuple[int, int]:
    has_w, has_h = "w" in d, "h" in d
    if has_w and has_h:
        w, h = int(_number(path, d, "w", where)), int(_number(path, d, "h", where))
        if w <= 0 or h <= 0:
            raise file_error(path, f"{where}: 'w' and 'h' must be positive, got {w}x{h}")
        if check_images:
            check_image_size(image_path, (w, h), path.name)
        return w, h
    return image_size(image_path)


def check_image_size(image_path: Path, expected: tuple[int, int], source_name: str) -> None:
    """Raise when the image's header size differs from the size ``source_name`` declares."""
    aw, ah = image_size(image_path)
    w, h = expected
    if (aw, ah) == (w, h):
        return
    hint = ""
    if aw < w and w % aw == 0 and h % ah == 0 and w // aw == h // ah:
        hint = (
            f"; the image looks downscaled by {w // aw}: keep full-size images in the listed folder and pass a "
            "downscale factor instead"
        )
    raise file_error(image_path, f"image is {aw}x{ah} but {source_name} says {w}x{h}{hint}")


def _intrinsics(path: Path, d: dict[str, Any], w: int, h: int, where: str) -> tuple[np.ndarray, Distortion | None]:
    """[3,3] float64 intrinsics at (w, h) and the lens distortion (None: pinhole)."""
    model = d.get("camera_model")
    if model not in CAMERA_MODELS:
        raise file_error(
            path,
            f"camera_model '{model}' is not supported (use one of {', '.join(str(m) for m in CAMERA_MODELS[1:])}); "
            "convert the images to a pinhole or OpenCV camera first",
        )
    coeffs = {k: _number(path, d, k, where) for k in ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2") if k in d}
    c = {k: coeffs.get(k, 0.0) for k in ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2")}
    fisheye = model == "OPENCV_FISHEYE" or d.get("is_fisheye") is True
    distortion: Distortion | None
    if fisheye:
        if c["p1"] or c["p2"] or c["k5"] or c["k6"]:
            raise file_error(path, f"{where}: a fisheye camera takes k1..k4 only, got {coeffs}")
        distortion = fisheye_distortion(c["k1"], c["k2"], c["k3"], c["k4"])
    elif model == "FULL_OPENCV":
        distortion = opencv_distortion(c["k1"], c["k2"], c["p1"], c["p2"], c["k3"], c["k4"], c["k5"], c["k6"])
    else:
        if c["k4"] or c["k5"] or c["k6"]:
            raise file_error(
                path,
                f"{where}: k4/k5/k6 on a non-fisheye camera are ambiguous (nerfstudio's r^8 term or OpenCV's rational "
                "model): set camera_model to FULL_OPENCV (OpenCV's rational model) or OPENCV_FISHEYE",
            )
        distortion = opencv_distortion(c["k1"], c["k2"], c["p1"], c["p2"], c["k3"])
    if "fl_x" in d:
        fx = _number(path, d, "fl_x", where)
    elif "camera_angle_x" in d:
        fx = 0.5 * w / math.tan(0.5 * _angle(path, d, "camera_angle_x", where))
    else:
        raise file_error(path, f"{where}: missing key 'fl_x' or 'camera_angle_x'")
    if "fl_y" in d:
        fy = _number(path, d, "fl_y", where)
    elif "camera_angle_y" in d:
        fy = 0.5 * h / math.tan(0.5 * _angle(path, d, "camera_angle_y", where))
    else:
        fy = fx
    cx = _number(path, d, "cx", where) if "cx" in d else 0.5 * w
    cy = _number(path, d, "cy", where) if "cy" in d else 0.5 * h
    if fx <= 0 or fy <= 0:
        raise file_error(path, f"{where}: focal lengths must be positive, got fl_x={fx:g} fl_y={fy:g}")
    lo, hi = (r * max(w, h) for r in FOCAL_RANGE)
    if not (lo <= fx <= hi and lo <= fy <= hi):
        raise file_error(
            path,
            f"{where}: focal lengths fl_x={fx:g} fl_y={fy:g} are not plausible for a {w}x{h} image "
            f"(expected {lo:g} to {hi:g} pixels)",
        )
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64), distortion
