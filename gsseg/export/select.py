"""Which segments of a cut to export: given ids, or the segments under clicks."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from gsseg.errors import GssegError
from gsseg.render.tables import TableCache
from gsseg.segment.clicks import Click
from gsseg.segment.labelmaps import render_label_map


def parse_ids(text: str) -> list[int]:
    """``"3,5,8"`` -> [3, 5, 8] (GssegError on anything else)."""
    try:
        ids = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise GssegError(f"--objects {text!r}: expected comma-separated segment ids, e.g. 3,5,8") from None
    if not ids or min(ids) < 1:
        raise GssegError(f"--objects {text!r}: segment ids are positive integers")
    return ids


def segment_at(click: Click, labels: np.ndarray, tables: TableCache, means: torch.Tensor, k_nearest: int = 8) -> int:
    """Segment id (0 = none) under one click: the cut's label map at the pixel, or the most
    common non-zero label of the ``k_nearest`` Gaussians around a 3D point."""
    if click.is_point:
        k = min(k_nearest, len(labels))
        _, idx = cKDTree(means.detach().cpu().numpy()).query(np.asarray(click.point, np.float64), k=k)
        near = labels[np.atleast_1d(idx)]
        near = near[near > 0]
        return int(np.bincount(near).argmax()) if near.size else 0
    view, cx, cy = click.pixel()
    if view not in tables.cameras.names:
        raise GssegError(f"click {click}: no view named {view!r}")
    table = tables.get(view)
    x, y = int(math.floor(cx)), int(math.floor(cy))
    if not (0 <= x < table.width and 0 <= y < table.height):
        raise GssegError(f"click {click}: pixel outside the {table.width}x{table.height} image of {view}")
    return int(render_label_map(table, labels)[y, x])


def segments_under_clicks(
    clicks: list[Click], labels: np.ndarray, tables: TableCache, means: torch.Tensor
) -> list[int]:
    """Ids of the segments under the positive clicks minus those under the negative ones."""
    pos = {segment_at(c, labels, tables, means) for c in clicks if c.positive}
    neg = {segment_at(c, labels, tables, means) for c in clicks if not c.positive}
    return sorted((pos - neg) - {0})
