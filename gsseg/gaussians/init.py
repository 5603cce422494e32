"""Initial Gaussian scenes: from sparse points, random points in the scene box, or a PLY."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from gsseg.gaussians.ply import read_ply
from gsseg.gaussians.scene import GaussianScene

SH_C0 = 0.28209479177387814


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    """DC SH coefficient for an RGB colour in [0,1] (any shape)."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(sh: torch.Tensor) -> torch.Tensor:
    return sh * SH_C0 + 0.5


def knn_log_scales(points: np.ndarray, init_scale: float = 1.0) -> torch.Tensor:
    """[P,3] isotropic log scales: log(sqrt(mean squared distance to the 3 nearest neighbours))."""
    p = len(points)
    if p < 2:
        return torch.full((p, 3), float(np.log(0.01 * init_scale)))
    k = min(4, p)
    dist, _ = cKDTree(points).query(points, k=k)
    d2 = (np.asarray(dist[:, 1:], np.float64) ** 2).mean(axis=1)
    d2 = np.maximum(d2, 1e-14)  # coincident points
    log_s = np.log(np.sqrt(d2) * init_scale).astype(np.float32)
    return torch.from_numpy(np.repeat(log_s[:, None], 3, axis=1))


def init_from_points(
    points: np.ndarray, colors: np.ndarray, sh_degree: int = 3, init_opacity: float = 0.1, init_scale: float = 1.0
) -> GaussianScene:
    """One Gaussian per point.

    points: [P,3] positions; colors: [P,3] RGB in [0,1]. Identity quaternions, opacity
    ``init_opacity``, scales from the 3 nearest neighbours, zero higher-order SH.
    """
    points = np.asarray(points, np.float32)
    colors = np.asarray(colors, np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise ValueError(f"points and colors must both be [P,3], got {points.shape} and {colors.shape}")
    p = len(points)
    quats = torch.zeros(p, 4)
    quats[:, 0] = 1.0
    logit = float(np.log(init_opacity / (1.0 - init_opacity)))
    k_rest = (sh_degree + 1) ** 2 - 1
    return GaussianScene(
        means=torch.from_numpy(points.copy()),
        log_scales=knn_log_scales(points, init_scale),
        quats=quats,
        logit_opacities=torch.full((p,), logit),
        sh0=rgb_to_sh(torch.from_numpy(colors.copy())).reshape(p, 1, 3),
        shN=torch.zeros(p, k_rest, 3),
    )


def random_points(n: int, center: np.ndarray, half_extent: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uniform points [n,3] in the cube ``center ± half_extent`` and random colours [n,3]."""
    rng = np.random.default_rng(seed)
    pts = center[None, :] + (rng.random((n, 3)) * 2.0 - 1.0) * half_extent
    return pts.astype(np.float32), rng.random((n, 3)).astype(np.float32)


def fibonacci_sphere(n: int) -> np.ndarray:
    """[n,3] nearly uniform unit vectors (Fibonacci lattice)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def colors_from_views(points: np.ndarray, cameras, image_fn) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour [P,3] of each point over the training photos it projects into, and a seen mask [P].

    cameras: Cameras (OpenCV world-to-camera); image_fn(name) -> [H,W,3] tensor in [0,1].
    """
    pts = torch.from_numpy(points.astype(np.float32))
    total = torch.zeros(len(pts), 3)
    count = torch.zeros(len(pts))
    for i, name in enumerate(cameras.names):
        cam = cameras.viewmats[i] @ torch.cat([pts, torch.ones(len(pts), 1)], 1).T  # [4,P]
        z = cam[2]
        uvw = cameras.Ks[i] @ cam[:3]
        u, v = uvw[0] / z.clamp_min(1e-8), uvw[1] / z.clamp_min(1e-8)
        w, h = int(cameras.widths[i]), int(cameras.heights[i])
        ok = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        if ok.any():
            img = image_fn(name)
            total[ok] += img[v[ok].long(), u[ok].long()]
            count[ok] += 1
    seen = count > 0
    return (total / count.clamp_min(1)[:, None]).numpy(), seen.numpy()


def background_shell(ds, n: int, radius: float, points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points on a sphere of ``radius · scene_scale`` around the scene, coloured from the photos.

    They stand in for what lies beyond the sparse points (sky, distant ground) like an
    environment map; points no training view sees are dropped. The sphere is centred on the
    mean of ``points`` [P,3] (default: the dataset's sparse points), else of the training
    cameras. Returns ([S,3], [S,3]).
    """
    cams = ds.cameras("train")
    centre = cams.centers.double().numpy().mean(axis=0)
    if points is None and ds.points is not None:
        points = ds.points[0]
    if points is not None and len(points):
        centre = np.asarray(points, np.float64).mean(axis=0)
    pts = centre[None] + fibonacci_sphere(n) * radius * float(ds.scene_scale)
    colors, seen = colors_from_views(pts, cams, ds.image)
    return pts[seen].astype(np.float32), colors[seen].astype(np.float32)


def init_from_dataset(
    ds,
    sh_degree: int = 3,
    init_opacity: float = 0.1,
    init_scale: float = 1.0,
    random_count: int = 20_000,
    random_extent: float = 1.0,
    seed: int = 0,
    force_random: bool = False,
    shell_points: int = 0,
    shell_radius: float = 5.0,
    triangulate: bool = False,
    log: Callable[[str], None] | None = None,
) -> tuple[GaussianScene, str]:
    """Initial scene for a dataset: its sparse points, else (``triangulate``) points
    triangulated from its photos with the known poses (``gsseg.data.triangulate``, cached),
    else random points in the camera box.

    The random box is centred on the mean training camera centre with half-size
    ``random_extent · ds.scene_scale``; a failed triangulation falls back to it with a warning
    through ``log`` (default: a line on stderr). ``shell_points`` > 0 adds a background shell
    (``background_shell``) of that many candidate points. Returns the scene and a word
    naming the source ("points", "triangulated" or "random", + "+shell").
    """
    points = None if force_random else ds.points
    if (points is None or len(points[0]) == 0) and triangulate and not force_random:
        points = _triangulated_or_none(ds, log)
        source = "triangulated"
    else:
        source = "points"
    if points is not None and len(points[0]) > 0:
        pts, cols = points
    else:
        centers = ds.cameras("train").centers.double().numpy()
        pts, cols = random_points(random_count, centers.mean(axis=0), random_extent * float(ds.scene_scale), seed)
        source = "random"
    scene = init_from_points(pts, cols, sh_degree, init_opacity, init_scale)
    if shell_points > 0:
        spts, scols = background_shell(ds, shell_points, shell_radius, points=pts if source != "random" else None)
        if len(spts):
            shell = init_from_points(spts, scols, sh_degree, init_opacity, init_scale)
            means, log_scales, quats, logit_opacities, sh0, sh_rest = (
                torch.cat([getattr(scene, k), getattr(shell, k)])
                for k in ("means", "log_scales", "quats", "logit_opacities", "sh0", "shN")
            )
            scene = GaussianScene(means, log_scales, quats, logit_opacities, sh0, sh_rest)
            source += "+shell"
    return scene, source


def _triangulated_or_none(ds, log: Callable[[str], None] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``gsseg.data.triangulate.triangulated_points(ds)``, or None after a warning when it fails."""
    from gsseg.data.triangulate import TriangulationError, triangulated_points

    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    try:
        return triangulated_points(ds, log=say)
    except (TriangulationError, RuntimeError, ValueError, OSError) as e:  # pycolmap raises RuntimeError/ValueError
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        say(f"warning: no sparse points ({reason}); starting from random points instead")
        return None


def init_from_ply(path: str | Path, sh_degree: int | None = None, drop_invalid: bool = False) -> GaussianScene:
    """A pretrained INRIA-layout scene; SH padded/truncated to ``sh_degree`` when given."""
    scene = read_ply(path, drop_invalid=drop_invalid)
    return scene if sh_degree is None else scene.with_sh_degree(sh_degree)


@dataclass
class DepthSamples:
    """Where each Gaussian of ``init_from_depth`` came from: view name index, pixel row, column.

    Attributes:
        view: [N] int64 index into the ``views`` list given to ``init_from_depth``.
        ys, xs: [N] int64 pixel coordinates in that view.
    """

    view: np.ndarray
    ys: np.ndarray
    xs: np.ndarray


def init_from_depth(
    ds,
    views: list[str] | None = None,
    stride: int = 1,
    size: float = 0.5,
    opacity: float = 0.95,
    max_depth: float | None = None,
    sh_degree: int = 0,
) -> tuple[GaussianScene, DepthSamples]:
    """Gaussians unprojected from depth maps (RGB-D initialisation): one isotropic Gaussian per
    ``stride``-th pixel with depth > 0 of each view, of standard deviation ``size`` × the pixel
    footprint × stride, coloured from the image.

    ``max_depth`` (in units of ``ds.scene_scale``) drops far surface points. Returns the scene
    and the pixel each Gaussian came from. Raises GssegError when a view has no depth map.
    """
    from gsseg.errors import GssegError

    cams = ds.cameras("all")
    views = list(views) if views is not None else list(ds.names("train"))
    means, sigmas, colors, vids, all_ys, all_xs = [], [], [], [], [], []
    for vi, name in enumerate(views):
        depth = ds.depth(name)
        if depth is None:
            raise GssegError(f"{ds.root}: view {name} has no depth map (DATA/depth/{name}.npy)")
        depth = depth.double().numpy()
        ys, xs = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
        ys, xs = ys.reshape(-1), xs.reshape(-1)
        z = depth[ys, xs]
        keep = z > 0
        if max_depth is not None:
            keep &= z < max_depth * float(ds.scene_scale)
        ys, xs, z = ys[keep], xs[keep], z[keep]
        i = cams.index_of(name)
        K = cams.Ks[i].double().numpy()
        cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * z, (ys + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
        c2w = np.linalg.inv(cams.viewmats[i].double().numpy())
        means.append(cam @ c2w[:3, :3].T + c2w[:3, 3])
        sigmas.append(size * stride * z / K[0, 0])
        colors.append(ds.image(name).numpy()[ys, xs])
        vids.append(np.full(len(z), vi, dtype=np.int64))
        all_ys.append(ys.astype(np.int64))
        all_xs.append(xs.astype(np.int64))
    m = torch.tensor(np.concatenate(means), dtype=torch.float32)
    n = m.shape[0]
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    k = (sh_degree + 1) ** 2
    scene = GaussianScene(
        means=m,
        log_scales=torch.tensor(np.log(np.concatenate(sigmas)), dtype=torch.float32)[:, None].repeat(1, 3),
        quats=quats,
        logit_opacities=torch.full((n,), float(np.log(opacity / (1.0 - opacity)))),
        sh0=rgb_to_sh(torch.tensor(np.concatenate(colors), dtype=torch.float32)).reshape(n, 1, 3),
        shN=torch.zeros(n, k - 1, 3),
    )
    return scene, DepthSamples(np.concatenate(vids), np.concatenate(all_ys), np.concatenate(all_xs))
