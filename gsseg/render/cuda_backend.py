"""CUDA backend of ``render()``: gsplat projects, intersects tiles and renders RGB + expected
depth; gsseg's own CUDA kernel (``cuda_ext/features``) renders the identity-feature channels from
gsplat's tile intersections, forward and backward, and builds contribution tables.

gsplat is only called here, and only with CUDA tensors on a machine where
``torch.cuda.is_available()``. If gsseg's kernels cannot be built, features fall back to
gsplat's N-D rasterizer and tables to the CPU builder (after a one-time warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.render.cuda_extension import load_cuda_extension
from gsseg.render.projection import EPS2D, FAR_PLANE, NEAR_PLANE, TILE_SIZE
from gsseg.render.types import ContributionTable, RenderOutput, image_size

GSPLAT_CHANNEL_CHUNK = 32


def _require_cuda(*tensors: Tensor) -> None:
    if not torch.cuda.is_available():
        raise ValueError("the CUDA render backend needs a CUDA GPU visible to torch")
    for t in tensors:
        if t.device.type != "cuda":
            raise ValueError("the CUDA render backend needs CUDA tensors; move the scene to the GPU")
        if t.dtype != torch.float32:
            raise ValueError(f"the CUDA render backend needs float32 tensors, got {t.dtype}")


@dataclass
class TileData:
    """gsplat's unpacked projection and tile intersection of N Gaussians in C cameras.

    Attributes:
        means2d: [C,N,2]; conics: [C,N,3]; opacities: [C,N]; depths: [C,N]; radii: [C,N,2] int32.
        isect_offsets: [C,tile_h,tile_w] int32; flatten_ids: [n_isects] int32 into [C*N].
    """

    means2d: Tensor
    conics: Tensor
    opacities: Tensor
    depths: Tensor
    radii: Tensor
    isect_offsets: Tensor
    flatten_ids: Tensor
    width: int
    height: int
    tile_size: int


def gsplat_tiles(
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
    tile_size: int = TILE_SIZE,
) -> TileData:
    """Project ``means [N,3]`` etc. into ``viewmats [C,4,4]`` / ``Ks [C,3,3]`` and intersect
    tiles with gsplat, exactly as ``gsplat.rasterization(packed=False)`` does."""
    from gsplat import fully_fused_projection, isect_offset_encode, isect_tiles

    n_cams = viewmats.shape[0]
    radii, means2d, depths, conics, _ = fully_fused_projection(
        means, None, quats, scales, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, packed=False, opacities=opacities,
    )  # fmt: skip
    tile_w = math.ceil(width / tile_size)
    tile_h = math.ceil(height / tile_size)
    _, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, tile_size, tile_w, tile_h, packed=False, n_images=n_cams
    )
    isect_offsets = isect_offset_encode(isect_ids, n_cams, tile_w, tile_h).reshape(n_cams, tile_h, tile_w)
    opac = opacities[None].expand(n_cams, -1)
    return TileData(means2d, conics, opac, depths, radii, isect_offsets, flatten_ids, width, height, tile_size)


class _FeatureRasterize(torch.autograd.Function):
    """gsseg's CUDA feature kernel as an autograd op: differentiable in means2d, conics,
    opacities and features; transmittance and last ids are non-differentiable outputs."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size, ext):
        out, trans, last_ids = ext.feature_forward(
            means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size
        )
        ctx.save_for_backward(means2d, conics, opacities, features, isect_offsets, flatten_ids, trans, last_ids)
        ctx.geometry = (width, height, tile_size)
        ctx.ext = ext
        ctx.mark_non_differentiable(trans, last_ids)
        return out, trans, last_ids

    @staticmethod
    def backward(ctx, v_out, _v_trans, _v_last):
        means2d, conics, opacities, features, isect_offsets, flatten_ids, trans, last_ids = ctx.saved_tensors
        width, height, tile_size = ctx.geometry
        need_geometry = any(ctx.needs_input_grad[:3])
        v_features, v_means2d, v_conics, v_opacities = ctx.ext.feature_backward(
            means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size,
            trans, last_ids, v_out.contiguous(), need_geometry,
        )  # fmt: skip
        if not need_geometry:
            v_means2d = v_conics = v_opacities = None
        return (
            v_means2d if ctx.needs_input_grad[0] else None,
            v_conics if ctx.needs_input_grad[1] else None,
            v_opacities if ctx.needs_input_grad[2] else None,
            v_features if ctx.needs_input_grad[3] else None,
            None, None, None, None, None, None,
        )  # fmt: skip


