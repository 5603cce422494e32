"""Occupancy grid over the contracted scene cube (instant-ngp's empty-space skipping), pure PyTorch.

Why not nerfacc's ``OccGridEstimator``: nerfacc does not build against our torch (2.13 CPU). The
grid keeps, per cell of a G^3 grid over the contracted cube, a decaying maximum of the density seen
there; a cell is occupied when a sample there could reach ``alpha`` opacity over one inner cell's
length (nerfacc's rule with its render step set to the cell size; contracted cells far out hold the
distant background, whose density the RGB stage keeps), dilated by one cell so thin surfaces at a
cell border are never lost. Samples in unoccupied cells are skipped (sigma = 0, no field evaluation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class OccupancyGrid:
    """density: [G,G,G] decaying max density per cell; occupied: [G,G,G] bool (all True until updated)."""

    def __init__(self, resolution: int, alpha: float = 0.01, decay: float = 0.8, device=None) -> None:
        self.resolution = int(resolution)
        self.alpha = float(alpha)
        self.decay = float(decay)
        g = self.resolution
        self.density = torch.full((g, g, g), -1.0, device=device)  # -1: never seen
        self.occupied = torch.ones((g, g, g), dtype=torch.bool, device=device)
        centers = (torch.arange(g, dtype=torch.float32) + 0.5) / g * 2.0 - 1.0  # in [-1,1]
        cz, cy, cx = torch.meshgrid(centers, centers, centers, indexing="ij")
        self._centers = torch.stack([cx, cy, cz], dim=-1).reshape(-1, 3).to(device)  # [G^3,3] contracted / 2
        self._cell_length = torch.full((g**3,), 4.0 / g, device=device)  # inner cell length, normalised units
        self.threshold = -math.log(1.0 - self.alpha)  # on sigma * cell length

    def to(self, device) -> "OccupancyGrid":
        for name in ("density", "occupied", "_centers", "_cell_length"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def cell_index(self, y: Tensor) -> Tensor:
        """Flat cell index [N] of contracted/2 points y [N,3] in [-1,1]^3."""
        g = self.resolution
        ijk = ((y + 1.0) * 0.5 * g).long().clamp(0, g - 1)
        return (ijk[:, 2] * g + ijk[:, 1]) * g + ijk[:, 0]

    def lookup(self, y: Tensor) -> Tensor:
        """Occupancy [N] bool of contracted/2 points y [N,3]."""
        return self.occupied.reshape(-1)[self.cell_index(y)]

    @torch.no_grad()
    def update(self, field, generator: torch.Generator | None = None, fraction: float = 1.0) -> None:
        """Re-evaluate the density at a jittered point of ``fraction`` of the cells (chosen with
        ``generator``), decay the rest, and rebuild ``occupied``.

        field: a callable ``density_at(y [N,3] contracted/2) -> sigma [N]``."""
        g3 = self.resolution**3
        dev = self.density.device
        if fraction >= 1.0:
            cells = torch.arange(g3, device=dev)
        else:
            cells = torch.randperm(g3, generator=generator)[: max(int(g3 * fraction), 1)].to(dev)
        jitter = (torch.rand(len(cells), 3, generator=generator).to(dev) - 0.5) * (2.0 / self.resolution)
        sigma = torch.cat([field(chunk) for chunk in (self._centers[cells] + jitter).split(65536)])
        flat = self.density.reshape(-1)
        flat.mul_(self.decay)
        flat[cells] = torch.maximum(flat[cells], sigma)
        self.rebuild()

    def rebuild(self) -> None:
        """``occupied`` from ``density`` (cells never seen count as occupied), dilated by one cell."""
        flat = self.density.reshape(-1)
        occ = (flat * self._cell_length > self.threshold) | (flat < 0)
        g = self.resolution
        occ3 = occ.reshape(1, 1, g, g, g).float()
        self.occupied = F.max_pool3d(occ3, kernel_size=3, stride=1, padding=1)[0, 0] > 0

    @property
    def occupied_fraction(self) -> float:
        return float(self.occupied.float().mean())

    def state_dict(self) -> dict:
        return {"resolution": self.resolution, "alpha": self.alpha, "decay": self.decay, "density": self.density.cpu()}

    def load_state_dict(self, d: dict) -> None:
        if int(d["resolution"]) != self.resolution:
            raise ValueError(f"occupancy grid resolution {d['resolution']} != {self.resolution}")
        self.density = d["density"].to(self.density.device).float()
        self.rebuild()
