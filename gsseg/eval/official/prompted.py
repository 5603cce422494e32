"""SANeRF-HQ's object mIoU / mAcc as ``evaluation.py`` ``main()`` computes them.

Per object, over its evaluation views: I = |P n G|, U = |P u G|, correct = pixels where P and G
agree, total = pixels; IoU = sum I / sum U (pooled, not a mean over views), Acc = sum correct /
sum total. An object absent from every view with nothing predicted has IoU 0/0 = NaN (not special-
cased), which makes the mIoU NaN; mIoU / mAcc are plain means over objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gsseg.eval.metrics.prompted import ObjectScore, object_score


class OfficialObject(ObjectScore):
    """Pooled counts of one object (:class:`ObjectScore`); ``iou`` is NaN for an empty union, as in
    the official code (ours scores such an object 1)."""

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else float("nan")


def sanerf_object(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> OfficialObject:
    """Counts of one object: preds, gts are per-view [H,W] bool masks."""
    return object_score(preds, gts, OfficialObject())


def sanerf_summary(objects: Sequence[ObjectScore]) -> tuple[float, float]:
    """(mIoU, mAcc): plain means over objects, :class:`OfficialObject` scores (a NaN IoU makes the
    mIoU NaN; NaN for no object)."""
    if not objects:
        return float("nan"), float("nan")
    return float(np.mean([o.iou for o in objects])), float(np.mean([o.acc for o in objects]))
