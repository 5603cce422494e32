"""OmniSeg3D's two-level point-query protocol (hierarchical mIoU, paper Table 1).

For a query pixel q and two nested ground-truth masks M_L1 ⊂ M_L2 (here: a part and the
object holding it), the score map s (similarity of every pixel to q) is thresholded at the
best threshold for each level: IoU_Li = max_th IoU({p : s(p) >= th}, M_Li). The mean of the
two is the pair's score; mIoU_Li averages over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gsseg.eval.metrics.contingency import compact


@dataclass
class QueryPair:
    """One query: pixel (y, x) inside ground-truth ``part`` whose ``obj`` strictly contains it."""

    part: int
    obj: int
    y: int
    x: int


def interior_pixel(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of ``mask [H,W]`` farthest from its boundary (first in row-major order on ties)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("empty mask has no interior pixel")
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), mask.shape)
    return int(y), int(x)


def best_threshold_iou(score: np.ndarray, mask: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """Best IoU over all thresholds of ``score [H,W]`` against ``mask [H,W]``, exactly.

    Every threshold selects the pixels with score >= th, i.e. a top-k set at a break between
    distinct score values; all of them are evaluated. Pixels outside ``valid`` are ignored.
    Returns (iou, threshold); (0, inf) for an empty mask.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    m = np.asarray(mask, dtype=bool).ravel()
    if valid is not None:
        keep = np.asarray(valid, dtype=bool).ravel()
        s, m = s[keep], m[keep]
    total = int(m.sum())
    if total == 0 or s.size == 0:
        return 0.0, float("inf")
    order = np.argsort(-s, kind="stable")
    s_sorted, tp = s[order], np.cumsum(m[order])
    k = np.arange(1, s.size + 1)
    last = np.append(s_sorted[1:] != s_sorted[:-1], True)  # a threshold can only cut between distinct values
    iou = np.where(last, tp / (total + k - tp), -1.0)
    best = int(np.argmax(iou))
    return float(iou[best]), float(s_sorted[best])


def hierarchical_query(
    score: np.ndarray, mask_l1: np.ndarray, mask_l2: np.ndarray, valid: np.ndarray | None = None
) -> tuple[float, float]:
    """(IoU_L1, IoU_L2) of one score map against the nested masks, each at its best threshold."""
    return best_threshold_iou(score, mask_l1, valid)[0], best_threshold_iou(score, mask_l2, valid)[0]


def query_pairs(gt_part: np.ndarray, gt_object: np.ndarray, min_size: int = 20, background: int = 0) -> list[QueryPair]:
    """Part ⊂ object pairs of one view, each with its query pixel (the part's interior pixel).

    A part (label != ``background``, >= ``min_size`` pixels) pairs with the object label most of
    its pixels carry, when that object is also not background and strictly larger than the part
    in this view (so the two levels differ). gt_part, gt_object: [H,W] labels.
    """
    gt_part, gt_object = np.asarray(gt_part), np.asarray(gt_object)
    if gt_part.shape != gt_object.shape:
        raise ValueError("part and object label maps differ in size")
    part_vals, part_index = compact(gt_part)
    obj_vals, obj_index = compact(gt_object)
    joint = np.bincount(
        part_index.ravel() * len(obj_vals) + obj_index.ravel(), minlength=len(part_vals) * len(obj_vals)
    ).reshape(len(part_vals), len(obj_vals))
    obj_area = joint.sum(0)
    pairs = []
    for i, part in enumerate(part_vals):
        area = joint[i].sum()
        if part == background or area < max(min_size, 1):
            continue
        j = int(np.argmax(joint[i]))
        if obj_vals[j] == background or obj_area[j] <= area:
            continue
        y, x = interior_pixel(part_index == i)
        pairs.append(QueryPair(int(part), int(obj_vals[j]), y, x))
    return pairs


def masks_score_map(patch_index: np.ndarray, membership: np.ndarray, y: int, x: int) -> np.ndarray:
    """Score map of the input 2D masks for a query pixel: [H,W] float64.

    score(p) = (masks containing both p and q) / (masks containing q), so thresholds select the
    pixels shared by at least k of q's masks (exactly q's masks when they are nested); 0 when no
    mask holds q.
    """
    membership = np.asarray(membership, dtype=bool)
    q = int(patch_index[y, x])
    mine = membership[:, q]
    n = int(mine.sum())
    if n == 0:
        return np.zeros(np.shape(patch_index))
    shared = membership[mine].sum(axis=0) / n  # [P]
    return shared[np.asarray(patch_index)]
