"""Normalized covering (NC) of ground-truth segments by a stack of predicted segmentations.

Ultrametric Feature Fields scores a hierarchy by its horizontal cuts: ``preds [T,H,W]`` holds
one flat label map per threshold / cut. Definitions (``reference/objectives.md`` §2.6):

- sampled NC (the official code): for each ground-truth segment g, draw ``samples`` pixels
  p in g; for each p take the predicted segment containing p at every cut and keep the best
  IoU with g; NC(g) = mean over samples, NC(image) = mean over segments;
- dense NC (the code's "dense" variant, the paper's formula): NC(g) = max IoU of g with any
  predicted segment of any cut.

The code keeps the 200 largest predicted segments and lumps the rest into label 200, which
then counts as an ordinary segment. gsseg's analogue is the ``unassigned`` label (0 by
default): with ``count_unassigned`` it is one more segment (as coded); without it, a pixel
that no segment claims scores IoU 0 (the exclusive variant).
"""

from __future__ import annotations

import numpy as np

from gsseg.eval.metrics.contingency import (
    compact,
    gt_segments,
    iou_from_counts,
    overlap_counts,
    sample_in_segments,
    segment_pixels,
)

DEFAULT_SAMPLES = 100
DEFAULT_MIN_SIZE = 20


def as_stack(preds: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Predictions as [T,H,W] int64 (a single [H,W] map becomes T = 1); ValueError on a size mismatch."""
    stack = np.asarray(preds)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[1:] != tuple(shape):
        raise ValueError(f"predictions must be [T,{shape[0]},{shape[1]}], got {list(stack.shape)}")
    if stack.shape[0] == 0:
        raise ValueError("predictions hold no label map")
    return stack.astype(np.int64, copy=False)


def cut_ious(
    gt_index: np.ndarray, n_gt: int, pred: np.ndarray, unassigned: int | None, count_unassigned: bool
) -> tuple[np.ndarray, np.ndarray]:
    """IoU of every ground-truth segment with every predicted segment of one cut.

    Returns (iou [n_gt,K], pred_index [H,W] compact predicted labels); the unassigned column is
    zeroed unless ``count_unassigned``.
    """
    values, index = compact(pred)
    iou = iou_from_counts(overlap_counts(gt_index, index, n_gt, len(values)))
    if unassigned is not None and not count_unassigned:
        iou[:, values == unassigned] = 0.0
    return iou, index


def covering_per_segment(
    gt: np.ndarray,
    preds: np.ndarray,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    background: int | None = 0,
    unassigned: int | None = 0,
    count_unassigned: bool = True,
    dense: bool = False,
) -> dict[int, float]:
    """NC of every scored ground-truth segment: {gt label: value in [0,1]}.

    gt: [H,W] int labels; preds: [T,H,W] (or [H,W]) predicted labels per cut. Segments smaller
    than ``min_size`` pixels and the ``background`` label are not scored. ``dense`` gives the
    unsampled variant (best IoU over all predicted segments of all cuts).
    """
    gt = np.asarray(gt)
    stack = as_stack(preds, gt.shape)
    values, gt_index = compact(gt)
    areas = np.bincount(gt_index.ravel(), minlength=len(values))
    segs = gt_segments(values, areas, min_size, background)
    if len(segs) == 0:
        return {}
    if dense:
        best = np.zeros(len(segs))
        for pred in stack:
            iou, _ = cut_ious(gt_index, len(values), pred, unassigned, count_unassigned)
            best = np.maximum(best, iou[segs].max(axis=1))
        return {int(values[s]): float(b) for s, b in zip(segs, best)}
    order, starts = segment_pixels(gt_index, len(values))
    pix = sample_in_segments(order, starts, segs, samples, np.random.default_rng(seed))
    best = np.zeros(pix.shape)
    for pred in stack:
        iou, pred_index = cut_ious(gt_index, len(values), pred, unassigned, count_unassigned)
        best = np.maximum(best, iou[segs[:, None], pred_index.ravel()[pix]])
    return {int(values[s]): float(b) for s, b in zip(segs, best.mean(axis=1))}


def normalized_covering(gt: np.ndarray, preds: np.ndarray, **kwargs) -> float:
    """NC of one image: the mean of :func:`covering_per_segment` (NaN when no segment is scored)."""
    per = covering_per_segment(gt, preds, **kwargs)
    return float(np.mean(list(per.values()))) if per else float("nan")


def mean_over_images(values: list[float]) -> float:
    """Mean of per-image values, ignoring images with nothing to score (NaN if none)."""
    vals = [v for v in values if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def mask_ious(
    gt_index: np.ndarray, n_gt: int, patch_index: np.ndarray, membership: np.ndarray, count_unassigned: bool
) -> np.ndarray:
    """IoU of every ground-truth segment with the best mask covering each patch: [n_gt,P].

    patch_index: [H,W] patch ids; membership: [M,P] bool. Patches covered by no mask score the
    IoU of the "no mask" region with the segment when ``count_unassigned``, else 0.
    """
    n_patches = membership.shape[1]
    joint = overlap_counts(gt_index, np.asarray(patch_index, dtype=np.int64), n_gt, n_patches)  # [G,P]
    gt_area = joint.sum(1)
    patch_area = joint.sum(0)
    member = membership.astype(np.int64)
    inter = joint @ member.T  # [G,M]
    iou = iou_from_counts(inter, gt_area, member @ patch_area)
    best = np.zeros((n_gt, n_patches))
    for m in range(len(membership)):  # one mask at a time keeps memory at [G,P]
        covered = membership[m]
        best[:, covered] = np.maximum(best[:, covered], iou[:, m : m + 1])
    uncovered = ~membership.any(axis=0)
    if count_unassigned and uncovered.any():
        free = iou_from_counts(
            joint[:, uncovered].sum(1, keepdims=True), gt_area, patch_area[uncovered].sum(keepdims=True)
        )
        best[:, uncovered] = free
    return best


def covering_from_masks(
    gt: np.ndarray,
    patch_index: np.ndarray,
    membership: np.ndarray,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    background: int | None = 0,
    count_unassigned: bool = True,
    dense: bool = False,
) -> dict[int, float]:
    """NC of ground-truth segments by a set of possibly overlapping 2D masks (the input masks).

    The masks containing a sampled pixel play the role of its segments at every cut: NC(g) is
    the mean over samples p in g of the best IoU(g, m) over masks m containing p. gt: [H,W];
    patch_index: [H,W]; membership: [M,P] bool. Returns {gt label: value}.
    """
    gt = np.asarray(gt)
    if np.shape(patch_index) != gt.shape:
        raise ValueError(f"patch map {list(np.shape(patch_index))} and ground truth {list(gt.shape)} differ in size")
    values, gt_index = compact(gt)
    areas = np.bincount(gt_index.ravel(), minlength=len(values))
    segs = gt_segments(values, areas, min_size, background)
    if len(segs) == 0:
        return {}
    best = mask_ious(gt_index, len(values), patch_index, np.asarray(membership, dtype=bool), count_unassigned)
    if dense:
        return {int(values[s]): float(best[s].max()) for s in segs}
    order, starts = segment_pixels(gt_index, len(values))
    pix = sample_in_segments(order, starts, segs, samples, np.random.default_rng(seed))
    got = best[segs[:, None], np.asarray(patch_index).ravel()[pix]]
    return {int(values[s]): float(v) for s, v in zip(segs, got.mean(axis=1))}
