"""View-pair geometry of the VC protocol: the official reprojection and the visibility masks.

Pixel (row r, col c) has its centre at (c + 0.5, r + 0.5); its 3D point in OpenCV camera axes is
depth(r, c) * ((c + 0.5 - cx)/fx, (r + 0.5 - cy)/fy, 1) (z-depth). Cameras are given as
intrinsics ``K [3,3]`` and world-to-camera ``viewmat [4,4]`` in OpenCV axes (gsseg's
:class:`Cameras`); :func:`viewmat_from_opengl_c2w` converts a Blender / NeRF pose.

- reprojection tau (UFF ``get_trasnform``): col = trunc(fx x'/z' + cx - 0.5), row likewise,
  clipped to the image: one pixel lower than the containing pixel whenever the projected
  coordinate's fractional part is below 0.5, as the official code does;
- visibility (the official masks are precomputed and not released; this is the parity pack's
  rule): the pixel containing the projection lies inside the other view, in front of it, and
  its depth agrees within 2 % of the projected depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_DEPTH_TOLERANCE = 0.02


def viewmat_from_opengl_c2w(c2w: np.ndarray) -> np.ndarray:
    """World-to-camera [4,4] float64 in OpenCV axes from an OpenGL camera-to-world ``c2w [4,4]``
    (the second and third rotation columns negated, then inverted)."""
    cv = np.array(c2w, dtype=np.float64)
    cv[:3, 1:3] *= -1.0
    return np.linalg.inv(cv)


def _transfer(
    depth: np.ndarray, K: np.ndarray, viewmat: np.ndarray, K_other: np.ndarray, viewmat_other: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, z) [P] of every pixel centre of a view lifted with its z-depth [H,W] and projected into
    another camera (pixel coordinates, centres at +0.5; z along the other camera's axis).

    The view-to-other transform is affine in the lifted point z * (a(col), b(row), 1), so each
    coordinate is z * (r0 a + r1 b + r2) + t with a separable bracket: a few passes over the image.
    """
    h, w = depth.shape
    rel = viewmat_other @ np.linalg.inv(viewmat)
    a = (np.arange(w) + 0.5 - K[0, 2]) / K[0, 0]
    b = (np.arange(h) + 0.5 - K[1, 2]) / K[1, 1]
    z = depth.astype(np.float64)
    x2, y2, z2 = ((z * (r[0] * a[None, :] + r[1] * b[:, None] + r[2]) + r[3]).ravel() for r in rel[:3])
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K_other[0, 0] * x2 / z2 + K_other[0, 2]
        v = K_other[1, 1] * y2 / z2 + K_other[1, 2]
    return u, v, z2


def _official_index(u: np.ndarray, v: np.ndarray, shape) -> np.ndarray:
    """[P,2] (row, col) = trunc(coordinate - 0.5), clipped to the image (the official transform)."""
    h, w = shape
    col = np.trunc(np.clip(np.nan_to_num(u - 0.5), 0, w - 1)).astype(np.int64)
    row = np.trunc(np.clip(np.nan_to_num(v - 0.5), 0, h - 1)).astype(np.int64)
    return np.stack([row, col], axis=-1)


def _visible(
    depth: np.ndarray, u: np.ndarray, v: np.ndarray, z: np.ndarray, depth_other: np.ndarray, rel_tol: float
) -> np.ndarray:
    """[P] bool: the pack's visibility rule from the projections (u, v, z) into the other view."""
    h, w = depth_other.shape
    ok = (np.asarray(depth).ravel() > 0) & (z > 1e-9)
    with np.errstate(invalid="ignore"):
        col, row = np.floor(np.where(ok, u, -1.0)), np.floor(np.where(ok, v, -1.0))
    ok &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
    target = np.where(ok, row * w + col, 0).astype(np.int64)
    d = np.asarray(depth_other, dtype=np.float64).ravel()[target]
    return ok & (d > 0) & (np.abs(d - z) <= rel_tol * np.abs(z))


def reprojection(
    depth: np.ndarray, K: np.ndarray, viewmat: np.ndarray, K_partner: np.ndarray, viewmat_partner: np.ndarray, shape
) -> np.ndarray:
    """The official VC pixel transform: [H,W,2] int64 (row, col) in the partner of every view pixel.

    depth: [H,W] z-depth of the view; shape: (H', W') of the partner. Pixels without depth get
    whatever the formula gives (they are never visible).
    """
    d, K, vm, Kp, vmp = (np.asarray(x, dtype=np.float64) for x in (depth, K, viewmat, K_partner, viewmat_partner))
    u, v, _ = _transfer(d, K, vm, Kp, vmp)
    return _official_index(u, v, shape).reshape(*d.shape, 2)


def visibility(
    depth: np.ndarray,
    K: np.ndarray,
    viewmat: np.ndarray,
    depth_other: np.ndarray,
    K_other: np.ndarray,
    viewmat_other: np.ndarray,
    rel_tol: float = DEFAULT_DEPTH_TOLERANCE,
) -> np.ndarray:
    """[H,W] bool: the view's pixels visible in the other view (the parity pack's rule)."""
    d, K, vm, Ko, vmo = (np.asarray(x, dtype=np.float64) for x in (depth, K, viewmat, K_other, viewmat_other))
    u, v, z = _transfer(d, K, vm, Ko, vmo)
    return _visible(d, u, v, z, np.asarray(depth_other), rel_tol).reshape(d.shape)


@dataclass
class PairGeometry:
    """A view and its partner: ``tau [P]`` flat partner pixel of every view pixel (official
    reprojection), ``visible [P]`` view pixels seen by the partner (V), ``visible_partner [P']``
    partner pixels seen by the view (V')."""

    tau: np.ndarray
    visible: np.ndarray
    visible_partner: np.ndarray

    @classmethod
    def from_maps(cls, tau_rc: np.ndarray, visible: np.ndarray, visible_partner: np.ndarray) -> "PairGeometry":
        """From tau [H,W,2] (row, col), V [H,W] and V' [H',W'] bool."""
        width = np.shape(visible_partner)[1]
        tau = np.asarray(tau_rc, dtype=np.int64)
        return cls(
            (tau[..., 0] * width + tau[..., 1]).ravel(),
            np.asarray(visible, dtype=bool).ravel(),
            np.asarray(visible_partner, dtype=bool).ravel(),
        )


def pair_geometry(
    depth: np.ndarray,
    K: np.ndarray,
    viewmat: np.ndarray,
    depth_partner: np.ndarray,
    K_partner: np.ndarray,
    viewmat_partner: np.ndarray,
    rel_tol: float = DEFAULT_DEPTH_TOLERANCE,
) -> PairGeometry:
    """tau, V and V' of a view pair from both views' z-depth [H,W] and cameras (each view projected once)."""
    f64 = [np.asarray(a, dtype=np.float64) for a in (depth, K, viewmat, depth_partner, K_partner, viewmat_partner)]
    d, K, vm, dp, Kp, vmp = f64
    u, v, z = _transfer(d, K, vm, Kp, vmp)
    tau = _official_index(u, v, dp.shape)
    vis = _visible(d, u, v, z, dp, rel_tol)
    up, vp_, zp = _transfer(dp, Kp, vmp, K, vm)
    vis_p = _visible(dp, up, vp_, zp, d, rel_tol)
    return PairGeometry(tau[:, 0] * dp.shape[1] + tau[:, 1], vis, vis_p)
