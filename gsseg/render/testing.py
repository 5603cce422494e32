"""Random Gaussian scenes and cameras for render tests and benchmarks."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.gaussians.init import rgb_to_sh, sh_to_rgb
from gsseg.gaussians.scene import FeatureInfo, GaussianScene


def random_scene(
    n: int,
    feature_dim: int = 8,
    seed: int = 0,
    extent: float = 1.0,
    scale_range: tuple[float, float] = (0.03, 0.15),
    opacity_range: tuple[float, float] = (0.1, 0.95),
    dtype: torch.dtype = torch.float32,
) -> GaussianScene:
    """``n`` Gaussians uniformly in a cube of half-size ``extent`` around the origin.

    Activated scales [N,3] are log-uniform in ``scale_range``, opacities [N] uniform in
    ``opacity_range``; degree-3 SH whose DC term is a colour uniform in [0,1] (``flat_colors``);
    features [N,feature_dim] standard normal ("embedding"). Raw parameters, as every GaussianScene.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    means = (rand(n, 3) * 2 - 1) * extent
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    log_scales = lo + (hi - lo) * rand(n, 3)
    opacities = opacity_range[0] + (opacity_range[1] - opacity_range[0]) * rand(n)
    sh = torch.randn(n, 16, 3, generator=g, dtype=torch.float64) * 0.3
    rgb = rand(n, 3)
    features = torch.randn(n, feature_dim, generator=g, dtype=torch.float64)
    return GaussianScene(
        means.to(dtype),
        log_scales.to(dtype),
        quats.to(dtype),
        torch.logit(opacities).to(dtype),
        rgb_to_sh(rgb)[:, None].to(dtype),
        sh[:, 1:].to(dtype),
        features.to(dtype),
        FeatureInfo("embedding", "random", feature_dim),
    )


def flat_colors(scene: GaussianScene) -> Tensor:
    """[N,3] the view-independent colour of each Gaussian (its SH DC term), for ``sh_degree=None``."""
    return sh_to_rgb(scene.sh0[:, 0])


def orbit_cameras(
    n: int, width: int, height: int, distance: float = 3.0, fov_deg: float = 60.0, spread_deg: float = 20.0
) -> Cameras:
    """``n`` cameras on an arc around the y axis, looking at the origin (OpenCV axes)."""
    focal = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    viewmats, Ks = [], []
    for i in range(n):
        angle = math.radians(spread_deg) * (i - (n - 1) / 2) / max(n - 1, 1) * 2
        c, s = math.cos(angle), math.sin(angle)
        rot = torch.tensor([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]], dtype=torch.float64)
        vm = torch.eye(4, dtype=torch.float64)
        vm[:3, :3] = rot
        vm[:3, 3] = torch.tensor([0.0, 0.0, distance], dtype=torch.float64)
        viewmats.append(vm)
        Ks.append(torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=torch.float64))
    return Cameras(
        torch.stack(viewmats),
        torch.stack(Ks),
        torch.as_tensor([width] * n, dtype=torch.int64),
        torch.as_tensor([height] * n, dtype=torch.int64),
        [f"view_{i:03d}" for i in range(n)],
    )
