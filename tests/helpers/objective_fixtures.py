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
            self.means,
            torch.log(self.scales),
            self.quats,
            torch.logit(self.opacities),
            ((self.rgb - 0.5) / 0.28209479177387814)[:, None, :],
            torch.zeros(n, 0, 3),
        )


def surface_gaussians(
    ds, views: list[str], size_factor: float = 0.4, opacity: float = 0.95, max_depth: float = 1.5
) -> SurfaceGaussians:
    """One Gaussian per pixel with depth > 0 in ``views`` (sigma = size_factor · pixel footprint),
    keeping surface points closer than ``max_depth`` · scene scale to their camera (no large far
    floor Gaussians right in front of other cameras)."""
    from gsseg.gaussians.init import init_from_depth, sh_to_rgb

    scene, src = init_from_depth(ds, views, size=size_factor, opacity=opacity, max_depth=max_depth)
    labels = {lv: np.empty(len(scene), dtype=np.int64) for lv in ds.gt_levels}
    for vi, v in enumerate(views):
        sel = src.view == vi
        for lv in ds.gt_levels:
            labels[lv][sel] = ds.gt(v, lv)[src.ys[sel], src.xs[sel]]
    return SurfaceGaussians(
        means=scene.means,
        quats=scene.quats,
        scales=scene.scales.contiguous(),
        opacities=scene.opacities,
        rgb=sh_to_rgb(scene.sh0[:, 0]),
        labels=labels,
    )
