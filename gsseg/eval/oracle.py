"""The ceiling of lifting on a given geometry: every Gaussian labelled with the ground truth.

Each Gaussian takes the ground-truth part its centre projects to in the training views that see
it (ground-truth depth agrees), by majority; objects and groups follow from ``hierarchy.json``.
Rendering these labels and scoring them with the same protocols shows how much of a gap to
the targets comes from the RGB stage's geometry rather than from an identity objective.
"""

from __future__ import annotations

import numpy as np

from gsseg.eval.metrics import ObjectScore, mean_object_scores, panoptic_quality_scene


def gaussian_gt_parts(means: np.ndarray, ds, tolerance: float = 0.03) -> np.ndarray:
    """Ground-truth part id per Gaussian centre ``means [N,3]`` (majority over the training
    views that see it; -1 when none does): [N] int64."""
    n = len(means)
    cams = ds.cameras("train")
    seen_g, seen_p = [], []
    homog = np.c_[means.astype(np.float64), np.ones(n)]
    for i, view in enumerate(cams.names):
        depth, gt = ds.depth(view), ds.gt(view, "part")
        if depth is None or gt is None:
            continue
        depth = depth.numpy()
        cam = homog @ cams.viewmats[i].double().numpy().T
        K = cams.Ks[i].double().numpy()
        z = cam[:, 2]
        front = z > 1e-9
        zs = np.where(front, z, 1.0)
        x = np.floor(K[0, 0] * cam[:, 0] / zs + K[0, 2]).astype(np.int64)
        y = np.floor(K[1, 1] * cam[:, 1] / zs + K[1, 2]).astype(np.int64)
        h, w = gt.shape
        idx = np.flatnonzero(front & (x >= 0) & (x < w) & (y >= 0) & (y < h))
        d = depth[y[idx], x[idx]]
        seen = idx[(d > 0) & (np.abs(d - z[idx]) <= tolerance * z[idx])]
        seen_g.append(seen)
        seen_p.append(gt[y[seen], x[seen]].astype(np.int64))
    best = np.full(n, -1, dtype=np.int64)
    if not seen_g:
        return best
    g, p = np.concatenate(seen_g), np.concatenate(seen_p)
    span = int(p.max()) + 1 if len(p) else 1
    keys, counts = np.unique(g * span + p, return_counts=True)
    kg, kp = keys // span, keys % span
    order = np.lexsort((kp, -counts, kg))  # per Gaussian: most votes first, ties to the smaller id
    first = np.ones(len(order), dtype=bool)
    first[1:] = kg[order][1:] != kg[order][:-1]
    best[kg[order][first]] = kp[order][first]
    return best


def oracle_labels(scene, ds) -> dict[str, np.ndarray]:
    """Per-Gaussian ground-truth labels {level: [N] int64}, shifted by +1 so that the
    background (0) is a segment and 0 means "seen by no training view"."""
    part = gaussian_gt_parts(scene.means.detach().cpu().numpy(), ds)
    parts = (ds.hierarchy or {}).get("parts", {})
    out = {"part": part + 1}
    for level in ("object", "group"):
        if level in ds.gt_levels:
            table = {int(k): int(v.get(level, 0)) for k, v in parts.items() if isinstance(v, dict)}
            out[level] = np.array([table.get(int(p), 0) + 1 if p >= 0 else 0 for p in part], dtype=np.int64)
    return {lv: v for lv, v in out.items() if lv in ds.gt_levels}


def oracle_metrics(ctx) -> dict:
    """``oracle_nc_*``, ``oracle_si``, ``oracle_vc``, ``oracle_pq_scene``, ``oracle_object_miou`` of
    the ground-truth-labelled Gaussians of ``ctx.scene`` (no features needed)."""
    from gsseg.eval.cuts import view_label_maps
    from gsseg.eval.lifted import scored_cuts

    ds = ctx.ds
    if "part" not in ds.gt_levels or ds.hierarchy is None:
        return {}
    labels = oracle_labels(ctx.scene, ds)
    stack = np.stack([labels[lv] for lv in ds.gt_levels])
    inner: dict = {}
    scored_cuts(ctx, lambda view: view_label_maps(ctx, view, stack), inner, "", variants=False)
    out = {f"oracle_{k}": v for k, v in inner.items()}
    if "object" in labels:
        gts, preds = [], []
        for view in ctx.eval_views:
            gt = ctx.gt(view, "object")
            if gt is not None:
                gts.append(gt)
                preds.append(view_label_maps(ctx, view, labels["object"][None])[0] - 1)
        if gts:
            pq = panoptic_quality_scene(gts, preds, void=0, unassigned=-1)
            ids = sorted(set(np.unique(np.concatenate([g.ravel() for g in gts])).tolist()) - {0})
            scores = [ObjectScore() for _ in ids]
            for gt, pred in zip(gts, preds):
                for s, i in zip(scores, ids):
                    s.add(pred == i, gt == i)
            out.update({"oracle_pq_scene": pq.pq, "oracle_object_miou": mean_object_scores(scores)[0],
                        "oracle_object_acc": mean_object_scores(scores)[1]})
    return out
