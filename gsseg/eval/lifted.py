"""Metrics of a run's identity features on the test views.

- embeddings (contrastive, ultrametric): NC per ground-truth level over the hierarchy's cuts,
  SI, VC on the rotated pairs, and OmniSeg3D's two-level point query;
- logits with prompts (object-field, vote): SANeRF-HQ's prompted-object IoU / accuracy;
- logits without prompts (clustering): PQ^scene, RQ, SQ and matched mIoU.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.eval.metrics import (
    ObjectScore,
    depth_warp,
    hierarchical_query,
    mean_object_scores,
    mean_over_images,
    normalized_covering,
    panoptic_quality_scene,
    query_pairs,
    segmentation_injectivity,
    view_consistency,
)


def query_levels(levels: list[str]) -> tuple[str, str] | None:
    """(level 1, level 2) of the point-query protocol: part and object when present, else the
    two finest ground-truth levels."""
    if "part" in levels and "object" in levels:
        return "part", "object"
    return (levels[0], levels[1]) if len(levels) >= 2 else None


def _per_level() -> defaultdict[str, list[float]]:
    """Scores per GT level (part / object / group), one per view or view pair."""
    return defaultdict(list)


def summarise_levels(
    prefix: str, per_level: dict[str, list[float]], out: dict, mean_key: str | None = None, suffix: str = ""
) -> None:
    """Write ``<prefix>_<level><suffix>`` (mean over views) and the mean over levels (key
    ``mean_key``, default ``<prefix>_mean<suffix>``) into ``out``; levels without a value are left out."""
    means = {}
    for level, values in per_level.items():
        v = mean_over_images(values)
        if not math.isnan(v):
            out[f"{prefix}_{level}{suffix}"] = v
            means[level] = v
    if means:
        out[mean_key or f"{prefix}_mean{suffix}"] = float(np.mean(list(means.values())))


def warp_for_pair(ds, view: str, partner: str, tolerance: float) -> np.ndarray | None:
    """Depth warp [H,W] of ``view`` into ``partner`` from ground-truth depth, or None without depth."""
    d1, d2 = ds.depth(view), ds.depth(partner)
    if d1 is None or d2 is None:
        return None
    cams = ds.cameras("all")
    i1, i2 = cams.index_of(view), cams.index_of(partner)
    return depth_warp(
        d1.numpy(),
        cams.Ks[i1].numpy(),
        cams.viewmats[i1].numpy(),
        d2.numpy(),
        cams.Ks[i2].numpy(),
        cams.viewmats[i2].numpy(),
        tolerance,
    )


def hierarchy_metrics(ctx) -> dict:
    """NC (as coded, exclusive, dense), SI, VC and the point query of an embedding run.

    Main keys score the 3D hierarchy's cuts (per-Gaussian labels rendered into each view);
    keys ending in ``_2d`` score UFF's 2D mode (per-view cuts of the rendered feature map).
    """
    if ctx.kind != "embedding" or not ctx.ds.gt_levels:
        return {}
    from gsseg.eval.cuts import hierarchy_cuts, view_label_maps
    from gsseg.eval.pixel_cuts import pixel_cut_stack
    from gsseg.features.coverage import supervised_gaussians

    t0 = time.perf_counter()
    labels, names, source = hierarchy_cuts(ctx)
    ctx.timings["eval_cuts_s"] = time.perf_counter() - t0
    out: dict = {"cuts": len(names), "cuts_source": source}
    stacks: dict[str, np.ndarray] = {}

    def stack_of(view: str) -> np.ndarray:
        if view not in stacks:
            stacks[view] = view_label_maps(ctx, view, labels)
        return stacks[view]

    scored_cuts(ctx, stack_of, out, "", variants=True)
    out.update(cut_object_metrics(ctx, stack_of))
    if ctx.settings.pixel_cuts:
        t0 = time.perf_counter()

        supervised = torch.from_numpy(supervised_gaussians(ctx.record.coverage, len(ctx.scene)))[:, None].float()

        def pixel_stack(view: str) -> np.ndarray:
            # only supervised Gaussians are composited; pixels they barely cover stay unassigned
            out, _ = ctx.composite(view, torch.cat([ctx.record.features.float() * supervised, supervised], dim=1))
            return pixel_cut_stack(out[..., :-1], out[..., -1], min_alpha=ctx.settings.min_alpha)

        scored_cuts(ctx, pixel_stack, out, "_2d", variants=False)
        ctx.timings["eval_2d_s"] = time.perf_counter() - t0
    _point_query_metrics(ctx, out)
    return out


def cut_object_metrics(ctx, stack_of) -> dict:
    """How well the hierarchy's cuts hold the ground-truth objects, over the evaluation views:
    ``hier_object_miou`` (per object the best scene-level IoU of any segment of any cut, mean
    over objects) and ``hier_pq_scene`` (PQ^scene of the best single cut, ``hier_pq_cut`` its
    index). stack_of(view) -> [T,H,W] label maps of the cuts."""
    from gsseg.eval.metrics.panoptic import segment_ious

    if "object" not in ctx.ds.gt_levels:
        return {}
    views = [v for v in ctx.eval_views if ctx.gt(v, "object") is not None]
    if not views:
        return {}
    gts = [ctx.gt(v, "object") for v in views]
    stacks = [stack_of(v) for v in views]
    best_iou, best_pq, best_cut = None, -1.0, -1
    for t in range(stacks[0].shape[0]):
        preds = [st[t] for st in stacks]
        iou, _, _, _ = segment_ious(gts, preds, void=0, unassigned=0)
        per_object = iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0])
        best_iou = per_object if best_iou is None else np.maximum(best_iou, per_object)
        if ctx.settings.protocol == "official":
            from gsseg.eval.official.panoptic import panoptic_quality_official

            pq = panoptic_quality_official(gts, preds).pq
        else:
            pq = panoptic_quality_scene(gts, preds, void=0, unassigned=0).pq
        if pq > best_pq:  # NaN (category dropped) never wins
            best_pq, best_cut = pq, t
    out = {"hier_pq_scene": float(best_pq) if best_cut >= 0 else float("nan"), "hier_pq_cut": int(best_cut)}
    if best_iou is not None and len(best_iou):
        out["hier_object_miou"] = float(best_iou.mean())
    return out


def _protocol_kwargs(ctx) -> dict:
    st = ctx.settings
    return dict(samples=st.samples, seed=st.seed, min_size=st.min_size, background=0, unassigned=0)


def official_cuts(ctx, stack_of, out: dict, suffix: str, with_gt: bool) -> None:
    """The official protocols (``gsseg.eval.official``): NC, NC dense, SI per view and VC per rotated
    pair, per GT level and fg/bg, of the stacks ``stack_of(view) -> [T,H,W]``; ``with_gt`` adds
    ``vc_gt``, the official VC of the GT levels as the prediction (what the geometry allows)."""
    from gsseg.eval.official.dataset import score_dataset

    st = ctx.settings
    kw = dict(exact=st.exact, samples=st.samples, seed=st.seed, min_size=st.min_size, require_depth=False)
    task = ctx.task(f"cuts{suffix}", len(ctx.eval_views))
    r = score_dataset(ctx.ds, stack_of, suffix=suffix, advance=lambda v: ctx.advance(task, v), **kw)
    r.pop(f"views{suffix}", None)
    out.update(r)
    if with_gt:
        levels = ctx.ds.gt_levels

        def gt_stack(view: str) -> np.ndarray:
            maps = [ctx.gt(view, lv) for lv in levels]
            shape = next(m.shape for m in maps if m is not None)
            return np.stack([m if m is not None else np.zeros(shape, np.int64) for m in maps])

        gt = score_dataset(ctx.ds, gt_stack, **kw)
        if "vc_mean" in gt:
            out["vc_gt"] = gt["vc_mean"]


def scored_cuts(ctx, stack_of, out: dict, suffix: str, variants: bool) -> None:
    """NC, SI (per view) and VC (per rotated pair) of the label-map stacks ``stack_of(view) -> [T,H,W]``:
    the official protocols by default, gsseg's own variants with ``protocol="gsseg"`` (where
    ``variants`` adds the exclusive and dense NC and the exclusive SI)."""
    if ctx.settings.protocol == "official":
        official_cuts(ctx, stack_of, out, suffix, with_gt=variants)
        return
    kw = _protocol_kwargs(ctx)
    nc, nc_ex, nc_dense, si, si_ex, vc, vc_gt = (_per_level() for _ in range(7))
    task = ctx.task(f"cuts{suffix}", len(ctx.eval_views))
    for view in ctx.eval_views:
        stack = stack_of(view)
        for lv in ctx.ds.gt_levels:
            gt = ctx.gt(view, lv)
            if gt is None:
                continue
            nc[lv].append(normalized_covering(gt, stack, count_unassigned=True, **kw))
            si[lv].append(segmentation_injectivity(gt, stack, count_unassigned=True, **kw))
            if variants:
                nc_ex[lv].append(normalized_covering(gt, stack, count_unassigned=False, **kw))
                nc_dense[lv].append(normalized_covering(gt, stack, count_unassigned=True, dense=True, **kw))
                si_ex[lv].append(segmentation_injectivity(gt, stack, count_unassigned=False, **kw))
        if view in ctx.partners:
            _pair_consistency(ctx, view, stack, stack_of, vc, vc_gt if variants else None)
        ctx.advance(task, view)
    summarise_levels("nc", nc, out, suffix=suffix)
    summarise_levels("si", si, out, mean_key=f"si{suffix}", suffix=suffix)
    summarise_levels("vc", vc, out, mean_key=f"vc{suffix}", suffix=suffix)
    if variants:
        summarise_levels("nc_exclusive", nc_ex, out, suffix=suffix)
        summarise_levels("nc_dense", nc_dense, out, suffix=suffix)
        summarise_levels("si_exclusive", si_ex, out, mean_key=f"si_exclusive{suffix}", suffix=suffix)
        summarise_levels("vc_gt", vc_gt, out, mean_key="vc_gt")
    if vc:
        out[f"vc_pairs{suffix}"] = max(len(v) for v in vc.values())


def _pair_consistency(ctx, view: str, stack: np.ndarray, stack_of, vc: dict, vc_gt: dict | None) -> None:
    """VC per level of ``view`` against its rotated partner; ``vc_gt`` collects the ground truth
    scored the same way (the ceiling the depth warp allows at this resolution)."""
    kw = _protocol_kwargs(ctx)
    partner = ctx.partners[view]
    warp = warp_for_pair(ctx.ds, view, partner, ctx.settings.depth_tolerance)
    if warp is None:
        return
    partner_stack = stack_of(partner)
    for lv in ctx.ds.gt_levels:
        gt, gt_partner = ctx.gt(view, lv), ctx.gt(partner, lv)
        if gt is None:
            continue
        vc[lv].append(view_consistency(gt, stack, partner_stack, warp, count_unassigned=True, **kw))
        if vc_gt is not None and gt_partner is not None:
            vc_gt[lv].append(view_consistency(gt, gt, gt_partner, warp, **{**kw, "unassigned": None}))


def _point_query_metrics(ctx, out: dict) -> None:
    """OmniSeg3D's two-level query: one click per part ⊂ object pair of every evaluation view;
    the score map is the click's per-Gaussian similarity rendered in a view.

    Official (OmniSeg3D's released protocol): the threshold is fixed on the click's view (the
    reference) per level and transferred to the other evaluation views showing the part / object;
    a query's IoU is the mean over those views (``hier_miou_l1/l2``). The best threshold per view,
    in the click's view only, is an upper bound: ``hier_miou_best_l1/l2`` (the ``gsseg`` protocol's
    ``hier_miou_l1/l2``)."""
    from gsseg.segment import Click, render_score_map, scores_from_clicks

    qlv = query_levels(ctx.ds.gt_levels)
    if qlv is None:
        return
    l1s, l2s = [], []
    refs: list[tuple[str, object, torch.Tensor | None, float, float]] = []
    for view in ctx.eval_views:
        g1, g2 = ctx.gt(view, qlv[0]), ctx.gt(view, qlv[1])
        if g1 is None or g2 is None:
            continue
        for q in query_pairs(g1, g2, ctx.settings.min_size):
            click = Click(view=view, x=q.x + 0.5, y=q.y + 0.5)
            try:
                scores = scores_from_clicks(ctx.scene, ctx.record, [click], ctx.tables)
            except GssegError:  # nothing rendered under the query pixel: the query fails
                l1s.append(0.0)
                l2s.append(0.0)
                refs.append((view, q, None, 0.0, 0.0))
                continue
            score_map = render_score_map(ctx.table(view), scores)
            a, b = hierarchical_query(score_map, g1 == q.part, g2 == q.obj)
            l1s.append(a)
            l2s.append(b)
            if ctx.settings.protocol == "official":
                refs.append(
                    (view, q, scores, _ref_threshold(score_map, g1 == q.part), _ref_threshold(score_map, g2 == q.obj))
                )
    if not l1s:
        return
    key = "hier_miou" if ctx.settings.protocol == "gsseg" else "hier_miou_best"
    out[f"{key}_l1"] = float(np.mean(l1s))
    out[f"{key}_l2"] = float(np.mean(l2s))
    out[key] = (out[f"{key}_l1"] + out[f"{key}_l2"]) / 2
    out["hier_queries"] = len(l1s)
    if ctx.settings.protocol == "official":
        _transferred_queries(ctx, qlv, refs, out)


def _ref_threshold(score_map: np.ndarray, mask: np.ndarray) -> float:
    """The official threshold of a query level: the best on the reference view (first on ties)."""
    from gsseg.eval.official.transfer import THRESHOLDS, threshold_ious

    return float(THRESHOLDS[int(np.argmax(threshold_ious(score_map, mask)))])


def _transferred_queries(ctx, qlv: tuple[str, str], refs: list, out: dict, chunk: int = 16) -> None:
    """``hier_miou_l1/l2``: each query's reference thresholds applied in every other evaluation view
    where its part / object is visible (score maps of up to ``chunk`` queries rendered at once).
    Failed queries score 0; a query no other view shows is left out of that level."""
    from gsseg.segment.scores import ALPHA_EPS

    live = [i for i, r in enumerate(refs) if r[2] is not None]
    ious: list[list[list[float]]] = [[[], []] for _ in refs]
    for view in ctx.eval_views:
        g1, g2 = ctx.gt(view, qlv[0]), ctx.gt(view, qlv[1])
        if g1 is None or g2 is None:
            continue
        for c0 in range(0, len(live), chunk):
            ids = [i for i in live[c0 : c0 + chunk] if refs[i][0] != view]
            ids = [i for i in ids if (g1 == refs[i][1].part).any() or (g2 == refs[i][1].obj).any()]
            if not ids:
                continue
            total, alpha = ctx.composite(view, torch.stack([refs[i][2].float() for i in ids], dim=1))
            maps = np.where(alpha[..., None] > ALPHA_EPS, total / np.maximum(alpha, ALPHA_EPS)[..., None], 0.0)
            maps = np.clip(maps, 0.0, 1.0)
            for j, i in enumerate(ids):
                _, q, _, th1, th2 = refs[i]
                for lv, (mask, th) in enumerate(((g1 == q.part, th1), (g2 == q.obj, th2))):
                    if mask.any():
                        pred = maps[..., j] > th
                        ious[i][lv].append(float((pred & mask).sum() / (pred | mask).sum()))
    for lv, name in enumerate(("l1", "l2")):
        per_query = [
            0.0 if refs[i][2] is None else float(np.mean(ious[i][lv]))
            for i in range(len(refs))
            if refs[i][2] is None or ious[i][lv]
        ]
        if per_query:
            out[f"hier_miou_{name}"] = float(np.mean(per_query))
            out[f"hier_transfer_queries_{name}"] = len(per_query)
    if "hier_miou_l1" in out and "hier_miou_l2" in out:
        out["hier_miou"] = (out["hier_miou_l1"] + out["hier_miou_l2"]) / 2


# --- prompted objects -------------------------------------------------------------------------


def _prompts(extras: dict) -> dict | None:
    p = extras.get("prompts")
    return p if isinstance(p, dict) and (p.get("clicks") or p.get("points")) else None


def _gt_at_point(ds, point: np.ndarray, level: str, tolerance: float) -> int | None:
    """Ground-truth label of a 3D point: read in the first training view that sees it (GT depth)."""
    cams = ds.cameras("train")
    for i, view in enumerate(cams.names):
        depth = ds.depth(view)
        gt = ds.gt(view, level)
        if depth is None or gt is None:
            continue
        cam = cams.viewmats[i].double().numpy() @ np.append(point, 1.0)
        if cam[2] <= 1e-9:
            continue
        K = cams.Ks[i].double().numpy()
        x, y = int(np.floor(K[0, 0] * cam[0] / cam[2] + K[0, 2])), int(np.floor(K[1, 1] * cam[1] / cam[2] + K[1, 2]))
        h, w = gt.shape
        if 0 <= x < w and 0 <= y < h and depth[y, x] > 0 and abs(float(depth[y, x]) - cam[2]) <= tolerance * cam[2]:
            return int(gt[y, x])
    return None


def prompted_objects(ctx, level: str = "object") -> dict[int, int]:
    """Prompted object id k (1..K) -> the ground-truth ``level`` label its positive prompts hit
    (majority); objects whose prompts land on background are left out."""
    prompts = _prompts(ctx.extras())
    if prompts is None:
        return {}
    ds = ctx.ds
    votes: dict[int, list[int]] = defaultdict(list)
    for c in prompts.get("clicks", []):
        if not c.get("positive", True):
            continue
        if c["view"] not in ds.names("all"):
            raise GssegError(
                f"{ctx.run.features_pt}: prompt click in view {c['view']!r}, which {ds.root} does not have; "
                "the run was trained on another dataset"
            )
        gt = ds.gt(c["view"], level)
        if gt is not None:
            h, w = gt.shape
            x, y = int(np.floor(c["x"])), int(np.floor(c["y"]))
            if 0 <= x < w and 0 <= y < h:
                votes[int(c.get("object", 1))].append(int(gt[y, x]))
    for p, k in zip(prompts.get("points", []), prompts.get("point_objects", [])):
        if k > 0:
            label = _gt_at_point(ds, np.asarray(p, dtype=np.float64), level, ctx.settings.depth_tolerance)
            if label is not None:
                votes[int(k)].append(label)
    out = {}
    for k, labels in votes.items():
        values, counts = np.unique(labels, return_counts=True)
        best = int(values[np.argmax(counts)])
        if best != 0:
            out[k] = best
    return out


def prompted_metrics(ctx) -> dict:
    """SANeRF-HQ object mIoU / accuracy of a prompted logits run (channel k = prompted object k)."""
    if ctx.kind != "logits" or _prompts(ctx.extras()) is None or "object" not in ctx.ds.gt_levels:
        return {}
    objects = prompted_objects(ctx)
    if not objects:
        return {}
    dim = ctx.record.info.dim
    if max(objects) >= dim:
        raise GssegError(f"{ctx.run.features_pt}: {max(objects)} prompted objects but only {dim} logit channels")
    official = ctx.settings.protocol == "official"
    if official:  # SANeRF-HQ's main(): an object absent everywhere with nothing predicted has IoU NaN
        from gsseg.eval.official.prompted import OfficialObject

    scores: dict[int, ObjectScore] = {k: OfficialObject() if official else ObjectScore() for k in objects}
    shown = dict.fromkeys(objects, False)  # whether some evaluation view shows the object
    task = ctx.task("objects", len(ctx.eval_views))
    for view in ctx.eval_views:
        gt = ctx.gt(view, "object")
        if gt is None:
            continue
        logits, alpha = ctx.composite(view, ctx.record.features)
        pred = np.argmax(logits, axis=-1)
        pred[alpha < ctx.settings.min_alpha] = -1
        for k, gt_id in objects.items():
            scores[k].add(pred == k, gt == gt_id)
            shown[k] |= bool((gt == gt_id).any())
        ctx.advance(task, view)
    absent = []
    if official:
        from gsseg.eval.official.prompted import sanerf_summary

        # SANeRF-HQ scores an object on the views annotated with it: one that no evaluation view
        # shows has none, so it is left out (listed) rather than scored 0 or 0/0 = NaN
        absent = [k for k in scores if not shown[k]]
        miou, macc = sanerf_summary([sc for k, sc in scores.items() if k not in absent])
    else:
        miou, macc = mean_object_scores(list(scores.values()))
    out = {
        "object_miou": miou,
        "object_acc": macc,
        "objects": len(objects),
        "object_iou_per_object": {str(objects[k]): s.iou for k, s in scores.items()},
    }
    if absent:
        out["objects_not_in_eval_views"] = [objects[k] for k in absent]
    return out


# --- flat segmentations -----------------------------------------------------------------------


def panoptic_metrics(ctx) -> dict:
    """PQ^scene / RQ / SQ / matched mIoU of a flat logits run (per pixel: argmax of the
    composited logits, unassigned where alpha is low) against the object level."""
    if ctx.kind != "logits" or _prompts(ctx.extras()) is not None or not ctx.ds.gt_levels:
        return {}
    level = "object" if "object" in ctx.ds.gt_levels else ctx.ds.gt_levels[0]
    gts, preds = [], []
    task = ctx.task("panoptic", len(ctx.eval_views))
    for view in ctx.eval_views:
        gt = ctx.gt(view, level)
        if gt is None:
            continue
        logits, alpha = ctx.composite(view, ctx.record.features)
        pred = np.argmax(logits, axis=-1) + 1
        pred[alpha < ctx.settings.min_alpha] = 0
        gts.append(gt)
        preds.append(pred)
        ctx.advance(task, view)
    if not gts:
        return {}
    r = panoptic_quality_scene(gts, preds, void=0, unassigned=0)
    if ctx.settings.protocol == "official":  # Panoptic Lifting's rules; "miou" stays gsseg's matched mIoU
        from gsseg.eval.official.panoptic import panoptic_quality_official

        o = panoptic_quality_official(gts, preds)
        r = replace(r, pq=o.pq, sq=o.sq, rq=o.rq, tp=o.tp, fp=o.fp, fn=o.fn)
    return {
        "pq_scene": r.pq,
        "rq_scene": r.rq,
        "sq_scene": r.sq,
        "miou": r.miou,
        "pq_tp": r.tp,
        "pq_fp": r.fp,
        "pq_fn": r.fn,
        "pq_level": level,
    }
