"""Lambertian shading with a directional sun, cast shadows, ambient light and a sky gradient,
and the per-view renderer that combines it with exact centre-ray labels and depth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsseg.synth.raycast import Hits, SceneRaycaster, pixel_rays
from gsseg.synth.scene import SynthScene
from gsseg.synth.textures import albedo


@dataclass(frozen=True)
class Lighting:
    """Light settings: ``ambient`` + ``sun`` * max(0, n.l) * unshadowed, times albedo."""

    ambient: float = 0.28
    sun: float = 0.85
    sky_horizon: tuple[float, float, float] = (0.85, 0.89, 0.95)
    sky_zenith: tuple[float, float, float] = (0.45, 0.62, 0.88)
    shadow_bias: float = 1e-3


@dataclass
class ViewRender:
    """One rendered view.

    Attributes:
        rgb: [H,W,3] float64 in [0,1] (supersampled).
        depth: [H,W] float32 z-depth of the centre ray, 0 where it hits nothing.
        part: [H,W] int64 part id of the centre ray, 0 for floor and sky.
        points: [H,W,3] float64 world hit points of the centre rays (meaningless where depth is 0).
        floor: [H,W] bool, centre ray hit the floor.
    """

    rgb: np.ndarray
    depth: np.ndarray
    part: np.ndarray
    points: np.ndarray
    floor: np.ndarray


def surface_albedo(scene: SynthScene, hits: Hits) -> np.ndarray:
    """[N,3] albedo at hit points (zeros on misses), each part's texture in its own space."""
    materials = [scene.floor_material]
    mat_of = np.zeros(len(scene.parts) + 1, dtype=np.int64)
    # Per surface, the [3,4] map from world points to texture space (identity for world space).
    tex_map = np.zeros((len(scene.parts) + 1, 3, 4))
    tex_map[:, :, :3] = np.eye(3)
    for part in scene.parts:
        if part.material not in materials:
            materials.append(part.material)
        mat_of[part.part_id] = materials.index(part.material)
        if part.material.space == "object":
            tex_map[part.part_id] = part.world_to_object[:3]
    out = np.zeros((len(hits.t), 3))
    hit = np.flatnonzero(hits.hit)
    surface = hits.surface[hit]
    m = tex_map[surface]
    coords = np.einsum("nij,nj->ni", m[:, :, :3], hits.points[hit]) + m[:, :, 3]
    mat = mat_of[surface]
    for k, material in enumerate(materials):
        sel = mat == k
        if sel.any():
            out[hit[sel]] = albedo(material, coords[sel])
    return out


def sky(directions: np.ndarray, lighting: Lighting) -> np.ndarray:
    """[N,3] sky colour by ray elevation."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    t = np.clip(d[:, 2], 0.0, 1.0)[:, None]
    return (1 - t) * np.asarray(lighting.sky_horizon) + t * np.asarray(lighting.sky_zenith)


def shade(
    scene: SynthScene, raycaster: SceneRaycaster, hits: Hits, directions: np.ndarray, lighting: Lighting
) -> np.ndarray:
    """[N,3] colour of each ray: shaded surface or sky."""
    rgb = sky(directions, lighting)
    hit = hits.hit
    if not hit.any():
        return rgb
    light = scene.light_direction
    n = hits.normals[hit]
    lambert = np.clip(hits.shading_normals[hit] @ light, 0.0, None)
    lit = lambert > 0
    visible = np.zeros(len(n), dtype=bool)
    if lit.any():
        # Shadow rays leave from just off the true (faceted) surface.
        bias = lighting.shadow_bias * max(scene.radius, 1e-6)
        origins = hits.points[hit][lit] + bias * n[lit]
        visible[lit] = ~raycaster.occluded(origins, np.broadcast_to(light, origins.shape).copy())
    intensity = lighting.ambient + lighting.sun * lambert * visible
    sub = Hits(hits.t[hit], hits.surface[hit], n, hits.shading_normals[hit], hits.points[hit])
    rgb[hit] = surface_albedo(scene, sub) * intensity[:, None]
    return np.clip(rgb, 0.0, 1.0)


def render_view(
    scene: SynthScene,
    raycaster: SceneRaycaster,
    c2w_gl: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    width: int,
    height: int,
    lighting: Lighting,
    supersample: int = 2,
) -> ViewRender:
    """Render one camera: RGB averaged over ``supersample``^2 sub-pixel rays, labels and depth
    from the single ray through each pixel centre (so they stay exact)."""
    origins, dirs = pixel_rays(c2w_gl, fx, fy, cx, cy, width, height)
    centre = raycaster.cast(origins, dirs)
    rgb = np.zeros((width * height, 3))
    if supersample <= 1:
        rgb = shade(scene, raycaster, centre, dirs, lighting)
    else:
        subs = (np.arange(supersample) + 0.5) / supersample
        for oy in subs:
            for ox in subs:
                o, d = pixel_rays(c2w_gl, fx, fy, cx, cy, width, height, (ox, oy))
                rgb += shade(scene, raycaster, raycaster.cast(o, d), d, lighting)
        rgb /= supersample * supersample
    depth = np.where(centre.hit, centre.t, 0.0).astype(np.float32)
    part = np.clip(centre.surface, 0, None)
    return ViewRender(
        rgb=rgb.reshape(height, width, 3),
        depth=depth.reshape(height, width),
        part=part.reshape(height, width),
        points=centre.points.reshape(height, width, 3),
        floor=(centre.surface == 0).reshape(height, width),
    )
