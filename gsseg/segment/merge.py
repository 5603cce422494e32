"""No confetti: segments smaller than a share of the scene merged into the spatial neighbour
they share the most boundary with.

Boundary is counted on the spatial kNN graph of the Gaussian centres (scipy ``cKDTree``): the
number of edges between two segments. Merging runs in rounds: every small segment joins its
best neighbour at once (chains and pairs of small segments resolve through connected
components), until none is small. A small segment with no neighbour in the graph (a detached
clump) joins the segment whose centre is nearest.

Cuts of one hierarchy are merged coarsest first, and a finer cut's small segment only joins a
neighbour inside the same segment of the (already merged) coarser cut, so the merged cuts stay
nested.
"""

from __future__ import annotations

import numpy as np

MERGE_NEIGHBOURS = 8
MAX_ROUNDS = 64
# Smallest segment of `gsseg segment` cuts: a share of the Gaussians the hierarchy is built on.
# 0.2 % keeps the built-in scenes' parts down to a small handle at 128x96 while bounding a cut to
# a few hundred segments at most (the fox's finest cut was 294 fragments at 0.05 %).
MIN_SEGMENT_SHARE = 0.002


def segment_min_size(num_leaves: int) -> int:
    """Default smallest segment, in Gaussians: ``MIN_SEGMENT_SHARE`` of ``num_leaves``, at least 10."""
    return max(10, int(np.ceil(MIN_SEGMENT_SHARE * num_leaves)))


class SpatialAdjacency:
    """Spatial kNN edges ``[E]`` (sources, targets) over points ``[n,3]``."""

    def __init__(self, points: np.ndarray, k: int = MERGE_NEIGHBOURS) -> None:
        from scipy.spatial import cKDTree

        self.points = np.asarray(points, np.float64)
        n = len(self.points)
        k = min(k, n - 1)
        if k < 1:
            self.sources = self.targets = np.zeros(0, np.int64)
            return
        _, near = cKDTree(self.points).query(self.points, k=k + 1)
        self.sources = np.repeat(np.arange(n), k)
        self.targets = near[:, 1:].reshape(-1).astype(np.int64)

    def __len__(self) -> int:
        return len(self.points)


def merge_small(
    labels: np.ndarray, adjacency: SpatialAdjacency, min_size: int, parents: np.ndarray | None = None
) -> np.ndarray:
    """Labels [n] (of the adjacency's points; 0 = unassigned, left alone) with every segment of
    fewer than ``min_size`` points merged (see module doc); ``parents [n]``: the labels of the
    coarser cut a merge must stay inside. Segments renumbered 1.. by decreasing size."""
    lab = np.asarray(labels, np.int64).copy()
    if min_size <= 1 or not (lab > 0).any():
        return renumber(lab)
    par = np.zeros_like(lab) if parents is None else np.asarray(parents, np.int64)
    src, dst = adjacency.sources, adjacency.targets
    for _ in range(MAX_ROUNDS):
        m = int(lab.max()) + 1
        sizes = np.bincount(lab, minlength=m)
        sizes[0] = 0
        small = (sizes > 0) & (sizes < min_size)
        if not small.any() or (sizes > 0).sum() == 1:
            break
        a, b = lab[src], lab[dst]
        ok = (a != b) & (a > 0) & (b > 0) & small[a] & (par[src] == par[dst])
        target = np.zeros(m, np.int64)
        if ok.any():
            keys, counts = np.unique(a[ok] * m + b[ok], return_counts=True)
            ka, kb = keys // m, keys % m
            # per small segment: the neighbour with the most edges (ties: the bigger one)
            order = np.lexsort((-sizes[kb], -counts, ka))
            first = np.ones(len(order), bool)
            first[1:] = ka[order][1:] != ka[order][:-1]
            target[ka[order[first]]] = kb[order[first]]
        lonely = np.flatnonzero(small & (target == 0))
        if len(lonely):
            target[lonely] = _nearest_segments(lab, par, adjacency.points, lonely, sizes)
        movers = np.flatnonzero(small & (target > 0))
        if len(movers) == 0:
            break
        lab = _apply(lab, movers, target[movers], m)
    return renumber(lab)


def _nearest_segments(
    lab: np.ndarray, par: np.ndarray, points: np.ndarray, segs: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """For each segment id in ``segs``, the other segment (same parent) whose centre is nearest; 0 if none."""
    m = len(sizes)
    keep = lab > 0
    centres = np.zeros((m, 3))
    for d in range(3):
        centres[:, d] = np.bincount(lab[keep], weights=points[keep, d], minlength=m)
    centres /= np.maximum(sizes, 1)[:, None]
    seg_parent = np.zeros(m, np.int64)
    seg_parent[lab[keep]] = par[keep]
    present = np.flatnonzero(sizes > 0)
    out = np.zeros(len(segs), np.int64)
    for i, s in enumerate(segs):
        cand = present[(present != s) & (seg_parent[present] == seg_parent[s])]
        if len(cand):
            out[i] = cand[np.argmin(((centres[cand] - centres[s]) ** 2).sum(1))]
    return out


def _apply(lab: np.ndarray, movers: np.ndarray, targets: np.ndarray, m: int) -> np.ndarray:
    """Merge each mover segment with its target (connected components of the mover -> target links)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(movers)), (movers, targets)), shape=(m, m))
    _, comp = connected_components(graph, directed=False)
    # each component takes the id of its biggest member (a big target, when it has one)
    sizes = np.bincount(lab, minlength=m)
    order = np.lexsort((np.arange(m), -sizes, comp))
    first = np.ones(m, bool)
    first[1:] = comp[order][1:] != comp[order][:-1]
    rep = np.zeros(comp.max() + 1, np.int64)
    rep[comp[order[first]]] = order[first]
    new = rep[comp]
    new[0] = 0
    return new[lab]


def renumber(labels: np.ndarray) -> np.ndarray:
    """int32 labels with segments numbered 1.. by decreasing size (ties: lower old id); 0 stays 0."""
    lab = np.asarray(labels, np.int64)
    ids, counts = np.unique(lab[lab > 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    table = np.zeros(int(lab.max()) + 1 if lab.size else 1, np.int64)
    table[order] = np.arange(1, len(order) + 1)
    return table[lab].astype(np.int32)
