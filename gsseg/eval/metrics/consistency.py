"""View consistency (VC) on a test view and its partner rotated by 10 degrees.

Ultrametric Feature Fields (``reference/objectives.md`` §2.6): for a ground-truth segment A
of view 1, draw pixels p in A that are visible in both views; t = the cut maximising
IoU(segment_t(p), A) in view 1; A1 = segment_t(p) in view 1, A2 = the partner view's
segment at cut t containing T(p), pulled back to view 1 through the depth warp T;
score = |A1 ∩ A2 ∩ V| / |(A1 ∪ A2) ∩ V| with V the pixels of view 1 visible in view 2.
VC = mean over samples and segments. Samples whose partner label is unassigned are skipped
(the code resamples them).

The warp uses ground-truth z-depth of both views: a view-1 pixel centre is lifted to 3D,
projected into view 2, and is visible when view 2's depth at that pixel agrees within a
relative tolerance.
"""

from __future__ import annotations

import numpy as np

from gsseg.eval.metrics.contingency import compact, gt_segments, overlap_counts, sample_in_segments, segment_pixels
from gsseg.eval.metrics.covering import DEFAULT_MIN_SIZE, DEFAULT_SAMPLES, as_stack, cut_ious

DEFAULT_DEPTH_TOLERANCE = 0.02


def depth_warp(
    depth1: np.ndarray,
    K1: np.ndarray,
    viewmat1: np.ndarray,
    depth2: np.ndarray,
    K2: np.ndarray,
    viewmat2: np.ndarray,
    rel_tol: float = DEFAULT_DEPTH_TOLERANCE,
) -> np.ndarray:
    """Where each pixel of view 1 lands in view 2: [H1,W1] int64 flat pixel id of view 2, -1 if not visible.

    depth1: [H1,W1], depth2: [H2,W2] z-depth (0 = no surface); K: [3,3] intrinsics; viewmat:
    [4,4] world-to-camera (OpenCV, pixel centres at +0.5). A pixel is visible when it has depth,
    lands inside view 2 in front of the camera, and view 2's depth there is within
    ``rel_tol`` (relative) of the warped depth.
    """
    depth1 = np.asarray(depth1, dtype=np.float64)
    depth2 = np.asarray(depth2, dtype=np.float64)
    K1, K2 = np.asarray(K1, dtype=np.float64), np.asarray(K2, dtype=np.float64)
    h1, w1 = depth1.shape
    h2, w2 = depth2.shape
    v, u = np.mgrid[0:h1, 0:w1].astype(np.float64)
    z = depth1
    x = (u + 0.5 - K1[0, 2]) / K1[0, 0] * z
    y = (v + 0.5 - K1[1, 2]) / K1[1, 1] * z
    cam1 = np.stack([x, y, z, np.ones_like(z)], axis=-1).reshape(-1, 4)
    rel = np.asarray(viewmat2, dtype=np.float64) @ np.linalg.inv(np.asarray(viewmat1, dtype=np.float64))
    cam2 = cam1 @ rel.T
    z2 = cam2[:, 2]
    ok = (z.ravel() > 0) & (z2 > 1e-9)
    safe = np.where(ok, z2, 1.0)
    u2 = K2[0, 0] * cam2[:, 0] / safe + K2[0, 2]
    v2 = K2[1, 1] * cam2[:, 1] / safe + K2[1, 2]
    col, row = np.floor(u2), np.floor(v2)
    ok &= (col >= 0) & (col < w2) & (row >= 0) & (row < h2)
    target = np.where(ok, row * w2 + col, 0).astype(np.int64)
    d2 = depth2.ravel()[target]
    ok &= (d2 > 0) & (np.abs(d2 - z2) <= rel_tol * np.abs(z2))
    return np.where(ok, target, -1).reshape(h1, w1)


