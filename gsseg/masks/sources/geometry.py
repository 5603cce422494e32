"""``geometry`` source: the weight-free default that sees shape as well as colour.

The RGB stage's Gaussians are rendered into each view (expected depth and opacity); depth
discontinuities and creases of the surface normals (normals from the depth map, back-projected
with the view's intrinsics) are where objects meet, colour edges where textures change. Each edge map of a
4-adjacency pixel graph is scaled to [0,1] (colour by its 99th percentile in the view, depth by
a relative disparity jump of ``depth_jump`` not explained by the slant of the surface, normals
by a crease of ``crease_deg`` degrees; background next to the surface counts as a full jump).
Several weighted sums of them (``hierarchies``: colour, depth and normal weights and the
watershed attribute) are each cut by the hierarchical watershed of the ``watershed`` source
(:func:`gsseg.masks.sources.watershed.cuts_of_graph`) at ``region_counts``, and every region of
every cut is one mask (repeats kept once): colour alone (today's watershed), colour with shape,
and shape before colour, so a textured wall stays one region in the last while an object in
front of it separates at its silhouette.

Measured on tabletop (128x96, 8 training views, back-projected ground-truth depth as the
geometry, ``covering_from_masks`` NC): colour only 0.371; colour + shape alone 0.396; the three
hierarchies together 0.506.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from gsseg.errors import GssegError
from gsseg.masks.sources.base import View
from gsseg.masks.sources.watershed import WatershedSettings, cuts_of_graph
from gsseg.masks.store import ViewMasks


@dataclass
class GeometrySettings:
    """Weights of the colour, depth and normal edges and the watershed cuts (see module doc)."""

    region_counts: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64, 128])
    min_area_fraction: float = 0.002
    hierarchies: list[tuple[float, float, float, str]] = field(
        default_factory=lambda: [(1.0, 0.0, 0.0, "volume"), (1.0, 1.0, 0.5, "volume"), (0.25, 1.0, 0.5, "area")]
    )
    depth_jump: float = 0.05
    crease_deg: float = 40.0
    min_alpha: float = 0.5
    sigma: float = 0.5

    def watershed(self, attribute: str) -> WatershedSettings:
        return WatershedSettings(list(self.region_counts), attribute, self.min_area_fraction, self.sigma)


def camera_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[H,W,3] camera-space points of a z-depth map ``depth [H,W]`` with intrinsics ``K [3,3]``."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u + 0.5 - K[0, 2]) / K[0, 0] * depth
    y = (v + 0.5 - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, depth], -1)


def depth_normals(depth: np.ndarray, K: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """[H,W,3] unit normals of the surface seen in ``depth [H,W]`` (cross product of the
    back-projected points' image derivatives, after smoothing the depth by ``sigma`` pixels)."""
    d = ndimage.gaussian_filter(depth, sigma) if sigma > 0 else depth
    p = camera_points(d, K)
    du = np.gradient(p, axis=1)
    dv = np.gradient(p, axis=0)
    n = np.cross(du, dv)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def disparity_jumps(depth: np.ndarray, src: np.ndarray, dst: np.ndarray, width: int) -> np.ndarray:
    """[E] relative disparity jump across each 4-adjacency edge ``src -> dst`` of ``depth [H,W]``.

    Disparity 1/z is affine in the pixel coordinates over a plane, so the jump is the error of
    extrapolating it linearly across the edge from either side (the smaller of the two), relative
    to the larger disparity: ~0 on planes however slanted (a floor at a grazing angle), large at
    occlusion boundaries. Pixels with no depth (<= 0) give 0 (the caller handles them)."""
    d = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-12), 0.0).reshape(-1)
    n = d.size
    step = dst - src  # 1 (to the right) or width (down)
    col = src % width
    behind = src - step
    ahead = dst + step
    ok_b = (behind >= 0) & ((step != 1) | (col > 0))
    ok_a = (ahead < n) & ((step != 1) | (col + 2 < width))
    e1 = np.abs(d[dst] - (2 * d[src] - d[np.clip(behind, 0, n - 1)]))
    e2 = np.abs(d[src] - (2 * d[dst] - d[np.clip(ahead, 0, n - 1)]))
    err = np.minimum(np.where(ok_b, e1, np.inf), np.where(ok_a, e2, np.inf))
    err = np.where(np.isfinite(err), err, np.abs(d[src] - d[dst]))
    return err / np.maximum(np.maximum(d[src], d[dst]), 1e-12)


