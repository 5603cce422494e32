"""The scene as browser splats: viser's 32-byte-per-Gaussian buffer and fast recolouring.

viser draws DC colour only (no view-dependent SH). The buffer row is
``[centre f32×3, reserved, upper-triangular covariance f16×6, RGBA u8×4]``; centres and
covariances never change after the first send, so a selection update only rewrites the
RGBA column of a copy of the base buffer and assigns it to the handle (one message).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsseg.gaussians.init import SH_C0
from gsseg.gaussians.scene import GaussianScene
from gsseg.render.projection import quat_to_rotmat

_TRIU = np.array([0, 1, 2, 4, 5, 8])


def gaussian_frames(scene: GaussianScene, power: float) -> np.ndarray:
    """[N,3,3] float64 R·diag(s^power)·Rᵀ: covariances for power 2, precisions for power -2."""
    rot = quat_to_rotmat(scene.quats.detach().double().cpu()).numpy()
    s = np.exp(power * scene.log_scales.detach().double().cpu().numpy())
    return np.einsum("nij,nj,nkj->nik", rot, s, rot)


def covariances_from_scene(scene: GaussianScene) -> np.ndarray:
    """[N,3,3] float32 covariances R·diag(s²)·Rᵀ."""
    return gaussian_frames(scene, 2.0).astype(np.float32)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0,1] (any shape) -> uint8 0..255, rounded."""
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass
class SplatData:
    """What the browser draws, for N Gaussians.

    centers: [N,3] float32; covariances: [N,3,3] float32; rgbs: [N,3] float32 in [0,1] (DC colour);
    opacities: [N] float32 in [0,1].
    """

    centers: np.ndarray
    covariances: np.ndarray
    rgbs: np.ndarray
    opacities: np.ndarray

    @staticmethod
    def colors_of(scene: GaussianScene) -> tuple[np.ndarray, np.ndarray]:
        """(rgbs [N,3] DC colour in [0,1], opacities [N]) float32."""
        rgb = np.clip(scene.sh0.detach().float().cpu().numpy()[:, 0, :] * SH_C0 + 0.5, 0.0, 1.0)
        return rgb.astype(np.float32), scene.opacities.detach().float().cpu().numpy().astype(np.float32)

    @staticmethod
    def from_scene(scene: GaussianScene) -> "SplatData":
        rgbs, opacities = SplatData.colors_of(scene)
        return SplatData(
            centers=np.ascontiguousarray(scene.means.detach().float().cpu().numpy()),
            covariances=covariances_from_scene(scene),
            rgbs=rgbs,
            opacities=opacities,
        )

    def __len__(self) -> int:
        return len(self.centers)

    def base_buffer(self) -> np.ndarray:
        """[N,8] uint32 viser buffer with the scene's own colours and opacities."""
        n = len(self)
        buf = np.zeros((n, 8), np.uint32)
        buf[:, 0:3] = np.ascontiguousarray(self.centers, np.float32).view(np.uint32)
        tri = np.ascontiguousarray(self.covariances.reshape(n, 9)[:, _TRIU], np.float16)
        buf[:, 4:7] = tri.view(np.uint32)
        buf[:, 7] = pack_rgba(self.rgbs, self.opacities)
        return buf


FLOAT16_MAX = float(np.finfo(np.float16).max)  # the buffer's covariances are half floats


def drawable(scene: GaussianScene) -> np.ndarray:
    """[N] bool: Gaussians the browser can draw: every parameter (and feature) finite, a
    non-zero quaternion, and a centre, covariance, colour and opacity that stay finite in the
    splat buffer (float32 centres, float16 covariances: a standard deviation above ~256 scene
    units overflows). Anything else would put NaN/Inf on the page, where three.js's bounding
    sphere turns NaN and nothing is drawn."""
    ok = ~scene.invalid_rows().cpu().numpy()
    ok &= scene.quats.detach().double().cpu().norm(dim=-1).numpy() > 0
    with np.errstate(over="ignore", invalid="ignore"):
        centers = scene.means.detach().float().cpu().numpy()
        ok &= np.isfinite(centers).all(axis=1)
        cov = gaussian_frames(scene, 2.0).reshape(-1, 9)[:, _TRIU]
        ok &= np.isfinite(cov).all(axis=1) & (np.abs(cov) <= FLOAT16_MAX).all(axis=1)
        rgbs, opacities = SplatData.colors_of(scene)
    ok &= np.isfinite(rgbs).all(axis=1) & np.isfinite(opacities)
    return ok


DEFAULT_MAX_DISPLAY = 500_000  # a browser sorts and draws this many splats interactively on a laptop GPU


def display_indices(scene: GaussianScene, max_display: int) -> np.ndarray | None:
    """[M] sorted indices of the Gaussians the browser draws when the scene has more than
    ``max_display`` (0 = no limit): the M that cover the most of an image, by opacity × the area
    of their largest cross-section. None when every Gaussian is drawn. Selection, picking and
    export always use all Gaussians."""
    n = len(scene)
    if max_display <= 0 or n <= max_display:
        return None
    log_s = np.sort(scene.log_scales.detach().float().cpu().numpy(), axis=1)
    importance = scene.opacities.detach().float().cpu().numpy() * np.exp(log_s[:, 1] + log_s[:, 2])
    keep = np.argpartition(-importance, max_display - 1)[:max_display]
    return np.sort(keep).astype(np.int64)


def pack_rgba(rgbs: np.ndarray, opacities: np.ndarray) -> np.ndarray:
    """rgbs [N,3] and opacities [N] in [0,1] -> [N] uint32 holding the RGBA bytes in memory order."""
    rgba = np.empty((len(rgbs), 4), np.uint8)
    rgba[:, :3] = to_uint8(rgbs)
    rgba[:, 3] = to_uint8(opacities)
    return rgba.view(np.uint32).reshape(-1)


def with_rgba(base: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """A copy of ``base [N,8]`` with its colour column replaced by ``rgba [N]`` uint32."""
    out = base.copy()
    out[:, 7] = rgba
    return out
