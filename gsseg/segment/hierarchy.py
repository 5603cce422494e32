"""The scene hierarchy over the Gaussians the input masks supervised, and its cuts by
threshold, by number of regions, or at automatically chosen stable levels.

The tree (``linkage="average"``, the default) is single linkage (higra binary partition tree)
over the Gaussians' kNN graph up to a small distance, and average linkage of those atoms above
(:mod:`gsseg.segment.linkage`); ``linkage="single"`` keeps the pure single-linkage tree of the
UFF protocol. Gaussians no mask supervised (:func:`gsseg.features.coverage.supervised_gaussians`)
are left out of the tree and unassigned (label 0) in every cut.

Regions smaller than ``min_size`` Gaussians (tiny floating components) are merged or
dropped. Merging follows the tree: a small region joins the region of the cut that holds the
"heavy leaf" (reached by always descending into the bigger child) of the subtree it would
merge with in the single-linkage order. All cuts of one hierarchy therefore stay nested
(a finer cut's regions lie inside a coarser cut's), merged or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import higra as hg
import numpy as np
import torch
from torch import Tensor

from gsseg.segment.graph import GraphConfig, KnnGraph, build_knn_graph
from gsseg.segment.linkage import DEFAULT_ATOM_THRESHOLD, DEFAULT_MAX_ATOMS, average_linkage_above_atoms
from gsseg.segment.scores import feature_space

SMALL_POLICIES = ("merge", "drop")


def default_min_size(n: int) -> int:
    """Default smallest region kept as a segment: 0.05% of the Gaussians, at least 10."""
    return max(10, n // 2000)


@dataclass
class Plateau:
    """A threshold range [start, end) over which the cut has ``regions`` segments."""

    regions: int
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def middle(self) -> float:
        return 0.5 * (self.start + self.end)


class SceneHierarchy:
    """Hierarchy over n leaves with cuts giving labels for N Gaussians, [N] int32 (0 = unassigned).

    Nodes 0..n-1 are the leaves; a parent's index is larger than its children's; ``altitudes``
    are the merge distances in [0,1], never decreasing towards the root. ``leaf_gaussians [n]``
    names the Gaussian of each leaf among ``num_gaussians`` (default: leaf i is Gaussian i, N = n);
    Gaussians that are no leaf are unassigned in every cut.
    """

    def __init__(
        self,
        parents: np.ndarray,
        altitudes: np.ndarray,
        num_leaves: int,
        min_size: int = 1,
        small: str = "merge",
        leaf_gaussians: np.ndarray | None = None,
        num_gaussians: int | None = None,
    ) -> None:
        if small not in SMALL_POLICIES:
            raise ValueError(f"small must be one of {SMALL_POLICIES}, got {small!r}")
        self.leaf_gaussians = None if leaf_gaussians is None else np.asarray(leaf_gaussians, np.int64)
        self.num_gaussians = int(num_leaves if num_gaussians is None else num_gaussians)
        if self.leaf_gaussians is not None and len(self.leaf_gaussians) != int(num_leaves):
            raise ValueError("leaf_gaussians needs one entry per leaf")
        self.parents = np.asarray(parents, np.int64)
        self.altitudes = np.asarray(altitudes, np.float64)
        self.num_leaves = int(num_leaves)
        self.min_size = max(1, int(min_size))
        self.small = small
        self.tree = hg.Tree(self.parents)
        nv = len(self.parents)
        self.root = nv - 1
        self.sizes = np.asarray(hg.attribute_area(self.tree), np.int64)
        nodes = np.arange(nv, dtype=np.int64)
        non_root = nodes[:-1]
        # exactly one heavy (bigger, ties: lower index) child per internal node
        order = np.lexsort((non_root, -self.sizes[non_root], self.parents[non_root]))
        first = np.ones(len(order), bool)
        first[1:] = self.parents[non_root][order][1:] != self.parents[non_root][order][:-1]
        heavy = np.zeros(nv, bool)
        heavy[non_root[order[first]]] = True
        self.sibling = np.full(nv, -1, np.int64)
        kids = non_root[order]
        par = self.parents[kids]
        same = par[1:] == par[:-1]
        self.sibling[kids[1:][same]] = kids[:-1][same]
        self.sibling[kids[:-1][same]] = kids[1:][same]
        head = np.asarray(hg.propagate_sequential(self.tree, nodes, heavy), np.int64)
        heavy_leaf = np.zeros(nv, np.int64)
        heavy_leaf[head[: self.num_leaves]] = np.arange(self.num_leaves)
        self.heavy_leaf = heavy_leaf[head]
        small_node = self.sizes < self.min_size
        cond = small_node & small_node[self.parents]
        cond[self.root] = False
        self.small_top = np.asarray(hg.propagate_sequential(self.tree, nodes, cond), np.int64)

    def __len__(self) -> int:
        return self.num_gaussians

    def per_gaussian(self, leaf_labels: np.ndarray) -> np.ndarray:
        """Leaf labels [n] as labels of all N Gaussians [N] int32 (0 for Gaussians that are no leaf)."""
        if self.leaf_gaussians is None:
            return leaf_labels.astype(np.int32)
        out = np.zeros(self.num_gaussians, np.int32)
        out[self.leaf_gaussians] = leaf_labels
        return out

    # ------------------------------------------------------------------ counting
    def candidate_thresholds(self) -> np.ndarray:
        """Sorted distinct thresholds at which the cut changes (0 and every merge altitude)."""
        return np.unique(np.concatenate([[0.0], self.altitudes[self.num_leaves :]]))

    def count_regions(self, thresholds: np.ndarray) -> np.ndarray:
        """Number of segments (regions of at least ``min_size`` Gaussians) of the cut at each threshold."""
        big = np.flatnonzero(self.sizes >= self.min_size)
        start = np.sort(self.altitudes[big])
        big_nr = big[big != self.root]
        end = np.sort(self.altitudes[self.parents[big_nr]])
        t = np.asarray(thresholds, np.float64)
        return (np.searchsorted(start, t, side="right") - np.searchsorted(end, t, side="right")).astype(np.int64)

    def plateaus(self) -> list[Plateau]:
        """Maximal threshold ranges of constant segment count (the last one ends at the root's altitude)."""
        c = self.candidate_thresholds()
        counts = self.count_regions(c)
        change = np.flatnonzero(np.diff(counts) != 0) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(c)]])
        top = float(self.altitudes[self.root])
        out = []
        for s, e in zip(starts, ends):
            end = float(c[e]) if e < len(c) else top
            out.append(Plateau(int(counts[s]), float(c[s]), max(end, float(c[s]))))
        return out

    # ------------------------------------------------------------------ cuts
    def cut_threshold(self, threshold: float) -> np.ndarray:
        """Labels [N] int32 of the cut at ``threshold``: Gaussians joined by merges at altitude
        <= threshold share a segment; segments numbered 1.. by decreasing size (in leaves)."""
        t = float(threshold)
        nv = len(self.parents)
        nodes = np.arange(nv, dtype=np.int64)
        cond = self.altitudes[self.parents] <= t
        cond[self.root] = False
        region = np.asarray(hg.propagate_sequential(self.tree, nodes, cond), np.int64)
        leaf_region = region[: self.num_leaves]
        regions = np.unique(leaf_region)
        big = regions[self.sizes[regions] >= self.min_size]
        big = big[np.lexsort((big, -self.sizes[big]))]
        node_label = np.zeros(nv, np.int64)
        node_label[big] = np.arange(1, len(big) + 1)
        small = regions[self.sizes[regions] < self.min_size]
        if self.small == "merge" and len(small):
            self._merge_small(region, small, node_label, len(big))
        return self.per_gaussian(node_label[leaf_region])

    def leaf_regions(self, threshold: float) -> np.ndarray:
        """[n] int64: the region (tree node id) of every leaf in the cut at ``threshold``, with no
        minimum size (every region, however small, keeps its own id)."""
        nodes = np.arange(len(self.parents), dtype=np.int64)
        cond = self.altitudes[self.parents] <= float(threshold)
        cond[self.root] = False
        region = np.asarray(hg.propagate_sequential(self.tree, nodes, cond), np.int64)
        return region[: self.num_leaves]

    def _merge_small(self, region: np.ndarray, small: np.ndarray, node_label: np.ndarray, n_big: int) -> None:
        """Give every small region of a cut the label of the region it merges into.

        Each small region points to the region holding the heavy leaf of its merge partner;
        that region may be small too, so the pointers form chains (ending in a big region,
        whose label they all take) or, when two small regions merge with each other into a
        node big enough to count, a cycle (the chain's regions become one new segment).
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        top = self.small_top[small]
        has_parent = top != self.root
        src = small[has_parent]
        dst = region[self.heavy_leaf[self.sibling[top[has_parent]]]]
        nodes = np.unique(np.concatenate([small, dst]))
        m = len(nodes)
        graph = coo_matrix(
            (np.ones(len(src)), (np.searchsorted(nodes, src), np.searchsorted(nodes, dst))), shape=(m, m)
        )
        n_comp, comp = connected_components(graph, directed=False)
        comp_label = np.zeros(n_comp, np.int64)
        is_big = node_label[nodes] > 0
        comp_label[comp[is_big]] = node_label[nodes[is_big]]
        orphan = np.flatnonzero(comp_label == 0)
        # all-small components: one new segment each, ordered by total size (largest first)
        sizes = np.bincount(comp, weights=self.sizes[nodes] * ~is_big, minlength=n_comp)[orphan]
        orphan = orphan[np.lexsort((orphan, -sizes))]
        comp_label[orphan] = n_big + 1 + np.arange(len(orphan))
        node_label[nodes[~is_big]] = comp_label[comp[~is_big]]

    def cut_regions(self, n: int) -> tuple[np.ndarray, float]:
        """(labels, threshold) of the cut whose number of segments is closest to ``n`` (ties: the
        longest threshold range); the threshold is the middle of that range."""
        if n < 1:
            raise ValueError("the number of regions must be >= 1")
        plats = self.plateaus()
        best = min(plats, key=lambda p: (abs(p.regions - n), -p.length))
        return self.cut_threshold(best.middle), best.middle

    def auto_thresholds(self, levels: int = 3, min_regions: int = 3, min_relative_length: float = 0.1) -> list[float]:
        """Thresholds of up to ``levels`` stable cuts, coarsest first, spanning part -> object -> group.

        Candidates are the threshold ranges over which the number of segments does not change,
        with at least ``min_regions`` segments (2 when no range has that many: a cut of 1-2
        segments covering the scene separates nothing) and at least ``min_relative_length``
        times the longest candidate's length. The levels are spread evenly in log(segments)
        from the candidate with the fewest segments to the one with the most (ties: the longer
        range), so the coarsest separates the main objects and the finest holds the parts."""
        plats = [p for p in self.plateaus() if p.length > 0]
        cands = [p for p in plats if p.regions >= min_regions] or [p for p in plats if p.regions >= 2]
        if not cands:
            return []
        longest = max(p.length for p in cands)
        cands = [p for p in cands if p.length >= min_relative_length * longest]
        regions = np.array([p.regions for p in cands], np.float64)
        targets = np.geomspace(regions.min(), regions.max(), max(1, levels))
        chosen: list[Plateau] = []
        for t in np.log(targets):
            order = sorted(range(len(cands)), key=lambda i: (abs(np.log(regions[i]) - t), -cands[i].length))
            pick = next((cands[i] for i in order if cands[i] not in chosen), None)
            if pick is not None:
                chosen.append(pick)
        chosen.sort(key=lambda p: -p.middle)
        return [p.middle for p in chosen]


def hierarchy_from_graph(graph: KnnGraph, min_size: int = 1, small: str = "merge") -> SceneHierarchy:
    """Single-linkage hierarchy (higra's canonical binary partition tree) of a connected graph."""
    if graph.num_vertices == 1:
        return SceneHierarchy(np.array([0]), np.array([0.0]), 1, min_size, small)
    g = hg.UndirectedGraph(graph.num_vertices)
    g.add_edges(graph.sources, graph.targets)
    tree, altitudes = hg.bpt_canonical(g, graph.weights)
    return SceneHierarchy(np.asarray(tree.parents()), np.asarray(altitudes), graph.num_vertices, min_size, small)


LINKAGES = ("average", "single")


def hierarchy_from_features(
    means: Tensor,
    features: Tensor,
    kind: str,
    k: int = 10,
    spatial_weight: float = 0.0,
    min_size: int | None = None,
    small: str = "merge",
    linkage: str = "average",
    supervised: np.ndarray | None = None,
    atom_threshold: float = DEFAULT_ATOM_THRESHOLD,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> SceneHierarchy:
    """Hierarchy of Gaussians at ``means [N,3]`` with identity ``features [N,D]`` of ``kind``
    (embeddings compared by cosine, logits by their softmax probabilities).

    supervised: [N] bool, the Gaussians the tree is built on (None: all); linkage: "average"
    (average linkage above single-linkage atoms, see :mod:`gsseg.segment.linkage`) or "single";
    min_size: smallest segment in leaves (default :func:`default_min_size` of the leaf count).
    """
    if linkage not in LINKAGES:
        raise ValueError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    n_all = int(means.shape[0])
    if n_all == 0:
        raise ValueError("cannot build a hierarchy of an empty scene")
    leaves = None if supervised is None else np.flatnonzero(np.asarray(supervised, bool))
    if leaves is not None and (len(leaves) == 0 or len(leaves) == n_all):
        leaves = None
    idx = None if leaves is None else torch.from_numpy(leaves).to(means.device)
    pts = means if idx is None else means[idx]
    with torch.no_grad():
        space = feature_space(features if idx is None else features[idx], kind)
    n = int(pts.shape[0])
    size = default_min_size(n) if min_size is None else min_size
    graph = build_knn_graph(pts, space, kind, GraphConfig(k=k, spatial_weight=spatial_weight))
    if n == 1:
        parents, altitudes = np.array([0]), np.array([0.0])
    else:
        g = hg.UndirectedGraph(n)
        g.add_edges(graph.sources, graph.targets)
        tree, altitudes = hg.bpt_canonical(g, graph.weights)
        parents = np.asarray(tree.parents())
        if linkage == "average":
            parents, altitudes, _ = average_linkage_above_atoms(
                tree, np.asarray(altitudes), space.double().cpu().numpy(), kind, atom_threshold, max_atoms
            )
    return SceneHierarchy(parents, np.asarray(altitudes), n, size, small, leaf_gaussians=leaves, num_gaussians=n_all)


def build_hierarchy(
    scene,
    record,
    k: int = 10,
    spatial_weight: float = 0.0,
    min_size: int | None = None,
    small: str = "merge",
    linkage: str = "average",
    all_gaussians: bool = False,
) -> SceneHierarchy:
    """Hierarchy of a ``GaussianScene``'s Gaussians from its ``FeatureRecord`` (see
    ``hierarchy_from_features``), on the Gaussians the record's mask coverage marks as supervised
    (all of them with ``all_gaussians`` or when the record has no coverage)."""
    from gsseg.features.coverage import supervised_gaussians

    supervised = None if all_gaussians else supervised_gaussians(record.coverage, len(scene))
    return hierarchy_from_features(
        scene.means,
        record.features.to(scene.means.device),
        record.info.kind,
        k=k,
        spatial_weight=spatial_weight,
        min_size=min_size,
        small=small,
        linkage=linkage,
        supervised=supervised,
    )
