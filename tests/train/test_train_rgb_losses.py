"""Losses and metrics of the RGB stage."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gsseg.eval.psnr import mse_to_psnr, psnr
from gsseg.train.losses import SSIM_C1, SSIM_C2, gaussian_window, rgb_loss, ssim


def ssim_direct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM with a full 11×11 window via grouped conv2d (the textbook formulation)."""
    a, b = x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)
    w = gaussian_window(11, 1.5, dtype=x.dtype)[None, None].expand(3, 1, 11, 11)
    f = lambda t: F.conv2d(t, w, groups=3)  # noqa: E731
    m1, m2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - m1**2, f(b * b) - m2**2, f(a * b) - m1 * m2
    return (((2 * m1 * m2 + SSIM_C1) * (2 * s12 + SSIM_C2)) / ((m1**2 + m2**2 + SSIM_C1) * (s1 + s2 + SSIM_C2))).mean()


def test_ssim_matches_direct_window_and_gradients():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 20, 27, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = (x.detach() + 0.1 * torch.randn(2, 20, 27, 3, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert torch.allclose(ssim(x, y), ssim_direct(x, y), atol=1e-10)
    (gx,) = torch.autograd.grad(ssim(x, y), x)
    (gd,) = torch.autograd.grad(ssim_direct(x, y), x)
    assert torch.allclose(gx, gd, atol=1e-10)
    assert ssim(y, y).item() == pytest.approx(1.0, abs=1e-9)


def test_rgb_loss_weights():
    x = torch.full((1, 16, 16, 3), 0.25)
    y = torch.full((1, 16, 16, 3), 0.75)
    l1_only = rgb_loss(x, y, ssim_lambda=0.0)
    assert l1_only.item() == pytest.approx(0.5)
    mixed = rgb_loss(x, y, ssim_lambda=0.2)
    assert mixed.item() == pytest.approx(0.8 * 0.5 + 0.2 * (1.0 - ssim(x, y).item()))
    assert rgb_loss(y, y).item() == pytest.approx(0.0, abs=1e-6)


def test_psnr():
    x = torch.zeros(4, 4, 3)
    assert psnr(x + 0.1, x) == pytest.approx(20.0)
    assert psnr(x, x) == math.inf
    assert psnr(x + 2.0, x) == pytest.approx(0.0, abs=1e-9)  # prediction clamped to [0,1]
    assert mse_to_psnr(1e-3) == pytest.approx(30.0)
