"""Image-quality metrics."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mse_to_psnr(mse: float) -> float:
    """PSNR in dB for images in [0,1]; +inf for a perfect match."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@torch.no_grad()
def psnr(pred: Tensor, target: Tensor) -> float:
    """PSNR (dB) of ``pred`` against ``target`` (same shape, values in [0,1]; pred clamped)."""
    mse = torch.mean((pred.clamp(0.0, 1.0) - target) ** 2).item()
    return mse_to_psnr(mse)
