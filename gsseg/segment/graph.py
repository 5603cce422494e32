"""kNN graph over Gaussians weighted by identity-feature distance (optionally blended with
spatial distance).

Edge weights lie in [0,1]: ``(1 - spatial_weight) * d_feature + spatial_weight * d_space``
with ``d_feature = (1 - cos) / 2`` for embeddings and the total-variation distance
``|p - q|_1 / 2`` between softmax probabilities for logits, and
``d_space = 1 - exp(-dist / median kNN distance)``. Components the kNN graph leaves apart are
joined to the largest one by their closest pair with weight 1, so the graph is connected
and they merge last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from torch import Tensor

LINK_WEIGHT = 1.0


@dataclass
class GraphConfig:
    """k: neighbours per Gaussian; spatial_weight: share of the spatial term in [0,1]."""

    k: int = 10
    spatial_weight: float = 0.0

    def validate(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if not 0.0 <= self.spatial_weight <= 1.0:
            raise ValueError("spatial_weight must be in [0,1]")


@dataclass
class KnnGraph:
    """Undirected edges ``sources [E]``, ``targets [E]`` (int64, sources < targets) and ``weights [E]``
    (float64 in [0,1]) over ``num_vertices`` Gaussians."""

    num_vertices: int
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray


def feature_distance(space: Tensor, a: np.ndarray, b: np.ndarray, kind: str, chunk: int = 1 << 20) -> np.ndarray:
    """Distances in [0,1] between feature-space rows ``space[a]`` and ``space[b]`` -> [E] float64."""
    out = np.empty(len(a), np.float64)
    for s in range(0, len(a), chunk):
        ia = torch.from_numpy(a[s : s + chunk])
        ib = torch.from_numpy(b[s : s + chunk])
        fa, fb = space[ia], space[ib]
        if kind == "embedding":
            d = (1.0 - (fa * fb).sum(1)) * 0.5
        else:
            d = (fa - fb).abs().sum(1) * 0.5
        out[s : s + chunk] = d.clamp(0.0, 1.0).double().cpu().numpy()
    return out


def _connect_components(n: int, src: np.ndarray, dst: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extra edges joining every component to the largest one by its closest pair of points."""
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp <= 1:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    largest = np.bincount(comp).argmax()
    main = np.flatnonzero(comp == largest)
    tree = cKDTree(points[main])
    others = np.flatnonzero(comp != largest)
    dist, nearest = tree.query(points[others], k=1, workers=-1)
    order = np.lexsort((dist, comp[others]))  # by component, closest first
    first = np.ones(len(order), bool)
    first[1:] = comp[others][order][1:] != comp[others][order][:-1]
    pick = order[first]
    return others[pick].astype(np.int64), main[nearest[pick]].astype(np.int64)


def build_knn_graph(means: Tensor, space: Tensor, kind: str, cfg: GraphConfig | None = None) -> KnnGraph:
    """The weighted kNN graph of Gaussians at ``means [N,3]`` with feature-space vectors ``space [N,D]``."""
    cfg = cfg or GraphConfig()
    cfg.validate()
    points = means.detach().cpu().double().numpy()
    n = len(points)
    if n < 2:
        empty = np.zeros(0, np.int64)
        return KnnGraph(n, empty, empty, np.zeros(0, np.float64))
    k = min(cfg.k, n - 1)
    dist, idx = cKDTree(points).query(points, k=k + 1, workers=-1)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = idx[:, 1:].reshape(-1).astype(np.int64)
    d = dist[:, 1:].reshape(-1)
    keep = cols != rows  # coincident points may return themselves later than first
    rows, cols, d = rows[keep], cols[keep], d[keep]
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    key = np.unique(a * n + b, return_index=True)[1]
    a, b, d = a[key], b[key], d[key]
    space = space.detach().cpu()
    w = feature_distance(space, a, b, kind)
    if cfg.spatial_weight > 0:
        scale = max(float(np.median(d)), 1e-12)
        w = (1.0 - cfg.spatial_weight) * w + cfg.spatial_weight * (1.0 - np.exp(-d / scale))
    la, lb = _connect_components(n, a, b, points)
    if len(la):
        a = np.concatenate([a, np.minimum(la, lb)])
        b = np.concatenate([b, np.maximum(la, lb)])
        w = np.concatenate([w, np.full(len(la), LINK_WEIGHT)])
    return KnnGraph(n, a, b, w)
