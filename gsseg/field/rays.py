"""Camera rays through pixel centres (OpenCV cameras, ``gsseg.data.cameras.Cameras``)."""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_rays(viewmat: Tensor, K: Tensor, width: int, pixel_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Rays of one camera through the centres of ``pixel_ids`` [P] (y * width + x).

    viewmat: [4,4] world-to-camera; K: [3,3]. Returns origins [P,3] and directions [P,3] in world
    space scaled so that their camera-space z is 1: a distance ``t`` along them is the z-depth.
    """
    pixel_ids = pixel_ids.to(viewmat.device).long()
    x = (pixel_ids % width).to(torch.float32) + 0.5
    y = torch.div(pixel_ids, width, rounding_mode="floor").to(torch.float32) + 0.5
    cam = torch.stack([(x - K[0, 2]) / K[0, 0], (y - K[1, 2]) / K[1, 1], torch.ones_like(x)], dim=1)  # [P,3]
    c2w = torch.linalg.inv(viewmat)
    dirs = cam @ c2w[:3, :3].T
    origins = c2w[:3, 3].expand_as(dirs)
    return origins.contiguous(), dirs.contiguous()


def camera_rays(cameras, index: int, pixel_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Rays of camera ``index`` of a Cameras batch (all its pixels when ``pixel_ids`` is None)."""
    w, h = int(cameras.widths[index]), int(cameras.heights[index])
    if pixel_ids is None:
        pixel_ids = torch.arange(w * h, device=cameras.device)
    return pixel_rays(cameras.viewmats[index], cameras.Ks[index], w, pixel_ids)


def batch_rays(
    viewmats: Tensor, Ks: Tensor, widths: Tensor, view_ids: Tensor, pixel_ids: Tensor
) -> tuple[Tensor, Tensor]:
    """Rays of pixels spread over several cameras: viewmats [V,4,4], Ks [V,3,3], widths [V];
    view_ids, pixel_ids [P] -> origins [P,3], directions [P,3] (camera-space z = 1)."""
    w = widths.to(pixel_ids.device)[view_ids]
    x = (pixel_ids % w).to(torch.float32) + 0.5
    y = torch.div(pixel_ids, w, rounding_mode="floor").to(torch.float32) + 0.5
    K = Ks[view_ids]
    cam = torch.stack([(x - K[:, 0, 2]) / K[:, 0, 0], (y - K[:, 1, 2]) / K[:, 1, 1], torch.ones_like(x)], dim=1)
    c2w = torch.linalg.inv(viewmats)[view_ids]  # [P,4,4]
    dirs = torch.einsum("pij,pj->pi", c2w[:, :3, :3], cam)
    return c2w[:, :3, 3].contiguous(), dirs.contiguous()
