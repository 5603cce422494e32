"""Volume rendering weights (NeRF quadrature) on dense [R,S] samples.

Samples the occupancy grid skipped carry sigma = 0 and so contribute nothing, which keeps this
exact and simple; only the field evaluations are packed (``render.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def render_weights(sigmas: Tensor, deltas: Tensor) -> tuple[Tensor, Tensor]:
    """sigmas, deltas: [R,S] density and segment length (same length unit) of front-to-back samples.

    Returns (weights [R,S] = T_i (1 - exp(-sigma_i delta_i)) with T_i = exp(-sum_{j<i} sigma_j delta_j),
    transmittance left after the ray [R])."""
    tau = sigmas * deltas
    cum = torch.cumsum(tau, dim=1)
    before = torch.cat([torch.zeros_like(cum[:, :1]), cum[:, :-1]], dim=1)
    weights = torch.exp(-before) * (1.0 - torch.exp(-tau))
    return weights, torch.exp(-cum[:, -1])


def composite(weights: Tensor, values: Tensor) -> Tensor:
    """weights [R,S], values [R,S,C] -> [R,C] weighted sums."""
    return torch.einsum("rs,rsc->rc", weights, values)
