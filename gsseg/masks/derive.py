"""Quantities derived on demand from one view's ``membership [M,P]`` and patch pixel counts.

Everything works on patches (P ≪ H·W), never on dense masks:

- the OmniSeg3D correlation (vote) matrix C = UᵀU;
- pairwise intersections, IoU and the Ultrametric-Feature-Fields inclusion tree
  (i is a child of j when |A∩B|/|A| > p_in and IoU < p_iou; direct parent = smallest ancestor);
- OmniSeg3D nesting (a larger mask absorbs a smaller one it covers by more than 90 %);
- flat per-patch labels at a granularity (finest, coarsest, or level k of the tree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Granularity = str | int  # "finest", "coarsest", or a tree level k >= 0 (0 = roots)


def patch_counts(patch_index: np.ndarray, n_patches: int) -> np.ndarray:
    """Pixels per patch: [P] int64."""
    return np.bincount(patch_index.ravel(), minlength=n_patches).astype(np.int64)


def mask_areas(membership: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pixels per mask from patch counts: membership [M,P] bool, counts [P] -> [M] int64."""
    return membership.astype(np.int64) @ counts.astype(np.int64)


def correlation(membership: np.ndarray) -> np.ndarray:
    """OmniSeg3D correlation C = UᵀU: C[i,j] = number of masks holding patches i and j.

    membership: [M,P] bool -> [P,P] int32 (diagonal = masks covering the patch).
    """
    u = membership.astype(np.float32)  # float32 sums are exact up to 2^24 masks
    return np.rint(u.T @ u).astype(np.int32)


