"""Real spherical harmonics (degree 0-3) turning SH coefficients into view-dependent RGB.

Same bases and constants as gsplat / INRIA 3DGS; colours are ``clamp_min(sh + 0.5, 0)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """SH basis values for unit directions ``dirs [...,3]`` -> ``[..., (degree+1)^2]``."""
    if not 0 <= degree <= 3:
        raise ValueError(f"sh degree must be in 0..3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 1:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            C2[0] * xy,
            C2[1] * yz,
            C2[2] * (2.0 * zz - xx - yy),
            C2[3] * xz,
            C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            C3[0] * y * (3.0 * xx - yy),
            C3[1] * xy * z,
            C3[2] * y * (4.0 * zz - xx - yy),
            C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            C3[4] * x * (4.0 * zz - xx - yy),
            C3[5] * z * (xx - yy),
            C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, coeffs: Tensor, dirs: Tensor) -> Tensor:
    """Evaluate SH: ``coeffs [...,K,3]`` (K >= (degree+1)^2), ``dirs [...,3]`` (any length) -> ``[...,3]``."""
    n_bases = (degree + 1) ** 2
    if coeffs.shape[-2] < n_bases:
        raise ValueError(f"sh degree {degree} needs {n_bases} coefficients, got {coeffs.shape[-2]}")
    if degree == 0:
        return C0 * coeffs[..., 0, :].expand(*dirs.shape[:-1], 3)
    unit = torch.nn.functional.normalize(dirs, dim=-1)
    bases = sh_bases(degree, unit)  # [..., B]
    return (bases[..., None] * coeffs[..., :n_bases, :]).sum(dim=-2)


def view_colors(colors: Tensor, sh_degree: int | None, means: Tensor, campos: Tensor) -> Tensor:
    """Per-camera RGB ``[C,N,3]`` from ``colors`` ([N,K,3] SH or [N,3] RGB) and camera centres ``campos [C,3]``."""
    n_cams = campos.shape[0]
    if sh_degree is None:
        return colors[None].expand(n_cams, *colors.shape)
    dirs = means[None, :, :] - campos[:, None, :]  # [C,N,3]
    rgb = eval_sh(sh_degree, colors[None].expand(n_cams, *colors.shape), dirs)
    return torch.clamp_min(rgb + 0.5, 0.0)
