"""Overlap tables between label maps, and seeded pixel sampling inside segments.

Every segment metric reduces to look-ups in a table of pairwise overlaps, so a sampled
protocol costs one table per prediction plus O(1) per sample.
"""

from __future__ import annotations

import numpy as np


def compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense relabelling: (values [K] sorted label values, index [...] int64 into ``values``)."""
    values, index = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    return values, index.reshape(np.shape(labels)).astype(np.int64)


def overlap_counts(a: np.ndarray, b: np.ndarray, ka: int, kb: int) -> np.ndarray:
    """Joint pixel counts [ka,kb] int64 of compact labels ``a [P]`` (< ka) and ``b [P]`` (< kb)."""
    return np.bincount(a.ravel() * kb + b.ravel(), minlength=ka * kb).reshape(ka, kb).astype(np.int64)


def iou_from_counts(
    counts: np.ndarray, area_a: np.ndarray | None = None, area_b: np.ndarray | None = None
) -> np.ndarray:
    """IoU [Ka,Kb] from joint counts; segment areas default to the table's row / column sums."""
    area_a = counts.sum(1) if area_a is None else area_a
    area_b = counts.sum(0) if area_b is None else area_b
    union = area_a[:, None] + area_b[None, :] - counts
    return np.divide(counts, union, out=np.zeros(counts.shape, dtype=np.float64), where=union > 0)


def segment_pixels(index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels grouped by compact label: (order [P] flat pixel ids sorted by label, starts [k+1])."""
    flat = index.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.zeros(k + 1, dtype=np.int64)
    starts[1:] = np.cumsum(np.bincount(flat, minlength=k))
    return order, starts


def sample_in_segments(
    order: np.ndarray, starts: np.ndarray, segments: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` flat pixel ids drawn uniformly with replacement from each compact segment: [S,n] int64.

    Every segment must own at least one pixel.
    """
    lo = starts[segments]
    count = starts[segments + 1] - lo
    if np.any(count <= 0):
        raise ValueError("cannot sample from an empty segment")
    offs = np.floor(rng.random((len(segments), n)) * count[:, None]).astype(np.int64)
    return order[lo[:, None] + offs]


def gt_segments(values: np.ndarray, areas: np.ndarray, min_size: int, background: int | None) -> np.ndarray:
    """Compact ids of the ground-truth segments a protocol scores: area >= ``min_size`` and not
    the ``background`` label (None keeps every label): [S] int64."""
    keep = areas >= max(min_size, 1)
    if background is not None:
        keep &= values != background
    return np.flatnonzero(keep)
