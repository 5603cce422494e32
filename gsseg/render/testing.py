"""Random Gaussian scenes and cameras for render tests and benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras


@dataclass
class GaussianScene:
    """Activated Gaussian parameters.

    Attributes:
        means: [N,3]; quats: [N,4] wxyz (unnormalised); scales: [N,3]; opacities: [N];
        sh: [N,16,3] SH coefficients (degree 3); rgb: [N,3] in [0,1]; features: [N,D].
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    sh: Tensor
    rgb: Tensor
    features: Tensor

    def params(self) -> list[Tensor]:
        return [self.means, self.quats, self.scales, self.opacities, self.sh, self.rgb, self.features]

    def requires_grad_(self) -> "GaussianScene":
        for t in self.params():
            t.requires_grad_(True)
        return self


def random_scene(
    n: int,
    feature_dim: int = 8,
    seed: int = 0,
    extent: float = 1.0,
    scale_range: tuple[float, float] = (0.03, 0.15),
    opacity_range: tuple[float, float] = (0.1, 0.95),
    dtype: torch.dtype = torch.float32,
) -> GaussianScene:
    """``n`` Gaussians uniformly in a cube of half-size ``extent`` around the origin."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    scene = GaussianScene(
        means=(rand(n, 3) * 2 - 1) * extent,
        quats=torch.randn(n, 4, generator=g, dtype=torch.float64),
        scales=torch.exp(lo + (hi - lo) * rand(n, 3)),
        opacities=opacity_range[0] + (opacity_range[1] - opacity_range[0]) * rand(n),
        sh=torch.randn(n, 16, 3, generator=g, dtype=torch.float64) * 0.3,
        rgb=rand(n, 3),
        features=torch.randn(n, feature_dim, generator=g, dtype=torch.float64),
    )
    return GaussianScene(*[t.to(dtype) for t in scene.params()])


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