def edge_weights(
    image: np.ndarray, depth: np.ndarray, alpha: np.ndarray, K: np.ndarray, settings: GeometrySettings
) -> tuple[object, np.ndarray]:
    """(higra 4-adjacency graph of the [H,W] image, its colour, depth and normal edges [3,E],
    each in [0,1]; see module doc)."""
    import higra as hg

    h, w = depth.shape
    graph = hg.get_4_adjacency_graph((h, w))
    src, dst = (np.asarray(a) for a in graph.edge_list())
    rgb = ndimage.gaussian_filter(image.astype(np.float64) / 255.0, sigma=(settings.sigma, settings.sigma, 0))
    rgb = rgb.reshape(h * w, -1)
    colour = np.linalg.norm(rgb[src] - rgb[dst], axis=1)
    colour = np.clip(colour / max(float(np.percentile(colour, 99)), 1e-6), 0.0, 1.0)
    fg = (alpha >= settings.min_alpha).reshape(-1)
    jump = disparity_jumps(np.where(alpha >= settings.min_alpha, depth, 0.0), src, dst, w)
    jump = np.clip(jump / settings.depth_jump, 0.0, 1.0)
    jump = np.where(fg[src] & fg[dst], jump, np.where(fg[src] != fg[dst], 1.0, 0.0))
    filled = np.where(
        alpha >= settings.min_alpha, depth, np.median(depth[alpha >= settings.min_alpha]) if fg.any() else 1.0
    )
    n = depth_normals(filled, K).reshape(-1, 3)
    cos = np.clip((n[src] * n[dst]).sum(1), -1.0, 1.0)
    crease = np.clip((1.0 - cos) / (1.0 - np.cos(np.deg2rad(settings.crease_deg))), 0.0, 1.0)
    crease = np.where(fg[src] & fg[dst], crease, 0.0)
    return graph, np.stack([colour, jump, crease])


class GeometrySource:
    """``GeometrySource(scene, cameras, settings)(view) -> ViewMasks``: masks from the rendered
    depth of ``scene`` (a GaussianScene) in ``cameras`` (named like the dataset's views) and the
    photo. ``GeometrySource.from_run(RUN)`` reads ``RUN/scene.ply`` and takes the cameras of the
    views it is given."""

    name = "geometry"

    def __init__(self, scene=None, cameras=None, settings: GeometrySettings | None = None, ply: Path | None = None):
        self.scene = scene
        self.cameras = cameras
        self.ply = ply
        self.config = settings or GeometrySettings()

    @classmethod
    def from_run(cls, run_root: str | Path, settings: GeometrySettings | None = None) -> GeometrySource:
        """The source of a run whose RGB stage wrote ``RUN/scene.ply`` (GssegError when it did not)."""
        ply = Path(run_root) / "scene.ply"
        if not ply.is_file():
            raise GssegError(
                f"{ply}: not found; the geometry source needs a run whose RGB stage is done "
                "(`gsseg train DATA --out RUN --stage rgb`, then `gsseg masks DATA --source geometry --run RUN`)"
            )
        return cls(settings=settings, ply=ply)

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def render(self, stem: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(depth [H,W], alpha [H,W], K [3,3]) of view ``stem``."""
        from gsseg.render import render

        if stem not in self.cameras.names:
            raise GssegError(f"view {stem!r}: no camera of that name in the run's dataset")
        cam = self.cameras[[self.cameras.names.index(stem)]]
        s = self.scene
        with torch.no_grad():
            out = render(s.means, s.quats, s.scales, s.opacities, torch.zeros(len(s), 3), cam)
        return (
            out.depth[0, ..., 0].double().numpy(),
            out.alpha[0, ..., 0].double().numpy(),
            cam.Ks[0].double().numpy(),
        )

    def masks_for(self, image: np.ndarray, depth: np.ndarray, alpha: np.ndarray, K: np.ndarray) -> ViewMasks:
        """Masks of an RGB image [H,W,3] uint8 with its rendered depth / alpha [H,W] and intrinsics K [3,3]."""
        h, w = image.shape[:2]
        if depth.shape != (h, w):
            raise GssegError(f"rendered depth {depth.shape} and image {(h, w)} differ in size")
        graph, edges = edge_weights(image, depth, alpha, K, self.config)
        all_maps, persistence = [], []
        for cw, dw, nw, attribute in self.config.hierarchies:
            weights = cw * edges[0] + dw * edges[1] + nw * edges[2]
            maps, pers = cuts_of_graph(graph, weights, (h, w), self.config.watershed(attribute))
            all_maps.append(maps)
            persistence += pers
        maps = np.concatenate(all_maps)
        view, labels = ViewMasks.from_label_maps(maps, self.name, image_size=(h, w), info=self.settings())
        view.scores = np.array([persistence[level][value - 1] for level, value in labels], dtype=np.float32)
        _, first = np.unique(np.packbits(view.membership, axis=1), axis=0, return_index=True)
        keep = np.zeros(view.n_masks, dtype=bool)
        keep[first] = True
        return view.subset(keep & (view.areas >= self.config.min_area_fraction * h * w))

    def __call__(self, view: View) -> ViewMasks:
        if self.scene is None and self.ply is not None:
            from gsseg.gaussians.ply import read_ply

            self.scene = read_ply(self.ply)
        if self.cameras is None:
            self.cameras = view.dataset.cameras("all")
        image = view.image()
        depth, alpha, K = self.render(view.stem)
        return self.masks_for(image, depth, alpha, K)
