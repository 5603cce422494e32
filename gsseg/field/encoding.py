"""Multi-resolution tri-plane encoding (EG3D / K-Planes style) in pure PyTorch.

Why not a library: tiny-cuda-nn's hash grid needs CUDA and nerfacc does not build against our
torch (2.13, CPU), so the encoding is ``torch.nn.functional.grid_sample`` on three axis-aligned
feature planes per level, which runs the same on CPU and CUDA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TriPlane(nn.Module):
    """Features of points in [-1,1]^3: for every level, bilinear samples of the xy, xz and yz planes
    (``channels`` each), concatenated over planes and levels -> [N, 3 * channels * levels]."""

    def __init__(self, resolutions: tuple[int, ...], channels: int, init_std: float = 0.1) -> None:
        super().__init__()
        self.resolutions = tuple(int(r) for r in resolutions)
        self.channels = int(channels)
        self.planes = nn.ParameterList(
            [nn.Parameter(torch.randn(3, channels, r, r) * init_std) for r in self.resolutions]
        )

    @property
    def out_dim(self) -> int:
        return 3 * self.channels * len(self.resolutions)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N,3] in [-1,1] -> [N, out_dim]."""
        n = x.shape[0]
        coords = torch.stack([x[:, [0, 1]], x[:, [0, 2]], x[:, [1, 2]]])  # [3,N,2]
        grid = coords[:, :, None, :]  # [3,N,1,2]
        feats = []
        for planes in self.planes:
            f = F.grid_sample(planes, grid, mode="bilinear", padding_mode="border", align_corners=True)  # [3,C,N,1]
            feats.append(f[..., 0].permute(2, 0, 1).reshape(n, 3 * self.channels))
        return torch.cat(feats, dim=1)
