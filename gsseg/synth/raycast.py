"""Ray casting a synthetic scene with Open3D's ``RaycastingScene`` (Embree)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from gsseg.synth.primitives import Mesh, quad
from gsseg.synth.scene import SynthScene


@dataclass
class Hits:
    """Result of casting N rays.

    Attributes:
        t: [N] float64 ray parameter of the hit (in units of the ray direction's length), inf on a miss.
        surface: [N] int64 surface index: -1 miss (sky), 0 floor, k >= 1 part id k.
        normals: [N,3] float64 unit geometric (face) normals, flipped to face the ray origin.
        shading_normals: [N,3] float64 unit smooth normals (crease-angle interpolated), same side.
        points: [N,3] float64 hit points (origin + t * direction; undefined on a miss).
    """

    t: np.ndarray
    surface: np.ndarray
    normals: np.ndarray
    shading_normals: np.ndarray
    points: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """[N] bool, True where the ray hit something."""
        return self.surface >= 0


class SceneRaycaster:
    """Embree scene holding every part and a square floor of half-size ``floor_extent`` at z = 0."""

    def __init__(self, scene: SynthScene, floor_extent: float):
        self._scene = o3d.t.geometry.RaycastingScene()
        surfaces: list[tuple[int, Mesh]] = [
            (0, quad((scene.center[0], scene.center[1], 0.0), 2 * floor_extent, 2 * floor_extent))
        ]
        surfaces += [(p.part_id, p.mesh) for p in scene.parts]
        ids = []
        corner_normals = []
        for surface, mesh in surfaces:
            # open3d's stubs make Tensor's dtype and device required; at runtime they default to the array's / CPU
            gid = self._scene.add_triangles(
                o3d.core.Tensor(mesh.vertices.astype(np.float32)),  # type: ignore[call-overload]
                o3d.core.Tensor(mesh.triangles.astype(np.uint32)),  # type: ignore[call-overload]
            )
            ids.append((gid, surface, len(mesh.triangles)))
            corner_normals.append(mesh.corner_normals())
        self._lookup = np.full(max(g for g, _, _ in ids) + 1, -1, dtype=np.int64)
        self._tri_offset = np.zeros(len(self._lookup), dtype=np.int64)
        offset = 0
        for gid, surface, n_tri in ids:
            self._lookup[gid] = surface
            self._tri_offset[gid] = offset
            offset += n_tri
        self._corner_normals = np.concatenate(corner_normals)  # [sum T, 3, 3]

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> Hits:
        """Cast rays origins [N,3] + t * directions [N,3]."""
        rays = o3d.core.Tensor(np.concatenate([origins, directions], axis=1).astype(np.float32))  # type: ignore[call-overload]  # stub: dtype/device are optional
        res = self._scene.cast_rays(rays)
        t = res["t_hit"].numpy().astype(np.float64)
        gids = res["geometry_ids"].numpy().astype(np.int64)
        hit = np.isfinite(t)
        surface = np.full(len(t), -1, dtype=np.int64)
        surface[hit] = self._lookup[gids[hit]]
        normals = res["primitive_normals"].numpy().astype(np.float64)
        smooth = normals.copy()
        if hit.any():
            tri = self._tri_offset[gids[hit]] + res["primitive_ids"].numpy()[hit].astype(np.int64)
            uv = res["primitive_uvs"].numpy()[hit].astype(np.float64)
            bary = np.stack([1.0 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)
            n = np.einsum("nk,nkc->nc", bary, self._corner_normals[tri])
            smooth[hit] = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        flip = np.sum(normals * directions, axis=1) > 0
        normals[flip] *= -1
        smooth[flip] *= -1
        points = origins + np.where(hit, t, 0.0)[:, None] * directions
        return Hits(t, surface, normals, smooth, points)

    def occluded(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """[N] bool: whether anything lies along each ray (t > 0)."""
        rays = o3d.core.Tensor(np.concatenate([origins, directions], axis=1).astype(np.float32))  # type: ignore[call-overload]  # stub: dtype/device are optional
        return self._scene.test_occlusions(rays).numpy().astype(bool)


def pixel_rays(
    c2w_gl: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    offsets: tuple[float, float] = (0.5, 0.5),
) -> tuple[np.ndarray, np.ndarray]:
    """Rays through pixel (u, v) at image point (u + ox, v + oy), row-major.

    Returns origins [H*W,3] and directions [H*W,3] scaled so that their component along the
    camera's viewing axis is 1 — the hit parameter t is then the z-depth.
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = (u.ravel() + offsets[0] - cx) / fx
    y = (v.ravel() + offsets[1] - cy) / fy
    # OpenCV camera axes in world space: x right, y down (= -OpenGL y), z forward (= -OpenGL z).
    rot = c2w_gl[:3, :3] * np.array([1.0, -1.0, -1.0])
    dirs = np.stack([x, y, np.ones_like(x)], axis=1) @ rot.T
    origins = np.broadcast_to(c2w_gl[:3, 3], dirs.shape).copy()
    return origins, dirs
