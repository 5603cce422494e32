"""The one rendering contract: ``render()`` and ``RenderOutput``, dispatching to the reference,
the C++ CPU kernel or the CUDA backend."""

from __future__ import annotations

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.render.cpu import project_cpu, rasterize_cpu, sh_colors_cpu
from gsseg.render.cuda_backend import render_cuda
from gsseg.render.dispatch import BACKENDS, resolve_backend
from gsseg.render.projection import EPS2D, FAR_PLANE, NEAR_PLANE, TILE_SIZE, Projection, project_reference
from gsseg.render.reference import rasterize_reference
from gsseg.render.sh import view_colors
from gsseg.render.types import RenderOutput, image_size

__all__ = ["BACKENDS", "RenderOutput", "image_size", "render", "resolve_backend"]


def _check_inputs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    features: Tensor | None,
    sh_degree: int | None,
) -> None:
    n = means.shape[0]
    if means.shape != (n, 3) or quats.shape != (n, 4) or scales.shape != (n, 3) or opacities.shape != (n,):
        raise ValueError(
            f"expected means [N,3], quats [N,4], scales [N,3], opacities [N]; got {tuple(means.shape)}, "
            f"{tuple(quats.shape)}, {tuple(scales.shape)}, {tuple(opacities.shape)}"
        )
    if sh_degree is None and colors.shape != (n, 3):
        raise ValueError(f"with sh_degree=None colors must be [N,3] RGB, got {tuple(colors.shape)}")
    if sh_degree is not None and (colors.dim() != 3 or colors.shape[0] != n or colors.shape[2] != 3):
        raise ValueError(
            f"with sh_degree={sh_degree} colors must be [N,K,3] SH coefficients, got {tuple(colors.shape)}"
        )
    if sh_degree is not None and not (0 <= sh_degree <= 3 and colors.shape[1] >= (sh_degree + 1) ** 2):
        raise ValueError(
            f"sh_degree must be in 0..3 and needs (sh_degree+1)^2 coefficients, got {sh_degree} "
            f"with K={colors.shape[1]}"
        )
    if features is not None and (features.dim() != 2 or features.shape[0] != n):
        raise ValueError(f"features must be [N,D], got {tuple(features.shape)}")


def render(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    cameras: Cameras,
    features: Tensor | None = None,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    backend: str = "auto",
    eps2d: float = EPS2D,
    near_plane: float = NEAR_PLANE,
    far_plane: float = FAR_PLANE,
) -> RenderOutput:
    """Render RGB, alpha, expected depth and optional features for every camera.

    means [N,3], quats [N,4] (wxyz, unnormalised), scales [N,3] (activated), opacities [N]
    (activated), colors [N,K,3] SH coefficients (sh_degree 0..3) or [N,3] RGB (sh_degree None),
    features [N,D] (any D >= 1), backgrounds [C,3]. All cameras share one image size.
    Differentiable in every Gaussian input; ``out.meta["means2d"]`` receives d loss / d means2d.
    """
    _check_inputs(means, quats, scales, opacities, colors, features, sh_degree)
    width, height = image_size(cameras)
    which = resolve_backend(backend, means.device)
    if which == "cuda":
        return render_cuda(
            means, quats, scales, opacities, colors, cameras,
            features=features, sh_degree=sh_degree, backgrounds=backgrounds,
            eps2d=eps2d, near_plane=near_plane, far_plane=far_plane,
        )  # fmt: skip

    dtype, device = means.dtype, means.device
    viewmats = cameras.viewmats.to(device=device, dtype=dtype)
    Ks = cameras.Ks.to(device=device, dtype=dtype)
    n_cams = viewmats.shape[0]
    project, rasterize = (project_cpu, rasterize_cpu) if which == "cpu" else (project_reference, rasterize_reference)

    proj: Projection = project(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane
    )
    campos = torch.linalg.inv(viewmats)[:, :3, 3]
    if which == "cpu" and sh_degree is not None:
        rgb_colors = sh_colors_cpu(colors, sh_degree, means, campos)  # [C,N,3]
    else:
        rgb_colors = view_colors(colors, sh_degree, means, campos)
    parts = [rgb_colors, proj.depths[..., None]]
    if features is not None:
        parts.append(features[None].expand(n_cams, *features.shape).to(dtype))
    channels = torch.cat(parts, dim=-1)
    raw, alpha = rasterize(proj, opacities, channels, width, height)

    # one split (its backward is one concatenation) rather than three slices (three zero-filled
    # full-size gradients summed)
    rgb, raw_depth, *rest = raw.split([3, 1] + ([features.shape[1]] if features is not None else []), dim=-1)
    if backgrounds is not None:
        rgb = rgb + (1.0 - alpha) * backgrounds.to(rgb)[:, None, None, :]
    depth = torch.where(alpha > 0, raw_depth / alpha.clamp_min(1e-10), torch.zeros_like(alpha))
    feats = rest[0] if features is not None else None
    meta = {
        "means2d": proj.means2d,
        "radii": proj.radii,
        "depths": proj.depths,
        "conics": proj.conics,
        "opacities": opacities[None].expand(n_cams, -1),
        "width": width,
        "height": height,
        "n_cameras": n_cams,
        "n_batches": 1,
        "tile_size": TILE_SIZE,
        "gaussian_ids": None,
        "camera_ids": None,
        "batch_ids": None,
        "backend": which,
    }
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, features=feats, meta=meta)
