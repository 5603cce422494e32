"""Segmentation injectivity (SI), from the Ultrametric Feature Fields paper (no official code).

For a ground-truth segment A, draw pixel pairs p1, p2 in A; t = the cut maximising
IoU(A, F(p1, t)); the score of the pair is IoU(F(p1, t), F(p2, t)), where F(p, t) is the
predicted segment containing p at cut t. SI = mean over pairs and segments. Segments of one
flat cut are equal or disjoint, so a pair scores 1 when both pixels fall in the same predicted
segment at the cut chosen for p1, else 0: SI measures whether one object is ever split
while the best-fitting cut is used.
"""

from __future__ import annotations

import numpy as np

from gsseg.eval.metrics.contingency import compact, gt_segments, sample_in_segments, segment_pixels
from gsseg.eval.metrics.covering import DEFAULT_MIN_SIZE, DEFAULT_SAMPLES, as_stack, cut_ious


def injectivity_per_segment(
    gt: np.ndarray,
    preds: np.ndarray,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    background: int | None = 0,
    unassigned: int | None = 0,
    count_unassigned: bool = True,
) -> dict[int, float]:
    """SI of every scored ground-truth segment: {gt label: value in [0,1]}.

    gt: [H,W] labels; preds: [T,H,W] predicted labels per cut. With ``count_unassigned`` off, a
    pair whose p1 is unassigned at the chosen cut scores 0 (and the unassigned label is never
    the best-fitting segment).
    """
    gt = np.asarray(gt)
    stack = as_stack(preds, gt.shape)
    values, gt_index = compact(gt)
    areas = np.bincount(gt_index.ravel(), minlength=len(values))
    segs = gt_segments(values, areas, min_size, background)
    if len(segs) == 0:
        return {}
    order, starts = segment_pixels(gt_index, len(values))
    rng = np.random.default_rng(seed)
    p1 = sample_in_segments(order, starts, segs, samples, rng)
    p2 = sample_in_segments(order, starts, segs, samples, rng)
    best_iou = np.full(p1.shape, -1.0)
    same = np.zeros(p1.shape)
    for pred in stack:
        iou, pred_index = cut_ious(gt_index, len(values), pred, unassigned, count_unassigned)
        flat = pred.ravel()
        fit = iou[segs[:, None], pred_index.ravel()[p1]]
        hit = flat[p1] == flat[p2]
        if unassigned is not None and not count_unassigned:
            hit &= flat[p1] != unassigned
        better = fit > best_iou
        best_iou = np.where(better, fit, best_iou)
        same = np.where(better, hit, same)
    return {int(values[s]): float(v) for s, v in zip(segs, same.mean(axis=1))}


def segmentation_injectivity(gt: np.ndarray, preds: np.ndarray, **kwargs) -> float:
    """SI of one image: the mean of :func:`injectivity_per_segment` (NaN when nothing is scored)."""
    per = injectivity_per_segment(gt, preds, **kwargs)
    return float(np.mean(list(per.values()))) if per else float("nan")
