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
  its depth agrees within 2 % of the projected depth (:func:`gsseg.eval.metrics.depth_warp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsseg.eval.metrics.consistency import DEFAULT_DEPTH_TOLERANCE, depth_warp


def viewmat_from_opengl_c2w(c2w: np.ndarray) -> np.ndarray:
    """World-to-camera [4,4] float64 in OpenCV axes from an OpenGL camera-to-world ``c2w [4,4]``
    (the second and third rotation columns negated, then inverted)."""
    cv = np.array(c2w, dtype=np.float64)
    cv[:3, 1:3] *= -1.0
    return np.linalg.inv(cv)


def _lift(depth: np.ndarray, K: np.ndarray, viewmat: np.ndarray) -> np.ndarray:
    """World points [H*W,3] float64 of every pixel centre of a view (depth 0 gives the camera centre)."""
    h, w = depth.shape
    row, col = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float64)
    cam = np.stack([(col + 0.5 - K[0, 2]) / K[0, 0] * z, (row + 0.5 - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    c2w = np.linalg.inv(viewmat)
    return cam.reshape(-1, 3) @ c2w[:3, :3].T + c2w[:3, 3]


def reprojection(
    depth: np.ndarray, K: np.ndarray, viewmat: np.ndarray, K_partner: np.ndarray, viewmat_partner: np.ndarray, shape
) -> np.ndarray:
    """The official VC pixel transform: [H,W,2] int64 (row, col) in the partner of every view pixel.

    depth: [H,W] z-depth of the view; shape: (H', W') of the partner. Pixels without depth get
    whatever the formula gives (they are never visible).
    """
    depth = np.asarray(depth, dtype=np.float64)
    K, Kp = np.asarray(K, dtype=np.float64), np.asarray(K_partner, dtype=np.float64)
    world = _lift(depth, K, np.asarray(viewmat, dtype=np.float64))
    vp = np.asarray(viewmat_partner, dtype=np.float64)
    cam = world @ vp[:3, :3].T + vp[:3, 3]
    hp, wp = shape
    with np.errstate(divide="ignore", invalid="ignore"):
        u = Kp[0, 0] * cam[:, 0] / cam[:, 2] + Kp[0, 2] - 0.5
        v = Kp[1, 1] * cam[:, 1] / cam[:, 2] + Kp[1, 2] - 0.5
    col = np.trunc(np.clip(np.nan_to_num(u), 0, wp - 1)).astype(np.int64)
    row = np.trunc(np.clip(np.nan_to_num(v), 0, hp - 1)).astype(np.int64)
    return np.stack([row, col], axis=-1).reshape(*depth.shape, 2)


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
    return depth_warp(depth, K, viewmat, depth_other, K_other, viewmat_other, rel_tol) >= 0


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
    """tau, V and V' of a view pair from both views' z-depth [H,W] and cameras."""
    tau = reprojection(depth, K, viewmat, K_partner, viewmat_partner, np.shape(depth_partner))
    v = visibility(depth, K, viewmat, depth_partner, K_partner, viewmat_partner, rel_tol)
    vp = visibility(depth_partner, K_partner, viewmat_partner, depth, K, viewmat, rel_tol)
    return PairGeometry.from_maps(tau, v, vp)
