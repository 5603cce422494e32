"""Floaters out of an exported object: connected components of its Gaussian centres.

A segment of a real capture carries Gaussians far from the object (floaters the RGB stage left
in free space that happen to share the object's identity features). Each centre's spacing
``s`` is its distance to its ``NEIGHBOURS``-th nearest centre (scipy ``cKDTree``); a centre is
linked to each of those neighbours closer than ``EPS_FACTOR`` × the smaller of the two spacings
(so a sparse surface that thins out gradually, e.g. a floor seen at a grazing angle, stays
connected, while a floater never links to the dense object next to it) and never farther than
``MAX_LINK`` × the object's median spacing (so a cloud of floaters does not chain itself to the
object). Connected components smaller than ``KEEP_SHARE`` of the largest one are outliers; an
object made of several dense pieces of similar size keeps them all. (Open3D's DBSCAN, with one
global radius, took 78 s on 300k centres and cut the thinning floors off.)
"""

from __future__ import annotations

import numpy as np

NEIGHBOURS = 8
EPS_FACTOR = 3.0
MAX_LINK = 20.0
KEEP_SHARE = 0.2
MIN_POINTS = 2 * NEIGHBOURS


def object_inliers(
    points: np.ndarray,
    neighbours: int = NEIGHBOURS,
    eps_factor: float = EPS_FACTOR,
    keep_share: float = KEEP_SHARE,
    max_link: float = MAX_LINK,
) -> np.ndarray:
    """[n] bool: the centres ``points [n,3]`` of one object that belong to it (False: floaters).

    Objects of fewer than ``2 × neighbours`` centres are kept whole (too few to tell).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 2 * neighbours:
        return np.ones(n, dtype=bool)
    dist, near = cKDTree(pts).query(pts, k=neighbours + 1)
    spacing = dist[:, -1]
    median = float(np.median(spacing))
    if not np.isfinite(median) or median <= 0.0:  # most centres coincide: nothing to tell apart
        return np.ones(n, dtype=bool)
    limit = np.minimum(eps_factor * np.minimum(spacing[:, None], spacing[near[:, 1:]]), max_link * median)
    link = dist[:, 1:] <= limit
    rows = np.repeat(np.arange(n), neighbours)[link.reshape(-1)]
    cols = near[:, 1:][link]
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    keep = np.flatnonzero(sizes >= keep_share * sizes.max())
    return np.isin(comp, keep)


def settings() -> dict[str, float | int | str]:
    """The outlier rule as recorded in an export's manifest."""
    return {
        "method": "knn connected components",
        "neighbours": NEIGHBOURS,
        "eps_factor": EPS_FACTOR,
        "max_link": MAX_LINK,
        "keep_share": KEEP_SHARE,
        "min_points": MIN_POINTS,
    }
