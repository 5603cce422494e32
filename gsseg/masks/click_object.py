"""Which of the nested masks under a click is "the object".

Automatic masks nest: under one click lie a part (the mug's body), the object (the mug), a
group (the tea set) and sometimes the whole foreground. A single click names none of them,
and taking the smallest mask (the old rule) lifts a part. The rule here uses the scene's
geometry: an object is one connected piece of matter, a group is several pieces with space
between them. Among the masks that hold the click, the largest whose visible surface is one
connected piece is the object; a part is connected too but smaller, a group falls apart into
its members, and so does a mask of the whole foreground once the unsegmented floor between
the objects is left out.

Connectivity of a mask's surface in one view: its pixels are lifted to 3D with the rendered
(median) depth, and two 8-neighbour pixels are linked when their points lie closer than
``link_factor`` pixel footprints (depth / focal length; a surface seen at up to ~75° stays
linked, an occlusion edge with a gap behind it does not). The mask is connected when the
linked components holding the click hold at least ``min_share`` of its pixels (a group whose
big member dominates is still not "connected" from a click on its small member).

Connectivity alone takes a group whose members touch or stand close (a table and its chairs
seen from above at 128×96, a bowl with fruit in it, books on a shelf) for one object. How the
masks nest tells the levels apart first: in a view's inclusion tree (child inside its parent),
a mask's *height* is how many levels of masks lie below it — 0 for a part (nothing finer), 1
for an object (its parts inside it), 2 for a group (objects that hold parts), 3 and more for
the whole foreground. The SAM-like granularities (part, object, group; SAM's subpart, part,
whole) are three, so :func:`level_mask` takes as the object the largest mask holding the click
whose height is at most 1 and whose surface is connected, as the group the largest of height
at most 2, and as the part the smallest. One view's tree can miss a level (a dropped mask, a
merge); the prompt consensus over all views (:mod:`gsseg.masks.prompt_consensus`) outvotes
those views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

LEVELS = ("part", "object", "group")  # what a click may mean (gsseg.prompts.spec.PROMPT_LEVELS; gsseg.masks
# sits below gsseg.prompts, so the tuple is spelled here)


MAX_HEIGHT = {"object": 1, "group": 2}


@dataclass
class ConnectivitySettings:
    """link_factor: link distance in pixel footprints; min_share: pixel share the clicked
    component(s) need for "connected"; min_pixels: smaller masks count as connected. Defaults
    chosen on the built-in scenes with ground-truth masks (one click per object: link factors 1.5 /
    2.5 / 3 and shares 0.9 / 0.8 tried, 3 / 0.8 picked the object in the most views)."""

    link_factor: float = 3.0
    min_share: float = 0.8
    min_pixels: int = 8


def surface_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-space points [H,W,3] of every pixel centre at ``depth [H,W]`` (intrinsics ``K [3,3]``)."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u + 0.5 - K[0, 2]) / K[0, 0] * depth
    y = (v + 0.5 - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def is_connected(
    mask: np.ndarray,
    points: np.ndarray,
    footprint: np.ndarray,
    clicks: np.ndarray | None = None,
    settings: ConnectivitySettings | None = None,
) -> bool:
    """Whether the surface of ``mask [H,W]`` is one piece around the ``clicks [A,2]`` (x, y) pixels
    (module doc; without clicks: its largest component).

    points: [H,W,3] surface points of the view; footprint: [H,W] world size of a pixel there
    (0 where nothing is rendered: such pixels link to nothing).
    """
    settings = settings or ConnectivitySettings()
    mask = np.asarray(mask, bool) & (footprint > 0)
    n = int(mask.sum())
    if n < settings.min_pixels:
        return True
    h, w = mask.shape
    index = np.full((h, w), -1, np.int64)
    index[mask] = np.arange(n)
    pts, foot = points[mask], footprint[mask]
    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each 8-neighbour pair once: (y, x) -> (y + dy, x + dx)
        a = index[: h - dy, max(0, -dx) : w - max(0, dx)]
        b = index[dy:, max(0, dx) : w + min(0, dx)]
        ok = (a >= 0) & (b >= 0)
        a, b = a[ok], b[ok]
        pa, pb = pts[a], pts[b]
        limit = settings.link_factor * np.maximum(foot[a], foot[b])
        near = np.linalg.norm(pa - pb, axis=1) < limit
        src_parts.append(a[near])
        dst_parts.append(b[near])
    src, dst = np.concatenate(src_parts), np.concatenate(dst_parts)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    if n_comp == 1:
        return True
    sizes = np.bincount(comp, minlength=n_comp)
    hit = np.zeros(n_comp, bool)
    if clicks is not None and len(clicks):
        at = index[np.asarray(clicks)[:, 1], np.asarray(clicks)[:, 0]]
        hit[comp[at[at >= 0]]] = True
    share = sizes[hit].sum() if hit.any() else sizes.max()
    return bool(share >= settings.min_share * n)


def object_mask(
    vm,
    candidates: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    clicks: np.ndarray | None = None,
    settings: ConnectivitySettings | None = None,
) -> int:
    """The object among candidate masks of one view (module doc): the index in ``vm`` of the
    largest candidate whose surface is connected, else the smallest candidate.

    vm: the view's ViewMasks; candidates: [C] mask indices (e.g. the masks holding a click);
    depth: [H,W] rendered depth at the masks' resolution (0 = nothing rendered); K: [3,3]
    intrinsics at that resolution; clicks: [A,2] (x, y) pixels of the positive prompts.
    """
    candidates = np.asarray(candidates, np.int64)
    by_area = candidates[np.lexsort((candidates, -vm.areas[candidates]))]  # largest first
    points = surface_points(depth, K)
    footprint = np.where(depth > 0, depth / K[0, 0], 0.0)
    for m in by_area[:-1]:
        if is_connected(vm.mask(int(m)), points, footprint, clicks, settings):
            return int(m)
    return int(by_area[-1])


def mask_heights(tree) -> np.ndarray:
    """Levels of nested masks below every mask of one view: [M] int64 (0: no mask inside it).

    tree: the view's :class:`gsseg.masks.derive.InclusionTree` (parents are larger than their
    children, so visiting masks from the smallest up sees every child before its parent)."""
    heights = np.zeros(len(tree.parent), np.int64)
    for m in np.lexsort((np.arange(len(tree.areas)), tree.areas)):
        p = int(tree.parent[m])
        if p >= 0:
            heights[p] = max(heights[p], heights[m] + 1)
    return heights


def level_mask(
    vm,
    candidates: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    clicks: np.ndarray | None = None,
    level: str = "object",
    settings: ConnectivitySettings | None = None,
) -> int:
    """The mask of ``level`` (part | object | group) among candidate masks of one view (module
    doc): the index in ``vm`` of the smallest candidate for "part"; else of the largest
    candidate whose height in the view's inclusion tree is at most 1 (object) / 2 (group) and,
    for an object, whose surface is connected; the smallest candidate when none qualifies.

    vm: the view's ViewMasks; candidates: [C] mask indices (the masks holding the clicks);
    depth: [H,W] rendered depth at the masks' resolution; K: [3,3] intrinsics there; clicks: [A,2]
    (x, y) pixels of the positive prompts.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    candidates = np.asarray(candidates, np.int64)
    by_area = candidates[np.lexsort((candidates, -vm.areas[candidates]))]  # largest first
    if level == "part" or len(by_area) == 1:
        return int(by_area[-1])
    heights = mask_heights(vm.inclusion_tree())
    points = surface_points(depth, K)
    footprint = np.where(depth > 0, depth / K[0, 0], 0.0)
    for m in by_area[:-1]:
        if heights[m] > MAX_HEIGHT[level]:
            continue
        if level == "group" or is_connected(vm.mask(int(m)), points, footprint, clicks, settings):
            return int(m)
    return int(by_area[-1])


