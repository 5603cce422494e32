"""The official per-view protocols over a dataset's test views and their partners.

Scores NC, NC dense, SI (each test view) and VC (each test view with a partner in ``pairs.json``)
per GT level plus ``fgbg``; dataset score = plain mean of the image scores over the views (a view
with no scored segment is left out, where the official code would stop on a division by zero).
Keys: ``<metric>_<level>``, ``<metric>_mean`` (mean over the dataset's own levels, fg/bg apart),
``si`` and ``vc`` (the same means, the headline keys), ``per_view: {stem: {"nc_part": ...}}``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from gsseg.errors import GssegError
from gsseg.eval.official.geometry import PairGeometry, pair_geometry
from gsseg.eval.official.levels import FGBG, official_levels
from gsseg.eval.official.protocols import DEFAULT_MIN_SIZE, DEFAULT_SAMPLES, score_view

METRICS = ("nc", "nc_dense", "si", "vc")


def eval_views_of(ds) -> tuple[list[str], dict[str, str]]:
    """(test views scored, {view: partner}): every test view that is not only another's partner."""
    partners = dict(ds.pairs)
    partner_only = set(partners.values()) - set(partners)
    return [v for v in ds.names("test") if v not in partner_only], partners


def geometry_of(ds, view: str, partner: str) -> PairGeometry:
    """tau / V / V' of a view pair from the dataset's cameras and z-depth; GssegError without depth."""
    depth = {}
    for name in (view, partner):
        d = ds.depth(name)
        if d is None:
            raise GssegError(f"{ds.depth_path(name)}: not found: view consistency needs the depth of {name}")
        depth[name] = d.numpy()
    cams = ds.cameras("all")
    i, j = cams.index_of(view), cams.index_of(partner)
    return pair_geometry(
        depth[view],
        cams.Ks[i].double().numpy(),
        cams.viewmats[i].double().numpy(),
        depth[partner],
        cams.Ks[j].double().numpy(),
        cams.viewmats[j].double().numpy(),
    )


def score_dataset(
    ds,
    stack_of: Callable[[str], np.ndarray],
    exact: bool = False,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    suffix: str = "",
    advance: Callable[[str], None] | None = None,
    require_depth: bool = True,
) -> dict:
    """Official NC / NC dense / SI / VC of the label-map stacks ``stack_of(view) -> [C,H,W]``.

    Returns the summary keys (module doc, each with ``suffix``) and ``per_view``. A pair without
    depth is an error with ``require_depth``, else its VC is skipped.
    """
    views, partners = eval_views_of(ds)
    levels = list(ds.gt_levels)
    per_view: dict[str, dict[str, float]] = {}
    collected: dict[str, list[float]] = defaultdict(list)
    n_pairs = 0
    for view in views:
        gts = {lv: g for lv in levels if (g := ds.gt(view, lv)) is not None}
        if not gts:
            continue
        stack = stack_of(view)
        partner = partners.get(view)
        geo = partner_stack = None
        if partner is not None and (
            require_depth or (ds.depth_path(view).is_file() and ds.depth_path(partner).is_file())
        ):
            geo = geometry_of(ds, view, partner)
            partner_stack = stack_of(partner)
            n_pairs += 1
        r = score_view(official_levels(gts), stack, partner_stack, geo, exact, samples, seed, min_size)
        mine: dict[str, float] = {}
        for metric, by_level in r.items():
            for lv, score in by_level.items():
                mine[f"{metric}_{lv}{suffix}"] = score.image
                if not math.isnan(score.image):
                    collected[f"{metric}_{lv}{suffix}"].append(score.image)
        per_view[view] = mine
        if advance is not None:
            advance(view)
    out: dict = {f"views{suffix}": len(per_view), f"vc_pairs{suffix}": n_pairs}
    for key, values in collected.items():
        out[key] = float(np.mean(values))
    for metric in METRICS:
        own = [out[f"{metric}_{lv}{suffix}"] for lv in levels if f"{metric}_{lv}{suffix}" in out]
        if own:
            out[f"{metric}_mean{suffix}"] = float(np.mean(own))
    for metric in ("si", "vc"):
        if f"{metric}_mean{suffix}" in out:
            out[f"{metric}{suffix}"] = out[f"{metric}_mean{suffix}"]
    out[f"per_view{suffix}"] = per_view
    return out


__all__ = ["FGBG", "METRICS", "eval_views_of", "geometry_of", "score_dataset"]
