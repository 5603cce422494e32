"""Autograd wrappers around the C++ CPU rasterizer ops (``cuda_ext/<op>/<op>.cpp``).

Projection, spherical harmonics and compositing are separate autograd Functions, so the
gradient of the 2D means (``meta["means2d"].grad``) is the true d loss / d means2d that
densification strategies read, routed by autograd between the rasterizer and the projection.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor
from torch.autograd import Function

from gsseg.render.extensions import load_cpu_extension
from gsseg.render.projection import TILE_SIZE, Projection


def _ext() -> ModuleType:
    ext = load_cpu_extension()
    if ext is None:
        raise RuntimeError("the gsseg C++ CPU extension is not available")
    return ext


def _c(t: Tensor) -> Tensor:
    return t.contiguous()


class _Project(Function):
    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane):
        means2d, conics, depths, radii = _ext().project_forward(
            _c(means), _c(quats), _c(scales), _c(opacities), _c(viewmats), _c(Ks),
            width, height, eps2d, near_plane, far_plane,
        )  # fmt: skip
        ctx.save_for_backward(means, quats, scales, viewmats, Ks, radii, conics)
        ctx.size = (width, height)
        ctx.mark_non_differentiable(radii)
        return means2d, conics, depths, radii

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, _v_radii):
        means, quats, scales, viewmats, Ks, radii, conics = ctx.saved_tensors
        zeros = torch.zeros_like
        v_means, v_quats, v_scales = _ext().project_backward(
            _c(means), _c(quats), _c(scales), _c(viewmats), _c(Ks), *ctx.size, radii, conics,
            _c(v_means2d if v_means2d is not None else zeros(conics[..., :2])),
            _c(v_conics if v_conics is not None else zeros(conics)),
            _c(v_depths if v_depths is not None else zeros(conics[..., 0])),
        )  # fmt: skip
        return v_means, v_quats, v_scales, None, None, None, None, None, None, None, None


class _Rasterize(Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, tile_offsets, flatten_ids, width, height):
        args = (_c(means2d), _c(conics), _c(opacities), _c(colors), tile_offsets, flatten_ids, width, height, TILE_SIZE)
        out, alpha, final_t, n_done = _ext().rasterize_forward(*args)
        ctx.save_for_backward(*args[:6], final_t, n_done)
        ctx.size = (width, height)
        return out, alpha

    @staticmethod
    def backward(ctx, v_out, v_alpha):
        means2d, conics, opacities, colors, tile_offsets, flatten_ids, final_t, n_done = ctx.saved_tensors
        width, height = ctx.size
        if v_out is None:
            v_out = colors.new_zeros(colors.shape[0], height, width, colors.shape[2])
        if v_alpha is None:
            v_alpha = colors.new_zeros(colors.shape[0], height, width, 1)
        v_means2d, v_conics, v_opacities, v_colors = _ext().rasterize_backward(
            means2d, conics, opacities, colors, tile_offsets, flatten_ids, width, height, TILE_SIZE,
            final_t, n_done, _c(v_out), _c(v_alpha),
        )  # fmt: skip
        return v_means2d, v_conics, v_opacities, v_colors, None, None, None, None


class _SphericalHarmonics(Function):
    @staticmethod
    def forward(ctx, degree, coeffs, dirs):
        rgb = _ext().sh_forward(degree, _c(coeffs), _c(dirs))
        ctx.save_for_backward(coeffs, dirs)
        ctx.degree = degree
        return rgb

    @staticmethod
    def backward(ctx, v_rgb):
        coeffs, dirs = ctx.saved_tensors
        v_coeffs, v_dirs = _ext().sh_backward(ctx.degree, _c(coeffs), _c(dirs), _c(v_rgb))
        return None, v_coeffs, v_dirs


def project_cpu(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
    width: int, height: int, eps2d: float, near_plane: float, far_plane: float,
) -> Projection:  # fmt: skip
    """C++ version of :func:`gsseg.render.projection.project_reference` (same outputs)."""
    means2d, conics, depths, radii = _Project.apply(
        means, quats, scales, opacities.detach(), viewmats, Ks, width, height, eps2d, near_plane, far_plane
    )
    return Projection(means2d=means2d, conics=conics, depths=depths, radii=radii)


def isect_cpu(proj: Projection, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Tile offsets [C*tiles+1] int64 and depth-sorted flatten ids [n_isect] int32."""
    return _ext().isect_tiles(
        _c(proj.means2d.detach()), _c(proj.radii), _c(proj.depths.detach()), width, height, TILE_SIZE
    )


def rasterize_cpu(
    proj: Projection, opacities: Tensor, channels: Tensor, width: int, height: int
) -> tuple[Tensor, Tensor]:
    """C++ version of :func:`gsseg.render.reference.rasterize_reference`: ``channels [C,N,K]`` ->
    (out [C,H,W,K], alpha [C,H,W,1])."""
    tile_offsets, flatten_ids = isect_cpu(proj, width, height)
    return _Rasterize.apply(proj.means2d, proj.conics, opacities, channels, tile_offsets, flatten_ids, width, height)


def sh_colors_cpu(coeffs: Tensor, sh_degree: int, means: Tensor, campos: Tensor) -> Tensor:
    """C++ SH: ``coeffs [N,K,3]``, camera centres ``campos [C,3]`` -> RGB ``[C,N,3]``."""
    dirs = means[None, :, :] - campos[:, None, :]
    return _SphericalHarmonics.apply(sh_degree, coeffs, dirs)


@torch.no_grad()
def build_table_cpu(
    means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, viewmats: Tensor, Ks: Tensor,
    width: int, height: int, eps2d: float, near_plane: float, far_plane: float,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Contribution table of one camera: offsets [H*W+1] int64, gaussian ids [nnz] int32, weights [nnz] float32."""
    proj = project_cpu(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane)
    tile_offsets, flatten_ids = isect_cpu(proj, width, height)
    return _ext().build_table(
        _c(proj.means2d), _c(proj.conics), _c(opacities), tile_offsets, flatten_ids, width, height, TILE_SIZE
    )
