"""Ultrametric Feature Fields' "2D mode": per-view horizontal cuts of the rendered feature map.

A view's features (composited, divided by alpha, unit-normalised) form a 4-neighbour pixel
graph with edge length ‖f_i − f_j‖₂; the single-linkage hierarchy of that graph (higra's
canonical binary partition tree) is cut at thresholds d (the official code uses 0.01 … 1.00).
As in the code, only the ``max_segments`` largest segments of a cut keep their identity; the
rest, and pixels with alpha below ``min_alpha``, are unassigned (label 0).
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(1, 101) * 0.01, 2))


def pixel_cut_stack(
    features: np.ndarray,
    alpha: np.ndarray,
    thresholds=DEFAULT_THRESHOLDS,
    min_alpha: float = 0.5,
    max_segments: int = 200,
) -> np.ndarray:
    """Label maps [T,H,W] int32 of the cuts of one view.

    features: [H,W,D] composited features (sum of w_i f_i); alpha: [H,W] accumulated opacity.
    Segments are numbered 1.. by decreasing size within each cut.
    """
    import higra as hg

    h, w, d = features.shape
    f = features.reshape(-1, d) / np.maximum(alpha.reshape(-1, 1), 1e-4)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    graph = hg.get_4_adjacency_graph((h, w))
    weights = hg.weight_graph(graph, f.astype(np.float64), hg.WeightFunction.L2)
    tree, altitudes = hg.bpt_canonical(graph, weights)
    empty = alpha.reshape(-1) < min_alpha
    out = np.zeros((len(thresholds), h * w), dtype=np.int32)
    for i, t in enumerate(thresholds):
        raw = np.asarray(hg.labelisation_horizontal_cut_from_threshold(tree, altitudes, float(t))).reshape(-1)
        raw = np.where(empty, -1, raw)
        values, index, counts = np.unique(raw, return_inverse=True, return_counts=True)
        counts = np.where(values < 0, 0, counts)
        order = np.lexsort((values, -counts))  # by size, largest first
        rank = np.empty(len(values), dtype=np.int64)
        rank[order] = np.arange(len(values))
        label = rank + 1
        label[(rank >= max_segments) | (values < 0)] = 0
        out[i] = label[index.reshape(-1)]
    return out.reshape(len(thresholds), h, w)
