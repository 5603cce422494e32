"""The ceiling of lifting on a given geometry: every Gaussian labelled with the ground truth.

Each Gaussian takes the ground-truth part its centre projects to in the training views that see
it (ground-truth depth agrees), by majority; objects and groups follow from ``hierarchy.json``
(without one, every ``gt/<level>`` is projected the same way). Rendering these labels and
scoring them with the same protocols shows how much of a gap to the targets comes from the
RGB stage's geometry rather than from an identity objective; feeding them, as features, to the
segmentation stage (:func:`oracle_tree_metrics`) shows what that stage loses.
"""

from __future__ import annotations

import numpy as np
import torch

from gsseg.eval.metrics import ObjectScore, mean_object_scores, panoptic_quality_scene


def gaussian_gt_parts(means: np.ndarray, ds, tolerance: float = 0.03, level: str = "part") -> np.ndarray:
    """Ground-truth ``level`` label per Gaussian centre ``means [N,3]`` (majority over the training
    views that see it; -1 when none does): [N] int64."""
    n = len(means)
    cams = ds.cameras("train")
    seen_g, seen_p = [], []
    homog = np.c_[means.astype(np.float64), np.ones(n)]
    for i, view in enumerate(cams.names):
        depth, gt = ds.depth(view), ds.gt(view, level)
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
    background (0) is a segment and 0 means "seen by no training view".

    With a ``hierarchy.json`` part map, coarser levels follow from each Gaussian's part (one
    consistent hierarchy); without one every level is projected on its own."""
    means = scene.means.detach().cpu().numpy()
    levels = list(ds.gt_levels)
    parts = (ds.hierarchy or {}).get("parts", {})
    finest = levels[0]
    base = gaussian_gt_parts(means, ds, level=finest)
    out = {finest: base + 1}
    for level in levels[1:]:
        if finest == "part" and parts:
            table = {int(k): int(v.get(level, 0)) for k, v in parts.items() if isinstance(v, dict)}
            out[level] = np.array([table.get(int(p), 0) + 1 if p >= 0 else 0 for p in base], dtype=np.int64)
        else:
            out[level] = gaussian_gt_parts(means, ds, level=level) + 1
    return out


def oracle_metrics(ctx) -> dict:
    """``oracle_nc_*``, ``oracle_si``, ``oracle_vc``, ``oracle_pq_scene``, ``oracle_object_miou`` of
    the ground-truth-labelled Gaussians of ``ctx.scene`` (no features needed)."""
    from gsseg.eval.cuts import view_label_maps
    from gsseg.eval.lifted import scored_cuts

    ds = ctx.ds
    if not ds.gt_levels or ds.depth(ds.names("train")[0]) is None:
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
            if ctx.settings.protocol == "official":  # Panoptic Lifting: label 0 = unassigned (void)
                from gsseg.eval.official.panoptic import panoptic_quality_official

                pq = panoptic_quality_official(gts, [np.where(p < 0, 0, p + 1) for p in preds]).pq
            else:
                pq = panoptic_quality_scene(gts, preds, void=0, unassigned=-1).pq
            ids = sorted(set(np.unique(np.concatenate([g.ravel() for g in gts])).tolist()) - {0})
            scores = [ObjectScore() for _ in ids]
            for gt, pred in zip(gts, preds):
                for s, i in zip(scores, ids):
                    s.add(pred == i, gt == i)
            out.update(
                {
                    "oracle_pq_scene": pq,
                    "oracle_object_miou": mean_object_scores(scores)[0],
                    "oracle_object_acc": mean_object_scores(scores)[1],
                }
            )
    return out


LEVEL_WEIGHTS = {"part": 1.0, "object": 0.6, "group": 0.4}


def oracle_features(labels: dict[str, np.ndarray]) -> torch.Tensor:
    """Hierarchical embeddings [N,F] made from per-Gaussian ground-truth labels (as from
    :func:`oracle_labels`): one weighted one-hot block per level, so two Gaussians' cosine is
    1 within a part and falls level by level (same object 0.34, same group 0.11, else 0)."""
    blocks = []
    for level, labs in labels.items():
        onehot = np.zeros((len(labs), int(labs.max()) + 1), np.float32)
        onehot[np.arange(len(labs)), labs] = LEVEL_WEIGHTS.get(level, 0.5)
        blocks.append(onehot[:, 1:])  # label 0 = seen by no view: no block entry
    return torch.from_numpy(np.concatenate(blocks, axis=1))


def oracle_tree_metrics(ctx) -> dict:
    """``oracle_tree_*``: the run's hierarchy / cut / label-map stage fed with ground-truth
    features (:func:`oracle_features` of the Gaussians some training view sees), scored like a
    lifted hierarchy. Against the ``oracle_*`` rows (labels rendered directly) it shows what
    the segmentation stage loses; against a run's own scores, what its features lose."""
    from gsseg.eval.cuts import select_plateaus, view_label_maps
    from gsseg.eval.lifted import cut_object_metrics, scored_cuts
    from gsseg.segment.hierarchy import hierarchy_from_features

    ds = ctx.ds
    if not ds.gt_levels or ds.depth(ds.names("train")[0]) is None:
        return {}
    labels = oracle_labels(ctx.scene, ds)
    seen = labels[ds.gt_levels[0]] > 0
    st = ctx.settings
    h = hierarchy_from_features(
        ctx.scene.means, oracle_features(labels), "embedding", k=st.hierarchy_k, linkage=st.linkage, supervised=seen
    )
    plats = [p for p in h.plateaus() if p.regions >= 1]
    keep = select_plateaus(np.array([p.regions for p in plats]), np.array([p.length for p in plats]), st.max_cuts)
    cuts = np.stack([h.cut_threshold(plats[i].middle) for i in keep]).astype(np.int32)
    stacks: dict[str, np.ndarray] = {}

    def stack_of(view: str) -> np.ndarray:
        if view not in stacks:
            stacks[view] = view_label_maps(ctx, view, cuts)
        return stacks[view]

    inner: dict = {}
    scored_cuts(ctx, stack_of, inner, "", variants=False)
    inner.update(cut_object_metrics(ctx, stack_of))
    return {f"oracle_tree_{k}": v for k, v in inner.items()}
