"""OmniSeg3D's released protocol: a threshold fixed on a reference view, then transferred.

The prediction of a query is ``score > thr``. The threshold is swept over
``arange(-0.3, 2, 1/128)`` and the one with the best IoU on the reference view (the first on ties)
is kept; the query's IoU is the mean IoU over the *other* views where the GT mask is non-empty.
Picking the best threshold separately in every view (gsseg's former point query) is an upper
bound on this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLDS = np.arange(-0.3, 2.0, 1.0 / 128.0)


def threshold_ious(score: np.ndarray, mask: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """IoU of {score > thr} with ``mask`` for every threshold: [T] (0 for an empty union)."""
    s = np.asarray(score, dtype=np.float64).ravel()
    m = np.asarray(mask, dtype=bool).ravel()
    th = np.asarray(thresholds, dtype=np.float64)
    # pixels above each threshold, by sorting once: count(s > th) = P - searchsorted(s, th, 'right')
    s_all, s_in = np.sort(s), np.sort(s[m])
    above = s.size - np.searchsorted(s_all, th, side="right")
    inter = s_in.size - np.searchsorted(s_in, th, side="right")
    union = above + m.sum() - inter
    return np.divide(inter, union, out=np.zeros(th.shape), where=union > 0)


def transferred_threshold_iou(
    ref_score: np.ndarray,
    ref_mask: np.ndarray,
    scores: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    thresholds: np.ndarray = THRESHOLDS,
) -> tuple[float, float]:
    """(mean IoU over the other views with a non-empty mask, threshold chosen on the reference).

    ref_score, ref_mask: [H,W] of the reference view; scores, masks: the other views' [H,W] maps.
    The IoU is NaN when no other view shows the object.
    """
    if len(scores) != len(masks):
        raise ValueError(f"{len(scores)} score maps for {len(masks)} masks")
    th = float(np.asarray(thresholds)[int(np.argmax(threshold_ious(ref_score, ref_mask, thresholds)))])
    ious = []
    for s, m in zip(scores, masks):
        m = np.asarray(m, dtype=bool)
        if np.shape(s) != m.shape:
            raise ValueError(f"score map {list(np.shape(s))} and mask {list(m.shape)} differ in size")
        if m.any():
            ious.append(float(threshold_ious(s, m, np.array([th]))[0]))
    return (float(np.mean(ious)) if ious else float("nan")), th
