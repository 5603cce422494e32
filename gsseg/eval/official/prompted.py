"""SANeRF-HQ's object mIoU / mAcc as ``evaluation.py`` ``main()`` computes them.

Per object, over its evaluation views: I = |P n G|, U = |P u G|, correct = pixels where P and G
agree, total = pixels; IoU = sum I / sum U (pooled, not a mean over views), Acc = sum correct /
sum total. An object absent from every view with nothing predicted has IoU 0/0 = NaN (not special-
cased), which makes the mIoU NaN; mIoU / mAcc are plain means over objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class OfficialObject:
    """Pooled counts of one object; ``iou`` is NaN for an empty union, as in the official code."""

    intersection: int = 0
    union: int = 0
    correct: int = 0
    total: int = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Accumulate one view: pred, gt [H,W] bool."""
        pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {list(pred.shape)} and ground truth {list(gt.shape)} differ in size")
        self.intersection += int((pred & gt).sum())
        self.union += int((pred | gt).sum())
        self.correct += int((pred == gt).sum())
        self.total += pred.size

    @property
    def iou(self) -> float:
        return self.intersection / self.union if self.union else float("nan")

    @property
    def acc(self) -> float:
        return self.correct / self.total if self.total else float("nan")


def sanerf_object(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> OfficialObject:
    """Counts of one object: preds, gts are per-view [H,W] bool masks."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth views")
    score = OfficialObject()
    for p, g in zip(preds, gts):
        score.add(p, g)
    return score


def sanerf_summary(objects: Sequence[OfficialObject]) -> tuple[float, float]:
    """(mIoU, mAcc): plain means over objects (a NaN IoU makes the mIoU NaN; NaN for no object)."""
    if not objects:
        return float("nan"), float("nan")
    return float(np.mean([o.iou for o in objects])), float(np.mean([o.acc for o in objects]))
