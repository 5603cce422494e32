"""Frozen-geometry fast path: per-pixel contribution tables (CSR) and feature rendering from them.

With the geometry fixed, a rendered feature is linear in the per-Gaussian features:
``f(p) = sum_i w_i(p) F[g_i]`` with ``w_i = T_i alpha_i``. A table stores, per pixel, the
contributing Gaussian ids and weights in front-to-back order (truncated at transmittance 1e-4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.render.cpu import build_table_cpu
from gsseg.render.cuda_backend import build_table_cuda
from gsseg.render.cuda_extension import load_cuda_extension
from gsseg.render.dispatch import resolve_backend
from gsseg.render.extensions import load_cpu_extension
from gsseg.render.projection import EPS2D, FAR_PLANE, NEAR_PLANE, TILE_SIZE, project_reference
from gsseg.render.reference import composite_weights
from gsseg.render.types import ContributionTable, image_size
from gsseg.utils.lru import BoundedLRU

__all__ = ["ContributionTable", "TableCache", "build_contribution_table", "render_features_from_table"]


def _table_reference(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane):

    proj = project_reference(means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane)
    vis = torch.nonzero(proj.visible[0]).squeeze(1)
    ids = vis[torch.sort(proj.depths[0, vis], stable=True).indices]
    m2, con, opa = proj.means2d[0, ids], proj.conics[0, ids], opacities[ids]
    rad = proj.radii[0, ids].to(m2.dtype)
    lo, hi = m2 - rad - 1.0, m2 + rad + 1.0
    pix_all, gid_all, w_all = [], [], []
    for y0 in range(0, height, TILE_SIZE):
        y1 = min(y0 + TILE_SIZE, height)
        for x0 in range(0, width, TILE_SIZE):
            x1 = min(x0 + TILE_SIZE, width)
            sel = torch.nonzero((hi[:, 1] > y0) & (lo[:, 1] < y1) & (hi[:, 0] > x0) & (lo[:, 0] < x1)).squeeze(1)
            if sel.numel() == 0:
                continue
            ys, xs = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
            px, py = xs.reshape(-1), ys.reshape(-1)
            dx = m2[sel, 0][None, :] - (px.to(m2.dtype)[:, None] + 0.5)
            dy = m2[sel, 1][None, :] - (py.to(m2.dtype)[:, None] + 0.5)
            w, _ = composite_weights(dx, dy, con[sel], opa[sel])
            p_local, m_local = torch.nonzero(w > 0, as_tuple=True)  # row-major: front to back per pixel
            pix_all.append(py[p_local] * width + px[p_local])
            gid_all.append(ids[sel[m_local]])
            w_all.append(w[p_local, m_local])
    if pix_all:
        pix, gid, w = torch.cat(pix_all), torch.cat(gid_all), torch.cat(w_all)
        order = torch.sort(pix, stable=True).indices
        pix, gid, w = pix[order], gid[order], w[order]
    else:
        pix = torch.zeros(0, dtype=torch.int64)
        gid = torch.zeros(0, dtype=torch.int64)
        w = torch.zeros(0, dtype=means.dtype)
    counts = torch.bincount(pix, minlength=width * height)
    offsets = torch.zeros(width * height + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(counts, 0)
    return offsets, gid.to(torch.int32), w.float()


@torch.no_grad()
def build_contribution_table(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    camera: Cameras,
    backend: str = "auto",
    eps2d: float = EPS2D,
    near_plane: float = NEAR_PLANE,
    far_plane: float = FAR_PLANE,
) -> ContributionTable:
    """Contribution table of one camera (``len(camera) == 1``) for Gaussians ``means [N,3]``,
    ``quats [N,4]``, activated ``scales [N,3]`` and ``opacities [N]``."""
    if len(camera) != 1:
        raise ValueError(f"build_contribution_table takes one camera, got {len(camera)}")
    width, height = image_size(camera)
    which = resolve_backend(backend, means.device)
    if which == "cuda":
        if load_cuda_extension() is not None:
            return build_table_cuda(
                means, quats, scales, opacities, camera, eps2d=eps2d, near_plane=near_plane, far_plane=far_plane
            )
        table = build_contribution_table(
            means.cpu(),
            quats.cpu(),
            scales.cpu(),
            opacities.cpu(),
            camera.to("cpu"),
            eps2d=eps2d,
            near_plane=near_plane,
            far_plane=far_plane,
        )
        return table.to(means.device)  # without gsseg's CUDA kernels: built on the CPU
    viewmats = camera.viewmats.to(means)
    Ks = camera.Ks.to(means)
    args = (means, quats, scales, opacities, viewmats, Ks, width, height, eps2d, near_plane, far_plane)
    if which == "cpu":
        offsets, gids, weights = build_table_cpu(*args)
    else:
        offsets, gids, weights = _table_reference(*args)
    return ContributionTable(offsets, gids, weights, width, height)


class _TableFeaturesCpu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, offsets, gaussian_ids, weights, pixel_ids, ext):
        out, order = ext.table_gather(offsets, gaussian_ids, weights, pixel_ids, features.contiguous())
        ctx.save_for_backward(offsets, gaussian_ids, weights, pixel_ids, order)
        ctx.ext, ctx.n = ext, features.shape[0]
        return out

    @staticmethod
    def backward(ctx, v_out):
        offsets, gaussian_ids, weights, pixel_ids, order = ctx.saved_tensors
        v_features = ctx.ext.table_scatter(offsets, gaussian_ids, weights, pixel_ids, order, v_out.contiguous(), ctx.n)
        return v_features, None, None, None, None, None


def _features_torch(table: ContributionTable, pixel_ids: Tensor, features: Tensor) -> Tensor:
    device = features.device
    offsets = table.offsets.to(device)
    starts = offsets[pixel_ids]
    counts = offsets[pixel_ids + 1] - starts
    n_pix = pixel_ids.numel()
    seg = torch.repeat_interleave(torch.arange(n_pix, device=device), counts)
    first = torch.cumsum(counts, 0) - counts
    pos = torch.arange(seg.numel(), device=device) - first[seg] + starts[seg]
    gids = table.gaussian_ids.to(device)[pos].long()
    w = table.weights.to(device=device, dtype=features.dtype)[pos]
    out = features.new_zeros(n_pix, features.shape[1])
    return out.index_add(0, seg, features[gids] * w[:, None])


def render_features_from_table(table: ContributionTable, pixel_ids: Tensor, features: Tensor) -> Tensor:
    """Features ``[P,D]`` of pixels ``pixel_ids [P]`` (int64, y * width + x) from per-Gaussian
    ``features [N,D]``: one gather and one weighted sum; differentiable in ``features``
    (its backward is a scatter-add). On the CPU a C++ op does both when the extension is built."""
    pixel_ids = pixel_ids.to(device=features.device, dtype=torch.int64).reshape(-1)
    if features.device.type == "cpu" and table.offsets.device.type == "cpu":
        ext = load_cpu_extension()
        if ext is not None and hasattr(ext, "table_gather"):
            # the op raises IndexError for pixel ids outside [0, H*W)
            return _TableFeaturesCpu.apply(
                features, table.offsets.contiguous(), table.gaussian_ids.contiguous(), table.weights.contiguous(),
                pixel_ids.contiguous(), ext,
            )  # fmt: skip
    return _features_torch(table, pixel_ids, features)


PROBE_PIXELS = 65_536  # the first size estimate comes from tables at most this big
SCALE_STEP = 1 / 64
FIT_SHARE = 0.9  # of the budget the probed mean table size times the views may take


def mean_table_bytes(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    cameras: Cameras,
    scale: float,
    probes: int = 3,
    backend: str = "auto",
) -> float:
    """Mean bytes of the tables, at ``scale``, of ``probes`` evenly spaced views of ``cameras``."""
    picks = sorted({round(i * (len(cameras) - 1) / max(probes - 1, 1)) for i in range(min(probes, len(cameras)))})
    sizes = [
        build_contribution_table(
            means, quats, scales, opacities, cameras[i].scaled(scale) if scale != 1.0 else cameras[i], backend=backend
        ).nbytes
        for i in picks
    ]
    return sum(sizes) / len(sizes)


def fitting_table_scale(table_bytes: float, views: int, max_bytes: int) -> float:
    """Largest scale in (0, 1] (a multiple of ``SCALE_STEP``) at which ``views`` tables, of
    ``table_bytes`` each at scale 1 and of size ∝ scale², fit in ``max_bytes``."""
    if views * table_bytes <= max_bytes:
        return 1.0
    fit = math.sqrt(max_bytes / (views * table_bytes))
    return max(SCALE_STEP, math.floor(fit / SCALE_STEP) * SCALE_STEP)


def auto_table_scale(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    cameras: Cameras,
    max_bytes: int,
    probes: int = 3,
    backend: str = "auto",
) -> float:
    """Largest table scale at which the tables of every view of ``cameras`` fit in ``max_bytes``.

    A first guess comes from tables of ``probes`` views at <= ``PROBE_PIXELS`` pixels (size ∝
    pixels); it is then checked at the guessed scale and lowered while it does not fit (entries
    per pixel grow a little at low resolution, where small Gaussians still cover a pixel).
    """
    geometry = (means, quats, scales, opacities)
    max_bytes = int(max_bytes * FIT_SHARE)  # views differ from the probes' mean
    width, height = image_size(cameras[0])
    measured = min(1.0, math.sqrt(PROBE_PIXELS / (width * height)))
    size = mean_table_bytes(*geometry, cameras, measured, probes, backend)
    scale = fitting_table_scale(size / measured**2, len(cameras), max_bytes)
    for _ in range(4):
        if scale != measured:
            measured, size = scale, mean_table_bytes(*geometry, cameras, scale, probes, backend)
        if len(cameras) * size <= max_bytes or scale <= SCALE_STEP:
            return scale
        scale = min(scale - SCALE_STEP, fitting_table_scale(size / scale**2, len(cameras), max_bytes))
        scale = max(scale, SCALE_STEP)
    return scale


class TableCache:
    """Builds contribution tables lazily per view and keeps the most recently used ones (LRU):
    at most ``max_tables`` of them and, when ``max_bytes`` is given, at most that many bytes
    (the table just built is always kept).

    ``scale`` < 1 builds tables at a reduced resolution (cameras rescaled with
    ``Cameras.scaled``), so memory stays bounded for many or large views. The geometry tensors
    are held by reference; call ``clear()`` if they change.
    """

    def __init__(
        self,
        means: Tensor,
        quats: Tensor,
        scales: Tensor,
        opacities: Tensor,
        cameras: Cameras,
        max_tables: int = 8,
        scale: float = 1.0,
        backend: str = "auto",
        max_bytes: int | None = None,
    ) -> None:
        self.geometry = (means.detach(), quats.detach(), scales.detach(), opacities.detach())
        self.cameras = cameras.scaled(scale) if scale != 1.0 else cameras
        self.backend = backend
        self._cache: BoundedLRU[ContributionTable] = BoundedLRU(lambda t: t.nbytes, max_tables, max_bytes)

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, view: str) -> bool:
        return view in self._cache

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tables."""
        return self._cache.nbytes

    @property
    def builds(self) -> int:
        """Tables built so far (a rebuild after eviction counts again)."""
        return self._cache.misses

    def get(self, view: str | int) -> ContributionTable:
        """Table of a view given by image stem or camera index."""
        index = self.cameras.index_of(view) if isinstance(view, str) else int(view)
        return self._cache.get(
            self.cameras.names[index],
            lambda: build_contribution_table(*self.geometry, self.cameras[index], backend=self.backend),
        )

    def clear(self) -> None:
        self._cache.clear()
