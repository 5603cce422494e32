"""Pure-PyTorch reference rasterizer (the oracle): autograd everywhere, slow, exact rules.

Compositing follows ``cuda_ext/utils/pixel_math.h``: Gaussians sorted front to back by
camera depth (stable, ties by index), alpha = min(0.999, o*exp(-sigma)), skipped when sigma < 0 or
alpha < 1/255, and a pixel stops at the first Gaussian whose next transmittance is <= 1e-4 (that
Gaussian is not composited). Pixels are processed in 16x16 blocks against the Gaussians whose
bounding box touches the block, so memory stays bounded per block.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gsseg.render.projection import ALPHA_MAX, ALPHA_MIN, TILE_SIZE, TRANSMITTANCE_MIN, Projection


def composite_weights(dx: Tensor, dy: Tensor, conics: Tensor, opacities: Tensor) -> tuple[Tensor, Tensor]:
    """Front-to-back compositing weights for P pixels against M depth-sorted Gaussians.

    dx, dy: [P,M] mean2d - pixel centre; conics: [M,3]; opacities: [M].
    Returns weights [P,M] (T_i * alpha_i, 0 where skipped or stopped) and final transmittance [P].
    """
    a, b, c = conics[:, 0], conics[:, 1], conics[:, 2]
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    # sigma > 30 always gives alpha < 1/255 (skipped); clamping avoids slow float32 denormals.
    alpha = torch.clamp_max(opacities * torch.exp(-sigma.clamp_max(30.0)), ALPHA_MAX)
    skip = (sigma < 0) | (alpha < ALPHA_MIN)
    alpha = torch.where(skip, torch.zeros_like(alpha), alpha)
    one_minus = 1.0 - alpha
    t_incl = torch.cumprod(one_minus, dim=1)
    stopped = t_incl <= TRANSMITTANCE_MIN  # monotone: once stopped, every later Gaussian is too
    t_excl = torch.cat([torch.ones_like(t_incl[:, :1]), t_incl[:, :-1]], dim=1)
    weights = torch.where(stopped, torch.zeros_like(alpha), alpha * t_excl)
    t_final = torch.where(stopped, torch.ones_like(one_minus), one_minus).prod(dim=1)
    return weights, t_final


def rasterize_reference(
    proj: Projection,
    opacities: Tensor,
    channels: Tensor,
    width: int,
    height: int,
    block: int = TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Composite per-camera channels of visible Gaussians.

    proj: projection for C cameras; opacities: [N]; channels: [C,N,K].
    Returns (out [C,H,W,K] = sum_i w_i c_i without background, alpha [C,H,W,1] = 1 - T_final).
    """
    n_cams, _, k = channels.shape
    outs, alphas = [], []
    for cam in range(n_cams):
        vis = torch.nonzero(proj.visible[cam]).squeeze(1)
        order = torch.sort(proj.depths[cam, vis].detach(), stable=True).indices
        ids = vis[order]
        m2 = proj.means2d[cam, ids]
        con = proj.conics[cam, ids]
        opa = opacities[ids]
        col = channels[cam, ids]
        rad = proj.radii[cam, ids].to(m2.dtype)
        m2d = m2.detach()
        lo, hi = m2d - rad - 1.0, m2d + rad + 1.0  # one-pixel margin around the exact box
        rows_out, rows_alpha = [], []
        for y0 in range(0, height, block):
            y1 = min(y0 + block, height)
            row_out, row_alpha = [], []
            in_rows = (hi[:, 1] > y0) & (lo[:, 1] < y1)
            for x0 in range(0, width, block):
                x1 = min(x0 + block, width)
                sel = torch.nonzero(in_rows & (hi[:, 0] > x0) & (lo[:, 0] < x1)).squeeze(1)
                ys, xs = torch.meshgrid(
                    torch.arange(y0, y1, dtype=m2.dtype, device=m2.device) + 0.5,
                    torch.arange(x0, x1, dtype=m2.dtype, device=m2.device) + 0.5,
                    indexing="ij",
                )
                px, py = xs.reshape(-1), ys.reshape(-1)
                if sel.numel() == 0:
                    row_out.append(channels.new_zeros(y1 - y0, x1 - x0, k))
                    row_alpha.append(channels.new_zeros(y1 - y0, x1 - x0, 1))
                    continue
                dx = m2[sel, 0][None, :] - px[:, None]
                dy = m2[sel, 1][None, :] - py[:, None]
                w, t_final = composite_weights(dx, dy, con[sel], opa[sel])
                row_out.append((w @ col[sel]).reshape(y1 - y0, x1 - x0, k))
                row_alpha.append((1.0 - t_final).reshape(y1 - y0, x1 - x0, 1))
            rows_out.append(torch.cat(row_out, dim=1))
            rows_alpha.append(torch.cat(row_alpha, dim=1))
        outs.append(torch.cat(rows_out, dim=0))
        alphas.append(torch.cat(rows_alpha, dim=0))
    return torch.stack(outs), torch.stack(alphas)
