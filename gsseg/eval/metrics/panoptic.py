"""Scene-level panoptic quality (PQ^scene, Panoptic Lifting) and matched mIoU of flat segmentations.

A segment is an identity's pixels over ALL evaluation views of the scene (ids must be
consistent across views, as ground-truth ids and per-Gaussian labels are). Predicted and
ground-truth segments match when IoU > 0.5 (such a match is unique);
PQ = Σ_TP IoU / (|TP| + ½|FP| + ½|FN|) = SQ · RQ with RQ = |TP| / (|TP| + ½|FP| + ½|FN|).
Ground-truth ``void`` pixels (background, by default label 0) are removed from predicted
segments, and a predicted segment lying mostly (> 50 %) on void is not a false positive
(the COCO panoptic convention). The prediction's ``unassigned`` label is not a segment.
All identities form one class (instance ground truth has no semantic classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from gsseg.eval.metrics.contingency import compact, iou_from_counts, overlap_counts


@dataclass
class PanopticResult:
    """pq, sq, rq in [0,1]; tp, fp, fn counts; miou: one-to-one matched mean IoU over ground-truth segments."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int
    miou: float


def _stack(maps: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(m, dtype=np.int64).ravel() for m in maps]) if len(maps) else np.zeros(0, np.int64)


def segment_ious(
    gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], void: int | None = 0, unassigned: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scene-level IoU between every ground-truth and predicted segment.

    gts, preds: per-view [H,W] label maps (same sizes view by view). Returns (iou [G,Q],
    gt labels [G], pred labels [Q], void fraction of each predicted segment [Q]).
    """
    if len(gts) != len(preds):
        raise ValueError(f"{len(preds)} predicted views for {len(gts)} ground-truth views")
    for g, p in zip(gts, preds):
        if np.shape(g) != np.shape(p):
            raise ValueError(f"prediction {list(np.shape(p))} and ground truth {list(np.shape(g))} differ in size")
    gt, pred = _stack(gts), _stack(preds)
    g_vals, g_index = compact(gt)
    p_vals, p_index = compact(pred)
    joint = overlap_counts(g_index, p_index, len(g_vals), len(p_vals))
    p_area = joint.sum(0)
    is_void = (g_vals == void) if void is not None else np.zeros(len(g_vals), dtype=bool)
    void_count = joint[is_void].sum(0)
    void_frac = np.divide(void_count, p_area, out=np.zeros(len(p_vals)), where=p_area > 0)
    g_rows = ~is_void
    p_cols = (p_vals != unassigned) if unassigned is not None else np.ones(len(p_vals), dtype=bool)
    inter = joint[g_rows][:, p_cols]
    iou = iou_from_counts(inter, joint[g_rows].sum(1), (p_area - void_count)[p_cols])
    return iou, g_vals[g_rows], p_vals[p_cols], void_frac[p_cols]


def panoptic_quality_scene(
    gts: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    void: int | None = 0,
    unassigned: int | None = 0,
    iou_threshold: float = 0.5,
) -> PanopticResult:
    """PQ^scene, SQ, RQ and matched mIoU of per-view predictions against per-view ground truth."""
    iou, g_vals, p_vals, void_frac = segment_ious(gts, preds, void, unassigned)
    n_g, n_p = iou.shape
    match = iou > iou_threshold
    tp = int(match.sum())
    sum_iou = float(iou[match].sum())
    fn = n_g - int(match.any(axis=1).sum())
    fp = int((~match.any(axis=0) & (void_frac <= 0.5)).sum())
    denom = tp + 0.5 * fp + 0.5 * fn
    pq = sum_iou / denom if denom else float("nan")
    rq = tp / denom if denom else float("nan")
    sq = sum_iou / tp if tp else 0.0
    if n_g == 0:
        miou = float("nan")
    elif n_p == 0:
        miou = 0.0
    else:
        rows, cols = linear_sum_assignment(-iou)
        miou = float(iou[rows, cols].sum() / n_g)
    return PanopticResult(pq=pq, sq=sq, rq=rq, tp=tp, fp=fp, fn=fn, miou=miou)
