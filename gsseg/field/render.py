"""Ray marching and volume rendering of a radiance field: RGB, depth, alpha and identity features.

Samples along each ray: ``samples_inner`` linear in distance out to the far side of the unit ball
of the normalised scene, then ``samples_outer`` linear in disparity out to ``far`` (mip-NeRF 360's
spacing for unbounded scenes); samples in cells the occupancy grid marks empty get sigma = 0 and
are never evaluated; colour and features are evaluated only where the weight exceeds ``min_weight``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gsseg.field.model import RadianceField
from gsseg.field.occupancy import OccupancyGrid
from gsseg.field.volume import render_weights

NEAR = 0.05  # first sample distance in normalised units


@dataclass
class RaySamples:
    """points [R,S,3] world; t [R,S] z-depth of each sample; deltas [R,S] segment lengths in
    normalised units (what sigma is measured per)."""

    points: Tensor
    t: Tensor
    deltas: Tensor


def sample_rays(
    field: RadianceField, origins: Tensor, dirs: Tensor, generator: torch.Generator | None = None
) -> RaySamples:
    """Samples along rays ``origins + t dirs`` [R,3]; jittered inside each segment when ``generator``
    is given (training), at segment midpoints otherwise."""
    cfg = field.cfg
    o_n = (origins - field.center) / field.radius
    speed = (dirs / field.radius).norm(dim=1, keepdim=True)  # normalised length per unit t
    r = o_n.shape[0]
    lin = torch.linspace(0.0, 1.0, cfg.samples_inner + 1, device=origins.device)
    end = torch.clamp(o_n.norm(dim=1, keepdim=True) + 1.0, min=2.0 * NEAR)
    edges = NEAR + (end - NEAR) * lin[None]  # [R,S_in+1]
    if cfg.samples_outer > 0:
        k = torch.linspace(0.0, 1.0, cfg.samples_outer + 1, device=origins.device)[1:]
        outer = 1.0 / (1.0 / end + (1.0 / cfg.far - 1.0 / end) * k[None])
        edges = torch.cat([edges, outer], dim=1)
    deltas = edges[:, 1:] - edges[:, :-1]
    if generator is not None:
        frac = torch.rand(r, deltas.shape[1], generator=generator).to(origins.device)
    else:
        frac = torch.full_like(deltas, 0.5)
    u = edges[:, :-1] + frac * deltas
    t = u / speed
    points = origins[:, None, :] + t[..., None] * dirs[:, None, :]
    return RaySamples(points, t, deltas)


def render_rays(
    field: RadianceField,
    grid: OccupancyGrid | None,
    origins: Tensor,
    dirs: Tensor,
    background: Tensor | None = None,
    generator: torch.Generator | None = None,
    rgb: bool = True,
    features: bool = False,
    frozen_geometry: bool = False,
    min_weight: float = 1e-4,
    feature_activation=None,
) -> dict[str, Tensor]:
    """Volume-render rays [R,3] (``dirs`` with camera-space z = 1, so depth is z-depth).

    Returns rgb [R,3] (over ``background`` [3] when given), depth [R] (expected z-depth / alpha, 0
    where alpha = 0), alpha [R], features [R,D] (``feature_activation`` of the per-sample features,
    composited, no background; when ``features``) with sample_features [S,D] (raw, per kept sample),
    samples (number of field density evaluations). ``frozen_geometry`` computes the weights without gradients.
    """
    r = origins.shape[0]
    s = sample_rays(field, origins, dirs, generator)
    n_s = s.t.shape[1]
    flat_pts = s.points.reshape(-1, 3)
    if grid is not None:
        keep = grid.lookup(field.normalise(flat_pts))
        idx = keep.nonzero()[:, 0]
    else:
        idx = torch.arange(r * n_s, device=origins.device)
    with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen_geometry):
        sigma_p, geo = field.density(flat_pts[idx])
        sigmas = torch.zeros(r * n_s, device=origins.device, dtype=sigma_p.dtype).index_put((idx,), sigma_p)
        weights, _ = render_weights(sigmas.reshape(r, n_s), s.deltas)
    w_flat = weights.reshape(-1)[idx]
    sel = (w_flat.detach() > min_weight).nonzero()[:, 0]
    ray_of = torch.div(idx[sel], n_s, rounding_mode="floor")
    w = w_flat[sel]
    alpha = weights.sum(dim=1)
    out: dict[str, Tensor] = {"alpha": alpha, "samples": torch.tensor(int(idx.numel()))}
    depth = torch.zeros(r, device=origins.device).index_add(0, ray_of, w * s.t.reshape(-1)[idx[sel]])
    out["depth"] = torch.where(alpha > 1e-6, depth / alpha.clamp_min(1e-6), torch.zeros_like(depth))
    if rgb:
        d = dirs / dirs.norm(dim=1, keepdim=True)
        colors = field.color(geo[sel], d[ray_of])
        color = torch.zeros(r, 3, device=origins.device).index_add(0, ray_of, w[:, None] * colors)
        if background is not None:
            color = color + (1.0 - alpha)[:, None] * background.reshape(1, 3)
        out["rgb"] = color
    if features:
        raw = field.features(flat_pts[idx[sel]])
        f = feature_activation(raw) if feature_activation is not None else raw
        out["features"] = torch.zeros(r, f.shape[1], device=origins.device, dtype=f.dtype).index_add(
            0, ray_of, w[:, None] * f
        )
        out["sample_features"] = raw
    return out


@torch.no_grad()
def render_image(
    field: RadianceField,
    grid: OccupancyGrid | None,
    cameras,
    index: int = 0,
    background: Tensor | None = None,
    features: bool = False,
    chunk: int | None = None,
) -> dict[str, Tensor]:
    """Whole image of camera ``index``: rgb [H,W,3], depth [H,W], alpha [H,W] (+ features [H,W,D])."""
    from gsseg.field.rays import camera_rays

    w, h = int(cameras.widths[index]), int(cameras.heights[index])
    origins, dirs = camera_rays(cameras, index)
    chunk = chunk or field.cfg.chunk
    parts: dict[str, list[Tensor]] = {}
    for a in range(0, w * h, chunk):
        o = render_rays(field, grid, origins[a : a + chunk], dirs[a : a + chunk], background, features=features)
        for k, v in o.items():
            if k not in ("samples", "sample_features"):
                parts.setdefault(k, []).append(v)
    out = {k: torch.cat(v) for k, v in parts.items()}
    return {k: v.reshape(h, w, *v.shape[1:]) for k, v in out.items()}
