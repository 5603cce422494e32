"""The input 2D masks scored like a lifted result: NC per ground-truth level and the
two-level point query, on the training views that have both masks and ground truth.

This is the baseline every lifted segmentation must beat (the papers report "SAM input" the
same way). A sampled pixel's candidate segments are the input masks containing it; a query's
score map counts the query pixel's masks shared by each pixel.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from gsseg.eval.metrics import covering_from_masks, hierarchical_query, masks_score_map, query_pairs


def _view_masks(store, view: str, height: int, width: int):
    vm = store.load(view)
    if (vm.height, vm.width) != (height, width):
        vm = vm.resized(height, width)
    return vm


def input_mask_metrics(ctx, max_views: int | None = None) -> dict:
    """``input_nc_<level>``, ``input_nc_mean`` (+ dense variants) and ``input_hier_miou_l1/l2``.

    Empty when the dataset has no masks or no ground truth. ``max_views`` limits the training
    views scored (evenly spaced), None = all.
    """
    from gsseg.eval.lifted import query_levels, summarise_levels
    from gsseg.masks.store import MaskStore

    ds, st = ctx.ds, ctx.settings
    levels = ds.gt_levels
    store = MaskStore(ds.masks_dir)
    views = [v for v in ds.names("train") if store.has(v)]
    if not views or not levels:
        return {}
    if max_views is not None and len(views) > max_views:
        views = [views[i] for i in np.linspace(0, len(views) - 1, max_views).round().astype(int)]
    kw = dict(samples=st.samples, seed=st.seed, min_size=st.min_size, background=0)
    nc, nc_dense = defaultdict(list), defaultdict(list)
    l1s, l2s = [], []
    qlv = query_levels(levels)
    task = ctx.task("input masks", len(views))
    for view in views:
        w, h = ds.size(view)
        vm = _view_masks(store, view, h, w)
        for lv in levels:
            gt = ds.gt(view, lv)
            if gt is None:
                continue
            per = covering_from_masks(gt, vm.patch_index, vm.membership, **kw)
            if per:
                nc[lv].append(float(np.mean(list(per.values()))))
                dense = covering_from_masks(gt, vm.patch_index, vm.membership, dense=True, **kw)
                nc_dense[lv].append(float(np.mean(list(dense.values()))))
        if qlv is not None:
            g1, g2 = ds.gt(view, qlv[0]), ds.gt(view, qlv[1])
            if g1 is not None and g2 is not None:
                for q in query_pairs(g1, g2, st.min_size):
                    score = masks_score_map(vm.patch_index, vm.membership, q.y, q.x)
                    a, b = hierarchical_query(score, g1 == q.part, g2 == q.obj)
                    l1s.append(a)
                    l2s.append(b)
        ctx.advance(task, view)
    out: dict = {"input_views": len(views)}
    summarise_levels("input_nc", nc, out)
    summarise_levels("input_nc_dense", nc_dense, out)
    if l1s:
        out["input_hier_miou_l1"] = float(np.mean(l1s))
        out["input_hier_miou_l2"] = float(np.mean(l2s))
        out["input_hier_miou"] = (out["input_hier_miou_l1"] + out["input_hier_miou_l2"]) / 2
    return out
