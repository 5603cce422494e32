"""SANeRF-HQ's prompted-object protocol: micro-averaged IoU and pixel accuracy per object.

For one prompted object, intersections and unions are summed over all evaluation views
before dividing (IoU = ΣI / ΣU, "results from all test views are combined"); accuracy is
correct pixels over all pixels of those views. mIoU / mAcc average over objects
(``reference/objectives.md`` §3.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar, overload

import numpy as np


@dataclass
class ObjectScore:
    """Summed counts of one object over views; ``iou`` and ``acc`` derive from them."""

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
        """ΣI/ΣU; 1 when the object is absent and nothing was predicted in every view."""
        return self.intersection / self.union if self.union else 1.0

    @property
    def acc(self) -> float:
        return self.correct / self.total if self.total else float("nan")


S = TypeVar("S", bound=ObjectScore)


@overload
def object_score(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> ObjectScore: ...
@overload
def object_score(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], score: S) -> S: ...
def object_score(
    preds: Sequence[np.ndarray], gts: Sequence[np.ndarray], score: ObjectScore | None = None
) -> ObjectScore:
    """Counts of one object over views, accumulated into ``score`` (a new :class:`ObjectScore` by
    default; the same object is returned): preds, gts are per-view [H,W] bool masks."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth views")
    acc = ObjectScore() if score is None else score
    for p, g in zip(preds, gts):
        acc.add(p, g)
    return acc


def mean_object_scores(scores: Sequence[ObjectScore]) -> tuple[float, float]:
    """(mIoU, mAcc) over objects (NaN for no object)."""
    if not scores:
        return float("nan"), float("nan")
    return float(np.mean([s.iou for s in scores])), float(np.mean([s.acc for s in scores]))