def object_label_map(vm, depth: np.ndarray, K: np.ndarray, settings: ConnectivitySettings | None = None) -> np.ndarray:
    """A flat object-level label map of one view: [H,W] int64, 1.. per object, 0 = none.

    Descends the view's mask inclusion tree from its roots: a mask whose surface is one
    connected piece (its largest component, module doc) is an object and takes its pixels not
    yet taken; a mask that falls apart (a group, the foreground) hands over to its children.
    vm: ViewMasks at the depth's resolution; depth [H,W] rendered depth; K [3,3] intrinsics.
    """
    h, w = depth.shape
    out = np.zeros((h, w), np.int64)
    if vm.n_masks == 0:
        return out
    tree = vm.inclusion_tree()
    points = surface_points(depth, K)
    footprint = np.where(depth > 0, depth / K[0, 0], 0.0)
    todo = sorted(tree.roots().tolist(), key=lambda m: -int(vm.areas[m]))
    next_id = 1
    while todo:
        m = todo.pop(0)
        mask = vm.mask(int(m))
        kids = tree.children(int(m))
        if len(kids) == 0 or is_connected(mask, points, footprint, None, settings):
            free = mask & (out == 0)
            if free.any():
                out[free] = next_id
                next_id += 1
        else:
            todo = sorted(todo + kids.tolist(), key=lambda j: -int(vm.areas[j]))
    return out
