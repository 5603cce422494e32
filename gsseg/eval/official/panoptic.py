"""PQ^scene as Panoptic Lifting's released code computes it, on class-agnostic label maps.

Mapping (``shared/parity/README.md``): GT label 0 is void and its pixels are removed from GT and
prediction alike; a prediction's label 0 (unassigned) is void; every other label is an instance of
one "thing" category. The remaining pixels of all views form one list, so a segment is an id over
every view (ids must be scene-consistent). The category is dropped (result NaN) when it occurs
nowhere or covers under 0.5 % of the kept pixels of the prediction or of the GT. Segments match
when IoU > 0.5 with IoU = |P n G| / (|P| + |G| - |G n pred-void| - |P n G|); an unmatched GT
segment more than half predicted void is no false negative. PQ and RQ are 0 on an empty
denominator, SQ is 0 without a true positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gsseg.eval.official.protocols import compact, pair_counts

MIN_CATEGORY_FRACTION = 0.005


@dataclass
class OfficialPanoptic:
    """pq, sq, rq (NaN when the category is dropped); tp, fp, fn counts; ``matches`` [(pred id, gt id,
    IoU)]; ``fn_ignored``: unmatched GT ids not counted as FN (more than half predicted void)."""

    pq: float
    sq: float
    rq: float
    tp: int = 0
    fp: int = 0
    fn: int = 0
    matches: list[tuple[int, int, float]] = field(default_factory=list)
    fn_ignored: list[int] = field(default_factory=list)


def panoptic_quality_official(
    gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> OfficialPanoptic:
    """PQ^scene of per-view predictions [H,W] (0 = unassigned) against per-view GT [H,W] (0 = void)."""
    if len(gts) != len(preds):
        raise ValueError(f"{len(preds)} predicted views for {len(gts)} ground-truth views")
    for g, p in zip(gts, preds):
        if np.shape(g) != np.shape(p):
            raise ValueError(f"prediction {list(np.shape(p))} and ground truth {list(np.shape(g))} differ in size")
    if not len(gts):
        return OfficialPanoptic(float("nan"), float("nan"), float("nan"))
    gt = np.concatenate([np.asarray(g).ravel() for g in gts])  # kept in the maps' own integer type
    pred = np.concatenate([np.asarray(p).ravel() for p in preds])
    kept = gt != 0
    gt, pred = gt[kept], pred[kept]
    things = int((pred != 0).sum())
    if gt.size == 0 or things < MIN_CATEGORY_FRACTION * gt.size:
        return OfficialPanoptic(float("nan"), float("nan"), float("nan"))
    g, g_vals = compact(gt)
    p, p_vals = compact(pred)
    g_area = np.bincount(g, minlength=len(g_vals))
    p_area = np.bincount(p, minlength=len(p_vals))
    void_col = np.flatnonzero(p_vals == 0)
    g_void = np.bincount(g[pred == 0], minlength=len(g_vals)) if len(void_col) else np.zeros(len(g_vals), np.int64)
    _, gx, py, inter = pair_counts(g, p, len(g_vals), len(p_vals))
    real = p_vals[py] != 0
    gx, py, inter = gx[real], py[real], inter[real]
    iou = inter / (p_area[py] + g_area[gx] - g_void[gx] - inter)
    hit = iou > iou_threshold
    matches = sorted((int(p_vals[b]), int(g_vals[a]), float(v)) for a, b, v in zip(gx[hit], py[hit], iou[hit]))
    g_matched = np.zeros(len(g_vals), dtype=bool)
    g_matched[gx[hit]] = True
    p_matched = np.zeros(len(p_vals), dtype=bool)
    p_matched[py[hit]] = True
    mostly_void = g_void > 0.5 * g_area
    fn_ids = ~g_matched & ~mostly_void
    tp = len(matches)
    fp = int((~p_matched & (p_vals != 0)).sum())
    fn = int(fn_ids.sum())
    total = float(sum(m[2] for m in matches))
    denom = tp + 0.5 * fp + 0.5 * fn
    return OfficialPanoptic(
        pq=total / denom if denom else 0.0,
        sq=total / tp if tp else 0.0,
        rq=tp / denom if denom else 0.0,
        tp=tp,
        fp=fp,
        fn=fn,
        matches=matches,
        fn_ignored=[int(v) for v in g_vals[~g_matched & mostly_void]],
    )
