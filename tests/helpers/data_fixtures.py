"""Helpers for the data tests: synthetic cameras and tiny datasets written to disk.

Camera poses here are built by hand (look-at in OpenCV axes, OpenGL flip written out
explicitly) so the loaders are checked against an independent implementation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gsseg.data.cameras import Cameras

GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def look_at_w2c(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """[4,4] float64 OpenCV world-to-camera: +z towards ``target``, +y down (world ``up`` is image-up)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ eye
    return w2c


def orbit_cameras(
    n: int,
    width: int = 40,
    height: int = 30,
    radius: float = 4.0,
    elevation: float = 2.0,
    focal: float = 36.0,
    target=(0.0, 0.0, 0.3),
    prefix: str = "view",
    seed: int = 0,
) -> Cameras:
    """``n`` cameras on a jittered circle looking at ``target``, with slightly different intrinsics each."""
    rng = np.random.default_rng(seed)
    viewmats, Ks = [], []
    for i in range(n):
        a = 2 * np.pi * i / n + rng.uniform(-0.1, 0.1)
        eye = (radius * np.cos(a), radius * np.sin(a), elevation + rng.uniform(-0.2, 0.2))
        viewmats.append(look_at_w2c(eye, target))
        fx, fy = focal * rng.uniform(0.95, 1.05), focal * rng.uniform(0.95, 1.05)
        cx, cy = width / 2 + rng.uniform(-1.5, 1.5), height / 2 + rng.uniform(-1.5, 1.5)
        Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    names = [f"{prefix}_{i:03d}" for i in range(n)]
    return Cameras(torch.tensor(np.stack(viewmats)), torch.tensor(Ks), [width] * n, [height] * n, names)


def write_png(path: Path, width: int, height: int, seed: int = 0, mode: str = "RGB") -> np.ndarray:
    """Write a random 8-bit image and return it as uint8 ``[H,W,C]`` (or ``[H,W]``)."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    if channels == 1:
        arr = arr[..., 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """Write ``labels [H,W]`` as a 16-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels.astype(np.uint16)).save(path)


def gl_frame(cams: Cameras, i: int, file_path: str) -> dict:
    """A transforms-json frame for camera ``i`` with its own intrinsics, OpenGL c2w written by hand."""
    w2c = cams.viewmats[i].double().numpy()
    c2w_gl = np.linalg.inv(w2c) @ GL_FLIP
    K = cams.Ks[i].double()
    return {
        "file_path": file_path,
        "transform_matrix": c2w_gl.tolist(),
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "w": int(cams.widths[i]),
        "h": int(cams.heights[i]),
    }


def make_transforms_dataset(root: Path, train: Cameras, test: Cameras | None = None, ext: str = ".png") -> Path:
    """Write ``transforms_train.json`` (+ ``transforms_test.json``) and random images for ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, cams in (("train", train), ("test", test)):
        if cams is None:
            continue
        frames = []
        for i, name in enumerate(cams.names):
            write_png(root / "images" / f"{name}{ext}", int(cams.widths[i]), int(cams.heights[i]), seed=i)
            frames.append(gl_frame(cams, i, f"images/{name}{ext}"))
        (root / f"transforms_{split}.json").write_text(json.dumps({"frames": frames}, indent=1))
    return root


def make_colmap_dataset(root: Path, cams: Cameras, text: bool = False, points=None, ext: str = ".png") -> Path:
    """Write ``images/`` and a COLMAP model in ``sparse/0`` for ``cams``."""
    from gsseg.data.colmap import write_colmap_model

    for i, name in enumerate(cams.names):
        write_png(root / "images" / f"{name}{ext}", int(cams.widths[i]), int(cams.heights[i]), seed=i)
    write_colmap_model(root / "sparse" / "0", cams, [f"{n}{ext}" for n in cams.names], points=points, text=text)
    return root


def cameras_by_name(cams: Cameras) -> dict[str, tuple[np.ndarray, np.ndarray, int, int]]:
    """name -> (viewmat [4,4], K [3,3], width, height) as numpy."""
    return {
        n: (cams.viewmats[i].numpy(), cams.Ks[i].numpy(), int(cams.widths[i]), int(cams.heights[i]))
        for i, n in enumerate(cams.names)
    }


def assert_same_cameras(a: Cameras, b: Cameras, atol: float = 1e-5) -> None:
    """Same names (any order), viewmats, Ks and sizes."""
    da, db = cameras_by_name(a), cameras_by_name(b)
    assert sorted(da) == sorted(db)
    for n in da:
        va, ka, wa, ha = da[n]
        vb, kb, wb, hb = db[n]
        np.testing.assert_allclose(va, vb, atol=atol, err_msg=f"viewmat of {n}")
        np.testing.assert_allclose(ka, kb, atol=atol * 100, err_msg=f"K of {n}")
        assert (wa, ha) == (wb, hb), n
