"""EWA projection of 3D Gaussians into pinhole cameras, in pure PyTorch (autograd).

Follows the rules written in ``cuda_ext/utils/pixel_math.h`` (gsplat 1.5 conventions):
near-plane culling, 1.3x FoV clamp of the Jacobian, 0.3 px low-pass, opacity-aware x/y radii.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4
NEAR_PLANE = 0.01
FAR_PLANE = 1e10
EPS2D = 0.3
RADIUS_EXTEND = 3.33
TILE_SIZE = 16


@dataclass
class Projection:
    """Screen-space Gaussians for C cameras.

    Attributes:
        means2d: [C,N,2] pixel coordinates of the centres.
        conics: [C,N,3] inverse 2D covariance (a, b, c) = (inv00, inv01, inv11).
        depths: [C,N] camera-space z.
        radii: [C,N,2] int32 x/y radii in pixels; 0 = culled (values of culled rows are finite but meaningless).
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    radii: Tensor

    @property
    def visible(self) -> Tensor:
        """[C,N] bool."""
        return (self.radii > 0).all(dim=-1)


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices ``[N,3,3]`` of unnormalised wxyz quaternions ``[N,4]``."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariances(quats: Tensor, scales: Tensor) -> Tensor:
    """3D covariances ``[N,3,3]`` = R S S^T R^T from ``quats [N,4]`` and activated ``scales [N,3]``."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_reference(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    eps2d: float = EPS2D,
    near_plane: float = NEAR_PLANE,
    far_plane: float = FAR_PLANE,
) -> Projection:
    """Project ``means [N,3]``, ``quats [N,4]``, ``scales [N,3]``, ``opacities [N]`` into C cameras
    (``viewmats [C,4,4]``, ``Ks [C,3,3]``). Differentiable in means, quats and scales."""
    R = viewmats[:, None, :3, :3]  # [C,1,3,3]
    t = viewmats[:, None, :3, 3]  # [C,1,3]
    mean_c = (R @ means[None, :, :, None]).squeeze(-1) + t  # [C,N,3]
    cov_c = R @ covariances(quats, scales)[None] @ R.transpose(-1, -2)  # [C,N,3,3]
    z = mean_c[..., 2]
    in_depth = (z >= near_plane) & (z <= far_plane)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    x, y = mean_c[..., 0], mean_c[..., 1]

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C,1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    rz = 1.0 / z_safe
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    zero = torch.zeros_like(z)
    J = torch.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], dim=-1).reshape(
        *z.shape, 2, 3
    )
    cov2d = J @ cov_c @ J.transpose(-1, -2)  # [C,N,2,2]
    eye = torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    cov2d = cov2d + eps2d * eye
    det = cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0]
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([cov2d[..., 1, 1], -cov2d[..., 0, 1], cov2d[..., 0, 0]], dim=-1) / det_safe[..., None]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    with torch.no_grad():
        opac = opacities.detach()[None].expand_as(z)
        extend = torch.sqrt(2.0 * torch.log(opac.clamp_min(ALPHA_MIN) / ALPHA_MIN)).clamp_max(RADIUS_EXTEND)
        diag = torch.stack([cov2d[..., 0, 0], cov2d[..., 1, 1]], dim=-1).clamp_min(0)
        radii = torch.ceil(extend[..., None] * torch.sqrt(diag))
        m2 = means2d.detach()
        inside = (
            (m2[..., 0] + radii[..., 0] > 0)
            & (m2[..., 0] - radii[..., 0] < width)
            & (m2[..., 1] + radii[..., 1] > 0)
            & (m2[..., 1] - radii[..., 1] < height)
        )
        keep = in_depth & det_ok & (opac >= ALPHA_MIN) & ((radii > 0).any(dim=-1)) & inside
        radii = torch.where(keep[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    return Projection(means2d=means2d, conics=conics, depths=z, radii=radii)


def tile_grid(width: int, height: int, tile_size: int = TILE_SIZE) -> tuple[int, int]:
    """Number of tiles (tile_w, tile_h) covering a width x height image."""
    return math.ceil(width / tile_size), math.ceil(height / tile_size)
