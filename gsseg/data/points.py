"""Sparse point clouds (``points3d.ply``: x, y, z float + red, green, blue uchar)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from gsseg.errors import file_error
from gsseg.utils.atomic import atomic_path


def read_points_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a point-cloud PLY.

    Returns:
        xyz: [P,3] float32 positions.
        rgb: [P,3] float32 colours in [0,1] (0.5 grey when the file has no colours).
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "point cloud file not found")
    try:
        ply = PlyData.read(str(path))
    except Exception as e:  # plyfile raises several unrelated types on malformed input
        raise file_error(path, f"cannot read PLY ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if "vertex" not in ply:
        raise file_error(path, "PLY has no 'vertex' element")
    v = ply["vertex"].data
    names = set(v.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise file_error(path, "PLY vertices need x, y, z properties")
    xyz = np.stack([v["x"], v["y"], v["z"]], axis=-1).astype(np.float32)
    colour_keys = next((k for k in (("red", "green", "blue"), ("r", "g", "b")) if set(k) <= names), None)
    if colour_keys is None:
        rgb = np.full_like(xyz, 0.5)
    else:
        raw = np.stack([v[k] for k in colour_keys], axis=-1)
        if np.issubdtype(raw.dtype, np.integer):
            rgb = raw.astype(np.float32) / float(np.iinfo(raw.dtype).max)
        else:
            rgb = np.clip(raw.astype(np.float32), 0.0, 1.0)
    if not np.isfinite(xyz).all():
        keep = np.isfinite(xyz).all(axis=1)
        xyz, rgb = xyz[keep], rgb[keep]
    return xyz, rgb.astype(np.float32)


def write_points_ply(path: str | Path, xyz: np.ndarray, rgb: np.ndarray | None = None) -> None:
    """Atomically write ``xyz [P,3]`` and ``rgb [P,3]`` in [0,1] (uchar on disk) as a binary PLY."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    if rgb is None:
        rgb = np.full_like(xyz, 0.5)
    rgb8 = np.clip(np.round(np.asarray(rgb, dtype=np.float64).reshape(-1, 3) * 255.0), 0, 255).astype(np.uint8)
    if len(rgb8) != len(xyz):
        raise ValueError(f"xyz has {len(xyz)} points but rgb has {len(rgb8)}")
    data = np.empty(
        len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    for i, k in enumerate("xyz"):
        data[k] = xyz[:, i]
    for i, k in enumerate(("red", "green", "blue")):
        data[k] = rgb8[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(data, "vertex")], text=False).write(str(tmp))
