"""Click queries -> a score in [0,1] for every Gaussian, and per-view score maps.

Embeddings compare by cosine similarity, mapped to ``(cos + 1) / 2``; logits by the softmax
probability of the class the query picks (the argmax of the query's distribution).
Several positive clicks are a union (max); negative clicks subtract where they beat it:
``score = pos * clamp(1 - relu(neg - pos) / margin, 0, 1)``, so a Gaussian no closer to the
negative clicks than to the positive ones keeps its score, and one closer to a negative click
by ``margin`` (0.05 by default) or more drops to 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gsseg.errors import GssegError
from gsseg.render.tables import ContributionTable, TableCache, render_features_from_table
from gsseg.segment.clicks import Click

# Fixed thresholds: logits (a probability); embeddings only where the scores do not split (all
# alike) or a caller has no score distribution yet — `gsseg segment` / `export` choose the
# embeddings' threshold per click (gsseg.segment.threshold).
DEFAULT_SELECT_THRESHOLD = {"embedding": 0.85, "logits": 0.5}
NEGATIVE_MARGIN = 0.05
ALPHA_EPS = 1e-4


def feature_space(features: Tensor, kind: str) -> Tensor:
    """[N,D] vectors compared by the queries and the hierarchy: unit embeddings, or softmax
    probabilities of logits."""
    if kind == "embedding":
        return torch.nn.functional.normalize(features.float(), dim=-1)
    if kind == "logits":
        return torch.softmax(features.float(), dim=-1)
    raise ValueError(f"unknown feature kind {kind!r}")


def pixel_features(
    table: ContributionTable, xs: Tensor, ys: Tensor, features: Tensor, kind: str, supervised: Tensor | None = None
) -> Tensor:
    """Features of pixels ``xs, ys [P]`` rendered through ``table`` (composite / alpha), mapped to
    the feature space -> [P,D]; rows of pixels no Gaussian covers are NaN. With ``supervised
    [N] bool`` only those Gaussians are composited (the others' vectors are untrained noise)."""
    pix = table.pixel_ids(xs, ys)
    ones = torch.ones(features.shape[0], 1, dtype=features.dtype, device=features.device)
    if supervised is not None:
        ones = ones * supervised.to(ones)[:, None]
    rendered = render_features_from_table(table, pix, torch.cat([features.float() * ones, ones], dim=1))
    alpha = rendered[:, -1:]
    out = feature_space(rendered[:, :-1] / alpha.clamp_min(ALPHA_EPS), kind)
    out[alpha[:, 0] < ALPHA_EPS] = float("nan")
    return out


def query_vector(
    click: Click,
    features: Tensor,
    kind: str,
    tables: TableCache,
    means: Tensor,
    opacities: Tensor,
    k_nearest: int = 8,
    supervised: Tensor | None = None,
) -> Tensor:
    """The query [D] in the feature space for one click.

    A pixel click renders the features at that pixel; a 3D point averages the feature-space
    vectors of its ``k_nearest`` Gaussians weighted by opacity. ``supervised [N] bool``: only
    those Gaussians make the query.
    """
    if click.is_point:
        from scipy.spatial import cKDTree

        pool = np.arange(len(means)) if supervised is None else np.flatnonzero(supervised.cpu().numpy())
        k = min(k_nearest, len(pool))
        _, near = cKDTree(means.detach().cpu().numpy()[pool]).query(np.asarray(click.point, np.float64), k=k)
        idx = torch.as_tensor(pool[np.atleast_1d(near)], dtype=torch.long, device=features.device)
        w = opacities[idx].float()[:, None]
        q = (feature_space(features[idx], kind) * w).sum(0) / w.sum().clamp_min(1e-12)
    else:
        view, cx, cy = click.pixel()
        names = tables.cameras.names
        if view not in names:
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            raise GssegError(f"click {click}: no view named {view!r} (views: {shown})")
        table = tables.get(view)
        x, y = int(math.floor(cx)), int(math.floor(cy))
        if not (0 <= x < table.width and 0 <= y < table.height):
            raise GssegError(f"click {click}: pixel outside the {table.width}x{table.height} image of {view}")
        q = pixel_features(table, torch.tensor([x]), torch.tensor([y]), features, kind, supervised)[0]
        if torch.isnan(q).any():
            raise GssegError(f"click {click}: no Gaussian covers that pixel (background); click on an object")
    if kind == "embedding":
        return torch.nn.functional.normalize(q, dim=0)
    return q


def similarity(space: Tensor, query: Tensor, kind: str) -> Tensor:
    """[N] score in [0,1] of feature-space vectors ``space [N,D]`` against one ``query [D]``."""
    if kind == "embedding":
        return ((space @ query.to(space)) + 1.0).mul(0.5).clamp(0.0, 1.0)
    return space[:, int(torch.argmax(query))].clamp(0.0, 1.0)


def combine_scores(positive: list[Tensor], negative: list[Tensor], margin: float = NEGATIVE_MARGIN) -> Tensor:
    """Union of positive scores [N] (max), suppressed where negative ones beat it (see module doc)."""
    if not positive:
        raise GssegError("at least one positive click is needed (negative clicks only subtract)")
    pos = torch.stack(positive).amax(0)
    if not negative:
        return pos
    neg = torch.stack(negative).amax(0)
    keep = (1.0 - torch.relu(neg - pos) / margin).clamp(0.0, 1.0)
    return (pos * keep).clamp(0.0, 1.0)


def scores_from_features(
    features: Tensor,
    kind: str,
    clicks: list[Click],
    tables: TableCache,
    means: Tensor,
    opacities: Tensor,
    k_nearest: int = 8,
    supervised: Tensor | np.ndarray | None = None,
) -> Tensor:
    """Per-Gaussian scores [N] in [0,1] for ``clicks``.

    features: [N,D] raw identity features of ``kind``; tables: contribution tables of the views
    the clicks name; means [N,3], opacities [N] (activated) for 3D-point clicks; supervised:
    [N] bool, the Gaussians the input masks trained (the others score 0 and make no query;
    None: all).
    """
    space = feature_space(features, kind)
    sup = None if supervised is None else torch.as_tensor(np.asarray(supervised, bool), device=features.device)
    pos: list[Tensor] = []
    neg: list[Tensor] = []
    for click in clicks:
        q = query_vector(click, features, kind, tables, means, opacities, k_nearest, sup)
        (pos if click.positive else neg).append(similarity(space, q, kind))
    scores = combine_scores(pos, neg)
    return scores if sup is None else scores * sup.to(scores)


def scores_from_clicks(scene, record, clicks: list[Click], tables: TableCache, k_nearest: int = 8) -> Tensor:
    """Per-Gaussian scores [N] in [0,1] of a ``GaussianScene`` with its ``FeatureRecord`` (only the
    Gaussians its mask coverage marks as supervised score); ``tables`` must be built from this
    scene's geometry."""
    from gsseg.features.coverage import supervised_gaussians

    features = record.features.to(scene.means.device)
    supervised = supervised_gaussians(record.coverage, len(scene))
    return scores_from_features(
        features, record.info.kind, clicks, tables, scene.means, scene.opacities, k_nearest, supervised
    )


def render_score_map(table: ContributionTable, scores: Tensor) -> np.ndarray:
    """float32 [H,W] in [0,1]: per-Gaussian ``scores [N]`` composited through ``table`` and
    normalised by alpha (0 where nothing is hit)."""
    pix = torch.arange(table.width * table.height, dtype=torch.int64)
    vals = torch.stack([scores.float().cpu(), torch.ones_like(scores, dtype=torch.float32).cpu()], dim=1)
    out = render_features_from_table(table.to("cpu"), pix, vals)
    alpha = out[:, 1]
    s = torch.where(alpha > ALPHA_EPS, out[:, 0] / alpha.clamp_min(ALPHA_EPS), torch.zeros_like(alpha))
    return s.clamp(0.0, 1.0).reshape(table.height, table.width).numpy().astype(np.float32)