def intersections(membership: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """|A_i ∩ A_j| in pixels for every mask pair: [M,M] int64."""
    u = membership.astype(np.float64)
    return np.rint((u * counts.astype(np.float64)) @ u.T).astype(np.int64)


def iou_matrix(membership: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pairwise IoU of the masks: [M,M] float64 (0 where both masks are empty)."""
    inter = intersections(membership, counts).astype(np.float64)
    areas = np.diag(inter)
    union = areas[:, None] + areas[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def inclusion_matrix(membership: np.ndarray, counts: np.ndarray, p_in: float = 0.95, p_iou: float = 0.9) -> np.ndarray:
    """inside[i,j]: mask i is a child of mask j (|A_i∩A_j|/|A_i| > p_in and IoU < p_iou), [M,M] bool."""
    inter = intersections(membership, counts).astype(np.float64)
    areas = np.diag(inter).copy()
    union = areas[:, None] + areas[None, :] - inter
    covered = np.divide(inter, areas[:, None], out=np.zeros_like(inter), where=areas[:, None] > 0)
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    inside = (covered > p_in) & (iou < p_iou)
    np.fill_diagonal(inside, False)
    return inside


def suppress_duplicates(
    membership: np.ndarray, counts: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.9
) -> np.ndarray:
    """Greedy by decreasing score: keep a mask unless its IoU with a kept one exceeds the
    threshold. Returns the kept indices [K] int64, ascending."""
    iou = iou_matrix(membership, counts)
    kept = np.zeros(len(scores), dtype=bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not (iou[i, kept] > iou_threshold).any():
            kept[i] = True
    return np.flatnonzero(kept)


@dataclass
class InclusionTree:
    """Inclusion forest of one view's masks.

    inside: [M,M] bool, the full relation (i inside j); parent: [M] int32 direct parent
    (-1 = root); depth: [M] int32 (roots 0); areas: [M] int64.
    """

    inside: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    areas: np.ndarray

    @property
    def n_levels(self) -> int:
        """Number of tree levels (max depth + 1; 0 without masks)."""
        return int(self.depth.max()) + 1 if len(self.depth) else 0

    def roots(self) -> np.ndarray:
        """Indices of the masks without a parent: [R] int64."""
        return np.flatnonzero(self.parent < 0)

    def children(self, i: int) -> np.ndarray:
        """Direct children of mask ``i``: [K] int64."""
        return np.flatnonzero(self.parent == i)

    def ancestors(self, i: int) -> list[int]:
        """Direct parent, grand-parent, ... of mask ``i`` up to its root."""
        chain = []
        j = int(self.parent[i])
        while j >= 0:
            chain.append(j)
            j = int(self.parent[j])
        return chain


def _size_rank(areas: np.ndarray) -> np.ndarray:
    """Rank of each mask in (area, index) order: [M] int64, 0 = smallest."""
    order = np.lexsort((np.arange(len(areas)), areas))
    rank = np.empty(len(areas), dtype=np.int64)
    rank[order] = np.arange(len(areas))
    return rank


def inclusion_tree(membership: np.ndarray, counts: np.ndarray, p_in: float = 0.95, p_iou: float = 0.9) -> InclusionTree:
    """Inclusion forest: the direct parent of i is the smallest mask j with inside[i,j].

    Candidate parents are restricted to masks larger in (area, index) order, which keeps the
    result a forest for any thresholds; with p_in = 0.95, p_iou = 0.9 every ancestor is
    strictly larger anyway, so the restriction changes nothing there.
    """
    inside = inclusion_matrix(membership, counts, p_in, p_iou)
    areas = mask_areas(membership, counts)
    m = len(areas)
    rank = _size_rank(areas)
    candidates = inside & (rank[None, :] > rank[:, None])
    key = np.where(candidates, rank[None, :], m)
    parent = np.argmin(key, axis=1) if m else np.zeros(0, dtype=np.int64)
    parent = np.where(candidates.any(axis=1), parent, -1).astype(np.int32)
    depth = np.zeros(m, dtype=np.int32)
    for i in np.argsort(-rank):  # parents (larger rank) before their children
        if parent[i] >= 0:
            depth[i] = depth[parent[i]] + 1
    return InclusionTree(inside=inside, parent=parent, depth=depth, areas=areas)


def nest_masks(membership: np.ndarray, counts: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """OmniSeg3D nesting: from small to large, every larger mask covering more than
    ``threshold`` of a smaller one absorbs it (M := M ∪ m).

    membership: [M,P] bool -> new membership [M,P] bool in the same mask order.
    """
    areas = mask_areas(membership, counts)
    order = np.argsort(areas, kind="stable")
    u = membership[order].copy()
    w = counts.astype(np.int64)
    for a in range(len(order) - 1):
        current = u[a]
        area = int(w[current].sum())
        if area == 0:
            continue
        inter = (u[a + 1 :] & current).astype(np.int64) @ w
        absorb = np.flatnonzero(inter > threshold * area) + a + 1
        if len(absorb):
            u[absorb] |= current
    out = np.empty_like(u)
    out[order] = u
    return out


def patch_labels(
    membership: np.ndarray,
    counts: np.ndarray,
    granularity: Granularity = "finest",
    tree: InclusionTree | None = None,
    areas: np.ndarray | None = None,
) -> np.ndarray:
    """The mask chosen for every patch at a granularity: [P] int32 mask index, -1 = none.

    - ``"finest"``: the smallest mask holding the patch;
    - ``"coarsest"``: the largest mask holding the patch;
    - ``k`` (int): among the patch's masks of tree depth <= k, the deepest, then the smallest.
      Level k refines level k-1 and covers the same pixels (a patch whose masks all sit
      higher in the tree keeps its deepest one).
    Ties go to the lower mask index. ``areas [M]`` defaults to ``mask_areas(membership, counts)``
    (pass it when ``membership`` holds only some of the view's patches).
    """
    m, p = membership.shape
    if m == 0:
        return np.full(p, -1, dtype=np.int32)
    if areas is None:
        areas = mask_areas(membership, counts)
    index = np.arange(m)
    allowed = membership
    if granularity == "finest":
        order = np.lexsort((index, areas))
    elif granularity == "coarsest":
        order = np.lexsort((index, -areas))
    elif isinstance(granularity, (int, np.integer)) and not isinstance(granularity, bool) and granularity >= 0:
        if tree is None:
            tree = inclusion_tree(membership, counts)
        order = np.lexsort((index, areas, -tree.depth))
        allowed = membership & (tree.depth <= granularity)[:, None]
    else:
        raise ValueError(f"granularity must be 'finest', 'coarsest' or a level >= 0, got {granularity!r}")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    best = np.where(allowed, rank[:, None], m).min(axis=0)
    return np.where(best < m, order[np.minimum(best, m - 1)], -1).astype(np.int32)
