"""Shared fixtures for the object/instance objective tests (no tests here).

``surface_gaussians`` fits geometry in no time: every pixel of some views with a ground-truth
depth becomes a small opaque isotropic Gaussian on the surface, carrying the ground-truth labels
of its pixel. Rendered depth then matches the synthetic scene closely and each Gaussian's true
object is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gsseg.gaussians.scene import GaussianScene


@dataclass
class SurfaceGaussians:
    """means [N,3], quats [N,4], scales [N,3], opacities [N], rgb [N,3]; labels: level -> [N] int64."""

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    rgb: torch.Tensor
    labels: dict[str, np.ndarray]

    @property
    def geometry(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.means, self.quats, self.scales, self.opacities

    def scene(self) -> GaussianScene:
        n = len(self.means)
        return GaussianScene(
            self.means, torch.log(self.scales), self.quats, torch.logit(self.opacities),
            ((self.rgb - 0.5) / 0.28209479177387814)[:, None, :], torch.zeros(n, 0, 3),
        )


def surface_gaussians(ds, views: list[str], size_factor: float = 0.4, opacity: float = 0.95,
                      max_depth: float = 1.5) -> SurfaceGaussians:
    """One Gaussian per pixel with depth > 0 in ``views`` (sigma = size_factor · pixel footprint),
    keeping surface points closer than ``max_depth`` · scene scale to their camera (no large far
    floor Gaussians right in front of other cameras)."""
    cams = ds.cameras("all")
    means, sig, rgbs = [], [], []
    labels: dict[str, list[np.ndarray]] = {lv: [] for lv in ds.gt_levels}
    for v in views:
        i = cams.index_of(v)
        depth = ds.depth(v).double().numpy()
        ys, xs = np.nonzero(depth > 0)
        d = depth[ys, xs]
        K = cams.Ks[i].double().numpy()
        cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * d, (ys + 0.5 - K[1, 2]) / K[1, 1] * d, d], 1)
        c2w = np.linalg.inv(cams.viewmats[i].double().numpy())
        world = cam @ c2w[:3, :3].T + c2w[:3, 3]
        near = d < max_depth * ds.scene_scale
        ys, xs, d, world = ys[near], xs[near], d[near], world[near]
        means.append(world)
        sig.append(size_factor * d / K[0, 0])
        rgbs.append(ds.image(v).double().numpy()[ys, xs])
        for lv in ds.gt_levels:
            labels[lv].append(ds.gt(v, lv)[ys, xs])
    m = torch.from_numpy(np.concatenate(means)).float()
    s = torch.from_numpy(np.concatenate(sig)).float()[:, None].expand(-1, 3).contiguous()
    q = torch.zeros(len(m), 4)
    q[:, 0] = 1
    return SurfaceGaussians(
        means=m, quats=q, scales=s, opacities=torch.full((len(m),), opacity),
        rgb=torch.from_numpy(np.concatenate(rgbs)).float(),
        labels={lv: np.concatenate(x) for lv, x in labels.items()},
    )
