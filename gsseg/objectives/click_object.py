"""Which of the nested masks under a click is "the object".

Automatic masks nest: under one click lie a part (the mug's body), the object (the mug), a
group (the tea set) and sometimes the whole foreground. A single click names none of them,
and taking the smallest mask (the old rule) lifts a part. The rule here uses the scene's 3D
geometry: an object is one connected piece of matter, a group is several pieces with space
between them. Among the masks that hold the click, the largest one whose Gaussians (those the
view renders mostly inside the mask) form one spatially connected set is the object; a part
is connected too but smaller, a group falls apart into its members. The floor under a group
is no help to it: a mask holding the floor would cover the whole scene and is not connected
either once the floor is left out of every mask, as unsegmented background is.

Connectivity: Gaussian centres closer than ``link_factor`` times the median distance of a
Gaussian to its nearest neighbour in the set are linked; the set is connected when its
largest component holds at least ``min_share`` of its rendering weight (floaters and a few
stray Gaussians do not split it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


@dataclass
class ConnectivitySettings:
    """link_factor: link distance in median nearest-neighbour distances; min_share: weight share
    of the largest component for "connected"; min_inside: share of a Gaussian's weight in the
    view that must fall inside the mask for it to belong to the mask; max_gaussians: larger
    sets are subsampled (by weight) for the test."""

    link_factor: float = 3.0
    min_share: float = 0.9
    min_inside: float = 0.5
    max_gaussians: int = 20000


def gaussians_in_mask(table, mask: np.ndarray, min_inside: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Gaussians a view renders mostly inside ``mask [H,W]``: (ids [K] int64, weight inside [K]).

    table: the view's ContributionTable at the mask's resolution; a Gaussian belongs when at
    least ``min_inside`` of its weight in the view falls on mask pixels.
    """
    offsets = table.offsets.cpu().numpy()
    counts = np.diff(offsets)
    pix = np.repeat(np.arange(len(counts)), counts)
    gids = table.gaussian_ids.cpu().numpy().astype(np.int64)
    w = table.weights.cpu().numpy().astype(np.float64)
    inside = np.asarray(mask, bool).reshape(-1)[pix]
    n = int(gids.max()) + 1 if len(gids) else 0
    total = np.bincount(gids, weights=w, minlength=n)
    within = np.bincount(gids, weights=w * inside, minlength=n)
    ids = np.flatnonzero((within > 0) & (within >= min_inside * total))
    return ids, within[ids]


def is_connected(points: np.ndarray, weights: np.ndarray, settings: ConnectivitySettings,
                 rng: np.random.Generator | None = None) -> bool:
    """Whether ``points [K,3]`` (with ``weights [K]``) form one connected piece (module doc)."""
    if len(points) < 3:
        return True
    if len(points) > settings.max_gaussians:
        rng = rng or np.random.default_rng(0)
        pick = rng.choice(len(points), settings.max_gaussians, replace=False, p=weights / weights.sum())
        points, weights = points[pick], weights[pick]
    tree = cKDTree(points)
    nn, _ = tree.query(points, k=2)
    radius = settings.link_factor * float(np.median(nn[:, 1]))
    pairs = tree.query_pairs(max(radius, 1e-12), output_type="ndarray")
    k = len(points)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k)) if len(pairs) else coo_matrix((k, k))
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp == 1:
        return True
    share = np.bincount(comp, weights=weights, minlength=n_comp)
    return float(share.max()) >= settings.min_share * float(share.sum())


def object_mask(vm, candidates: np.ndarray, table, means: np.ndarray,
                settings: ConnectivitySettings | None = None) -> int:
    """The object among candidate masks of one view (module doc): the index in ``vm`` of the
    largest candidate whose Gaussians are connected, else the smallest candidate.

    vm: the view's ViewMasks at the table resolution; candidates: [C] mask indices (e.g. the
    masks holding a click); table: the view's ContributionTable; means: [N,3] Gaussian centres.
    """
    settings = settings or ConnectivitySettings()
    candidates = np.asarray(candidates, np.int64)
    by_area = candidates[np.lexsort((candidates, -vm.areas[candidates]))]  # largest first
    for m in by_area[:-1]:
        ids, w = gaussians_in_mask(table, vm.mask(int(m)), settings.min_inside)
        if len(ids) and is_connected(means[ids], w, settings):
            return int(m)
    return int(by_area[-1])