def rasterize_features_cuda(
    means2d: Tensor,
    conics: Tensor,
    opacities: Tensor,
    features: Tensor,
    isect_offsets: Tensor,
    flatten_ids: Tensor,
    width: int,
    height: int,
    tile_size: int = TILE_SIZE,
) -> tuple[Tensor, Tensor]:
    """Composite per-Gaussian ``features [N,D]`` (no background) over gsplat's tile data.

    means2d [C,N,2], conics [C,N,3], opacities [C,N], isect_offsets [C,th,tw] int32,
    flatten_ids [n_isects] int32 -> (features [C,H,W,D], alpha [C,H,W,1]). Uses gsseg's kernel,
    or gsplat's N-D rasterizer when the kernel could not be built. Differentiable in the
    features and in the screen-space geometry.
    """
    _require_cuda(means2d, conics, opacities, features)
    ext = load_cuda_extension()
    if ext is not None:
        out, trans, _ = _FeatureRasterize.apply(
            means2d.contiguous(), conics.contiguous(), opacities.contiguous(), features.contiguous(),
            isect_offsets.contiguous(), flatten_ids.contiguous(), width, height, tile_size, ext,
        )  # fmt: skip
        return out, (1.0 - trans)[..., None]
    return _rasterize_features_gsplat(
        means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size
    )


def _rasterize_features_gsplat(
    means2d, conics, opacities, features, isect_offsets, flatten_ids, width, height, tile_size
):
    from gsplat import rasterize_to_pixels

    n_cams = means2d.shape[0]
    chunks, alpha = [], None
    for start in range(0, features.shape[1], GSPLAT_CHANNEL_CHUNK):
        colors = features[None, :, start : start + GSPLAT_CHANNEL_CHUNK].expand(n_cams, -1, -1).contiguous()
        out, a = rasterize_to_pixels(
            means2d,
            conics,
            colors,
            opacities.contiguous(),
            width,
            height,
            tile_size,
            isect_offsets,
            flatten_ids,
            packed=False,
        )
        chunks.append(out)
        alpha = a if alpha is None else alpha
    return torch.cat(chunks, dim=-1), alpha


def render_cuda(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    cameras: Cameras,
    features: Tensor | None = None,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    eps2d: float = EPS2D,
    near_plane: float = NEAR_PLANE,
    far_plane: float = FAR_PLANE,
    tile_size: int = TILE_SIZE,
) -> RenderOutput:
    """``render()`` on the GPU; same arguments and outputs (see ``gsseg.render.api.render``).

    RGB and expected depth come from ``gsplat.rasterization(packed=False, render_mode="RGB+ED")``;
    features [N,D] from gsseg's kernel over the same tile intersections. ``meta`` is gsplat's
    (DefaultStrategy-compatible) plus ``"backend": "cuda"``.
    """
    from gsplat import rasterization

    _require_cuda(means, quats, scales, opacities, colors, *([features] if features is not None else []))
    width, height = image_size(cameras)
    device = means.device
    viewmats = cameras.viewmats.to(device=device, dtype=torch.float32)
    Ks = cameras.Ks.to(device=device, dtype=torch.float32)
    bg = backgrounds.to(device=device, dtype=torch.float32) if backgrounds is not None else None
    rgbd, alpha, meta = rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree, packed=False,
        tile_size=tile_size, backgrounds=bg, render_mode="RGB+ED",
    )  # fmt: skip
    rgb, depth = rgbd[..., :3], rgbd[..., 3:4]
    feats = None
    if features is not None:
        feats, _ = rasterize_features_cuda(
            meta["means2d"], meta["conics"], meta["opacities"], features, meta["isect_offsets"],
            meta["flatten_ids"], width, height, tile_size,
        )  # fmt: skip
    meta["backend"] = "cuda"
    return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, features=feats, meta=meta)


@torch.no_grad()
def build_table_cuda(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    camera: Cameras,
    eps2d: float = EPS2D,
    near_plane: float = NEAR_PLANE,
    far_plane: float = FAR_PLANE,
    tile_size: int = TILE_SIZE,
) -> ContributionTable:
    """Contribution table of one camera on the GPU (count pass, prefix sum, fill pass).

    means [N,3], quats [N,4], activated scales [N,3] and opacities [N] on CUDA; the table's
    tensors stay on the same device. Needs gsseg's CUDA kernels (``build_contribution_table``
    falls back to the CPU builder without them).
    """
    _require_cuda(means, quats, scales, opacities)
    if len(camera) != 1:
        raise ValueError(f"build_table_cuda takes one camera, got {len(camera)}")
    width, height = image_size(camera)
    ext = load_cuda_extension()
    if ext is None:
        raise RuntimeError("gsseg's CUDA kernels are not built; use build_contribution_table, which falls back")
    viewmats = camera.viewmats.to(device=means.device, dtype=torch.float32)
    Ks = camera.Ks.to(device=means.device, dtype=torch.float32)
    tiles = gsplat_tiles(
        means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane, tile_size
    )
    offsets, gaussian_ids, weights = ext.build_table(
        tiles.means2d.contiguous(), tiles.conics.contiguous(), tiles.opacities.contiguous(),
        tiles.isect_offsets.contiguous(), tiles.flatten_ids.contiguous(), width, height, tile_size,
    )  # fmt: skip
    return ContributionTable(offsets, gaussian_ids, weights, width, height)
