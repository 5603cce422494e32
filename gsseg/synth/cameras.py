"""Camera orbits around a synthetic scene (world +z is up; matrices are OpenGL camera-to-world)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class OrbitConfig:
    """Camera placement.

    Attributes:
        fov_x_deg: horizontal field of view.
        elev_min_deg, elev_max_deg: elevation range of the training rings.
        rings: maximum number of training rings.
        margin: fraction of the half image the scene's objects may span from the centre.
        jitter_deg: random azimuth jitter per view (seeded).
        partner_deg: rotation of each test view's partner about the vertical axis.
    """

    fov_x_deg: float = 60.0
    elev_min_deg: float = 20.0
    elev_max_deg: float = 60.0
    rings: int = 3
    margin: float = 0.9
    jitter_deg: float = 4.0
    partner_deg: float = 10.0


def focal_length(width: int, fov_x_deg: float) -> float:
    """Focal length in pixels for a horizontal field of view."""
    return width / 2.0 / np.tan(np.deg2rad(fov_x_deg) / 2.0)


def fit_distance(
    center: np.ndarray,
    c2w_rot: np.ndarray,
    vertices: np.ndarray,
    fx: float,
    fy: float,
    width: int,
    height: int,
    margin: float,
) -> float:
    """Smallest distance along the viewing axis at which every vertex [V,3] projects inside
    ``margin`` times the half image (closed form: moving the camera along its own axis only
    changes the camera-space z of every point by the same amount).

    ``c2w_rot`` is the [3,3] OpenGL camera-to-world rotation of a camera looking at ``center``.
    """
    local = (vertices - center) @ c2w_rot  # OpenGL camera axes: x right, y up, z backward
    x, y, z = np.abs(local[:, 0]), np.abs(local[:, 1]), -local[:, 2]
    need = np.maximum(x * fx / (margin * width / 2.0), y * fy / (margin * height / 2.0)) - z
    in_front = np.max(-z) + 1e-3 * float(np.max(np.linalg.norm(local, axis=1)))
    return float(max(need.max(), in_front))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """[4,4] OpenGL camera-to-world (x right, y up, z backward) at ``eye`` looking at ``target``."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    cam_up = np.cross(right, forward)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, -forward, eye
    return c2w


def spherical_eye(center: np.ndarray, distance: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """[3] point at ``distance`` from ``center`` at the given azimuth (about +z) and elevation."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    return center + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def rotate_about_vertical(c2w: np.ndarray, center: np.ndarray, degrees: float) -> np.ndarray:
    """[4,4] camera ``c2w`` rotated by ``degrees`` about the world vertical axis through ``center``."""
    a = np.deg2rad(degrees)
    rot = np.eye(4)
    rot[:3, :3] = [[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]]
    to_center, back = np.eye(4), np.eye(4)
    to_center[:3, 3], back[:3, 3] = -center, center
    return back @ rot @ to_center @ c2w


def train_angles(n: int, cfg: OrbitConfig, rng: np.random.Generator) -> np.ndarray:
    """[n,2] (azimuth, elevation) in degrees of training cameras on up to ``cfg.rings`` rings.

    Views are dealt round-robin over rings so every ring spans all azimuths and no two views
    share an azimuth.
    """
    rings = max(1, min(cfg.rings, n // 4))
    if rings == 1:
        elevations = np.array([(cfg.elev_min_deg + cfg.elev_max_deg) / 2])
    else:
        elevations = np.linspace(cfg.elev_min_deg, cfg.elev_max_deg, rings)
    out = np.zeros((n, 2))
    for i in range(n):
        out[i] = 360.0 * i / n + rng.uniform(-cfg.jitter_deg, cfg.jitter_deg), elevations[i % rings]
    return out


def test_angles(n: int, cfg: OrbitConfig, rng: np.random.Generator, n_train: int) -> np.ndarray:
    """[n,2] (azimuth, elevation) of test cameras: half-way in azimuth between training views,
    at in-between elevations."""
    out = np.zeros((n, 2))
    step = 360.0 / max(n_train, 1)
    lo, hi = cfg.elev_min_deg + 5.0, cfg.elev_max_deg - 5.0
    for j in range(n):
        k = int(np.floor((j + 0.5) * n_train / n)) if n_train else j
        azimuth = (k + 0.5) * step + rng.uniform(-cfg.jitter_deg, cfg.jitter_deg) / 2
        out[j] = azimuth, lo + (hi - lo) * ((j * 0.618034) % 1.0)
    return out


def framed_camera(
    center: np.ndarray,
    azimuth_deg: float,
    elevation_deg: float,
    vertices: np.ndarray,
    fx: float,
    fy: float,
    width: int,
    height: int,
    margin: float,
) -> np.ndarray:
    """[4,4] OpenGL c2w looking at ``center`` from the given direction, as close as framing allows."""
    direction = spherical_eye(np.zeros(3), 1.0, azimuth_deg, elevation_deg)
    rot = look_at(direction, np.zeros(3))[:3, :3]
    d = fit_distance(center, rot, vertices, fx, fy, width, height, margin)
    return look_at(center + d * direction, center)
