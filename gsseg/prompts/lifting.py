"""Clicks lifted to 3D with the depth rendered from the frozen Gaussians.

:class:`SurfaceProbe` reads the rendered (median) depth and opacity at pixels from per-view
contribution tables; a click's pixel centre is unprojected at that depth (OpenCV cameras:
``u = fx·x/z + cx``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.errors import GssegError
from gsseg.prompts.spec import Click


class SurfaceProbe:
    """Rendered (median) depth and opacity of frozen Gaussians at pixels of given cameras.

    means [N,3], quats [N,4], scales [N,3] (activated), opacities [N] (activated); cameras may be
    at any resolution (tables are built lazily per view, LRU-bounded).
    """

    def __init__(
        self,
        means: Tensor,
        quats: Tensor,
        scales: Tensor,
        opacities: Tensor,
        cameras: Cameras,
        max_tables: int = 4,
        backend: str = "auto",
    ) -> None:
        from gsseg.render.tables import TableCache

        self.means = means.detach()
        self.cameras = cameras
        self.tables = TableCache(means, quats, scales, opacities, cameras, max_tables=max_tables, backend=backend)

    @classmethod
    def from_scene(cls, scene, cameras: Cameras, **kw) -> "SurfaceProbe":
        """From a :class:`gsseg.gaussians.GaussianScene`."""
        return cls(
            scene.means.float(), scene.quats.float(), scene.scales.float(), scene.opacities.float(), cameras, **kw
        )

    def size(self, view: str) -> tuple[int, int]:
        """(width, height) of ``view`` in the probe's cameras."""
        i = self.cameras.index_of(view)
        return int(self.cameras.widths[i]), int(self.cameras.heights[i])

    def intrinsics(self, view: str) -> np.ndarray:
        """[3,3] float64 intrinsics of ``view`` in the probe's cameras."""
        return self.cameras.Ks[self.cameras.index_of(view)].double().numpy()

    def depth_map(self, view: str, min_alpha: float = 0.5) -> np.ndarray:
        """[H,W] float64 median depth of every pixel of ``view`` (0 where alpha < ``min_alpha``)."""
        w, h = self.size(view)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        depth_t, alpha_t = self.depth_alpha(view, xs.reshape(-1), ys.reshape(-1))
        depth = depth_t.double().numpy()
        depth[alpha_t.numpy() < min_alpha] = 0.0
        return depth.reshape(h, w)

    def depth_alpha(self, view: str, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Median z-depth [P] and alpha [P] at integer pixels ``x, y [P]`` (depth 0 where alpha = 0).

        The median depth is the camera depth of the Gaussian at which the accumulated weight
        reaches half the pixel's alpha: unlike the expected depth it does not blend a foreground
        edge with the background behind it.
        """
        table = self.tables.get(view)
        i = self.cameras.index_of(view)
        viewmat = self.cameras.viewmats[i].to(self.means)
        z = self.means @ viewmat[2, :3] + viewmat[2, 3]
        pix = table.pixel_ids(x, y)
        offsets = table.offsets
        starts = offsets[pix]
        counts = offsets[pix + 1] - starts
        n = len(pix)
        seg = torch.repeat_interleave(torch.arange(n), counts)
        first = torch.cumsum(counts, 0) - counts
        pos = torch.arange(len(seg)) - first[seg] + starts[seg]
        w = table.weights[pos].double()
        alpha = torch.zeros(n, dtype=torch.float64).index_add_(0, seg, w)
        csum = torch.cat([torch.zeros(1, dtype=w.dtype), torch.cumsum(w, 0)])
        before = csum[first]  # accumulated weight of earlier pixels' entries
        csum = csum[1:]
        inside = csum - before[seg]
        reached = inside >= 0.5 * alpha[seg] - 1e-12
        big = torch.full((n,), len(seg), dtype=torch.int64)
        idx = big.scatter_reduce(0, seg[reached], torch.arange(len(seg))[reached], reduce="amin")
        depth = torch.zeros(n, dtype=z.dtype)
        ok = (counts > 0) & (idx < len(seg))
        depth[ok] = z[table.gaussian_ids[pos[idx[ok]]].long()]
        return depth, alpha.to(z.dtype)


def camera_points(cameras: Cameras, view: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world ``points [M,3]`` into ``view``: (pixel xy [M,2] continuous, pixel (u, v)
    with centres at +0.5; z [M] camera depth)."""
    i = cameras.index_of(view)
    vm = cameras.viewmats[i].double().numpy()
    K = cameras.Ks[i].double().numpy()
    cam = points @ vm[:3, :3].T + vm[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    uv = np.stack([K[0, 0] * cam[:, 0] / safe + K[0, 2], K[1, 1] * cam[:, 1] / safe + K[1, 2]], 1)
    return uv, z


def lift_clicks(clicks: list[Click], probe: SurfaceProbe, min_alpha: float = 0.5) -> np.ndarray:
    """3D surface points [M,3] under clicks, from the rendered depth at the clicked pixels.

    The clicked pixel's centre is unprojected at the rendered (median) depth of the probe's view;
    GssegError when a click is off the image or hits (almost) no surface.
    """
    out = np.zeros((len(clicks), 3), dtype=np.float64)
    by_view: dict[str, list[int]] = {}
    for j, c in enumerate(clicks):
        if c.view not in probe.cameras.names:
            raise GssegError(f"click {c.view}:{c.x:g},{c.y:g}: no view named {c.view!r}")
        w, h = probe.size(c.view)
        if not (0 <= c.x < w and 0 <= c.y < h):
            raise GssegError(f"click {c.view}:{c.x:g},{c.y:g} is outside the {w}x{h} image")
        by_view.setdefault(c.view, []).append(j)
    for view, idx in by_view.items():
        xs = np.array([int(math.floor(clicks[j].x)) for j in idx])
        ys = np.array([int(math.floor(clicks[j].y)) for j in idx])
        depth_t, alpha_t = probe.depth_alpha(view, torch.from_numpy(xs), torch.from_numpy(ys))
        depth, alpha = depth_t.double().numpy(), alpha_t.double().numpy()
        for a, j in zip(alpha, idx):
            if a < min_alpha:
                c = clicks[j]
                raise GssegError(
                    f"click {c.view}:{c.x:g},{c.y:g} hits no surface (rendered opacity {a:.2f}); click on an object"
                )
        i = probe.cameras.index_of(view)
        K = probe.cameras.Ks[i].double().numpy()
        cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * depth, (ys + 0.5 - K[1, 2]) / K[1, 1] * depth, depth], 1)
        c2w = np.linalg.inv(probe.cameras.viewmats[i].double().numpy())
        out[idx] = cam @ c2w[:3, :3].T + c2w[:3, 3]
    return out


def resized_cameras(cameras: Cameras, width: int, height: int) -> Cameras:
    """``cameras`` (one image size) for images resized to exactly ``width`` x ``height``.

    Not :meth:`Cameras.scaled`: that takes one factor and rounds each axis, so it cannot always
    reach a given table size (48x36 at the trainer's scale 0.3 is 14x11, while the factor 14/48
    rounds the height to 10); where the sizes agree both give the same intrinsics (each row of
    ``K`` times the float32 size ratio).
    """
    w0, h0 = int(cameras.widths[0]), int(cameras.heights[0])
    if (w0, h0) == (width, height):
        return cameras
    Ks = cameras.Ks.clone()
    Ks[:, 0, :] *= width / w0
    Ks[:, 1, :] *= height / h0
    n = len(cameras)
    sizes = torch.full((n,), width, dtype=torch.int64), torch.full((n,), height, dtype=torch.int64)
    return Cameras(cameras.viewmats.clone(), Ks, *sizes, list(cameras.names))