def consistency_per_segment(
    gt1: np.ndarray,
    preds1: np.ndarray,
    preds2: np.ndarray,
    warp: np.ndarray,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    background: int | None = 0,
    unassigned: int | None = 0,
    count_unassigned: bool = True,
) -> dict[int, float]:
    """VC of every ground-truth segment of view 1 with visible pixels: {gt label: value}.

    gt1: [H1,W1] labels of view 1; preds1: [T,H1,W1] and preds2: [T,H2,W2] predicted labels of
    both views for the same T cuts; warp: [H1,W1] from :func:`depth_warp`.
    """
    gt1 = np.asarray(gt1)
    stack1 = as_stack(preds1, gt1.shape)
    stack2 = np.asarray(preds2)
    stack2 = stack2[None] if stack2.ndim == 2 else stack2
    if stack2.ndim != 3 or stack2.shape[0] != stack1.shape[0]:
        raise ValueError(f"partner predictions must be [{stack1.shape[0]},H,W], got {list(stack2.shape)}")
    warp = np.asarray(warp).ravel()
    visible = warp >= 0
    if warp.size != gt1.size:
        raise ValueError("warp and ground truth differ in size")
    values, gt_index = compact(gt1)
    areas = np.bincount(gt_index.ravel(), minlength=len(values))
    scored = gt_segments(values, areas, min_size, background)
    vis_index = np.where(visible, gt_index.ravel(), len(values))  # invisible pixels -> extra label
    vis_areas = np.bincount(vis_index, minlength=len(values) + 1)[: len(values)]
    segs = scored[vis_areas[scored] > 0]
    if len(segs) == 0:
        return {}
    order, starts = segment_pixels(vis_index, len(values) + 1)
    pix = sample_in_segments(order, starts, segs, samples, np.random.default_rng(seed))
    best_fit = np.full(pix.shape, -1.0)
    score = np.zeros(pix.shape)
    keep = np.zeros(pix.shape, dtype=bool)
    vis_ids = np.flatnonzero(visible)
    for pred1, pred2 in zip(stack1, stack2.astype(np.int64, copy=False)):
        iou, index1 = cut_ious(gt_index, len(values), pred1, unassigned, count_unassigned)
        flat1 = pred1.ravel()
        pulled = np.full(flat1.shape, np.iinfo(np.int64).min, dtype=np.int64)
        pulled[vis_ids] = pred2.ravel()[warp[vis_ids]]
        # overlaps of view-1 segments with pulled-back view-2 segments, inside V only
        a_vals, a_index = compact(flat1[vis_ids])
        b_vals, b_index = compact(pulled[vis_ids])
        joint = overlap_counts(a_index, b_index, len(a_vals), len(b_vals))
        ra, cb = joint.sum(1), joint.sum(0)
        pos = np.empty(flat1.shape, dtype=np.int64)
        pos[vis_ids] = np.arange(len(vis_ids))
        sa, sb = a_index[pos[pix]], b_index[pos[pix]]
        inter = joint[sa, sb]
        value = inter / (ra[sa] + cb[sb] - inter)
        fit = iou[segs[:, None], index1.ravel()[pix]]
        ok = np.ones(pix.shape, dtype=bool)
        if unassigned is not None:
            ok &= pulled[pix] != unassigned
            if not count_unassigned:
                value = np.where(flat1[pix] == unassigned, 0.0, value)
        better = fit > best_fit
        best_fit = np.where(better, fit, best_fit)
        score = np.where(better, value, score)
        keep = np.where(better, ok, keep)
    out = {}
    for row, s in enumerate(segs):
        if keep[row].any():
            out[int(values[s])] = float(score[row][keep[row]].mean())
    return out


def view_consistency(gt1: np.ndarray, preds1: np.ndarray, preds2: np.ndarray, warp: np.ndarray, **kwargs) -> float:
    """VC of one view pair: the mean of :func:`consistency_per_segment` (NaN when nothing is scored)."""
    per = consistency_per_segment(gt1, preds1, preds2, warp, **kwargs)
    return float(np.mean(list(per.values()))) if per else float("nan")
