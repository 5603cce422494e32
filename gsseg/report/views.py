"""Render a run's views: photo, render, depth and the current segment labels of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.gaussians.scene import GaussianScene


@dataclass
class ViewRender:
    """One view of a run. photo, render: uint8 [H,W,3]; depth: float32 [H,W] z-depth (0 where
    nothing is drawn); alpha: float32 [H,W]; labels: int32 [H,W] segment ids (0 = unassigned)
    or None without segments; psnr: render vs photo in dB."""

    name: str
    photo: np.ndarray
    render: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    labels: np.ndarray | None
    psnr: float


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float [H,W,3] in [0,1] -> uint8 [H,W,3]."""
    return (image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def pick_views(ds, which: str) -> list[str]:
    """Stems of ``which`` ("test", "train" or "all"); GssegError when that split is empty."""
    if which not in ("test", "train", "all"):
        raise GssegError(f"unknown --views {which!r}; use test, train or all")
    names = ds.names(which)
    if not names:
        raise GssegError(f"{ds.root}: the dataset has no {which} views; use --views train or --views all")
    return names


def label_maps(scene: GaussianScene, ds, labels: np.ndarray, cut_dir: Path, views: list[str]) -> dict[str, np.ndarray]:
    """{stem: int32 [H,W]}: the cut's saved ``<stem>.png`` where ``gsseg segment`` wrote one at the
    working size, else rendered from the per-Gaussian ``labels [N]`` through a contribution table."""
    from PIL import Image

    from gsseg.render.tables import TableCache
    from gsseg.segment.labelmaps import render_label_map

    maps: dict[str, np.ndarray] = {}
    missing = []
    for name in views:
        png = cut_dir / f"{name}.png"
        if png.is_file():
            arr = np.asarray(Image.open(png)).astype(np.int32)
            if arr.shape[::-1] == tuple(ds.size(name)):
                maps[name] = arr
                continue
        missing.append(name)
    if missing:
        cams = ds.cameras("all")
        sub = cams[[cams.index_of(n) for n in missing]]
        tables = TableCache(scene.means, scene.quats, scene.scales, scene.opacities, sub, max_tables=1)
        for name in missing:
            maps[name] = render_label_map(tables.get(name), labels)
    return maps
