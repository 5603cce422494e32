"""Ray picking: the first Gaussian along a click ray whose blending weight ``T·α`` is substantial.

Each Gaussian meets the ray ``o + t·d`` with its peak 3D density at
``t* = dᵀΣ⁻¹(μ−o) / dᵀΣ⁻¹d``, where the squared Mahalanobis distance is
``q = (μ−o)ᵀΣ⁻¹(μ−o) − (dᵀΣ⁻¹(μ−o))² / dᵀΣ⁻¹d``. Its alpha along the ray is
``min(0.999, opacity·exp(−q/2))`` (the rasteriser's constants), and sorting the hit
Gaussians by ``t*`` and compositing front to back gives each one's weight
``w_i = T_i·α_i`` — the same weights a rendered pixel would use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gsseg.gaussians.scene import GaussianScene
from gsseg.viewer.splats import gaussian_frames

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_STOP = 1e-4


@dataclass(frozen=True)
class PickResult:
    """The picked Gaussian: its index, depth ``t`` along the unit ray, weight ``T·α`` and the
    3D point ``origin + t·direction``."""

    index: int
    t: float
    weight: float
    point: tuple[float, float, float]


def precisions_from_scene(scene: GaussianScene) -> np.ndarray:
    """[N,3,3] float32 inverse covariances R·diag(1/s²)·Rᵀ of the scene's Gaussians."""
    return gaussian_frames(scene, -2.0).astype(np.float32)


class RayPicker:
    """Picks Gaussians along rays; the per-Gaussian precision matrices are computed once.

    means: [N,3]; precisions: [N,3,3] inverse covariances; opacities: [N] activated;
    max_scales: [N] largest standard deviation of each Gaussian (derived from the precisions
    when not given), used to skip Gaussians too far from the ray to reach alpha 1/255.
    """

    def __init__(
        self, means: np.ndarray, precisions: np.ndarray, opacities: np.ndarray, max_scales: np.ndarray | None = None
    ) -> None:
        self.means = np.ascontiguousarray(means, np.float32)
        self.precisions = np.ascontiguousarray(precisions, np.float32)
        self.opacities = np.ascontiguousarray(opacities, np.float32).reshape(-1)
        n = len(self.means)
        if self.precisions.shape != (n, 3, 3) or self.opacities.shape != (n,):
            raise ValueError(
                f"means [N,3], precisions [N,3,3] and opacities [N] must agree; got "
                f"{self.means.shape}, {self.precisions.shape}, {self.opacities.shape}"
            )
        if max_scales is None:
            max_scales = 1.0 / np.sqrt(np.maximum(np.linalg.eigvalsh(self.precisions.astype(np.float64))[:, 0], 1e-30))
        self.max_scales = np.asarray(max_scales, np.float32).reshape(-1)
        # alpha >= 1/255 needs q <= 2·ln(255·opacity), and q >= (distance to the ray / max scale)²
        reach2 = 2.0 * np.log(np.maximum(255.0 * self.opacities, 1.0))
        self.reach2 = (reach2 * self.max_scales.astype(np.float64) ** 2).astype(np.float32)

    @staticmethod
    def from_scene(scene: GaussianScene) -> "RayPicker":
        return RayPicker(
            scene.means.detach().cpu().numpy(),
            precisions_from_scene(scene),
            scene.opacities.detach().cpu().numpy(),
            scene.scales.detach().amax(dim=1).cpu().numpy(),
        )

    def __len__(self) -> int:
        return len(self.means)

    def ray_weights(
        self, origin, direction, visible: np.ndarray | None = None, near: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Front-to-back compositing along one ray.

        origin, direction: [3] (direction need not be unit); visible: [N] bool or None.
        Returns (ids [K] int64 sorted by depth, t [K], weights [K] = T·α) for the Gaussians whose
        alpha along the ray is at least 1/255, stopping where transmittance falls below 1e-4.
        """
        o = np.asarray(origin, np.float32).reshape(3)
        d = np.asarray(direction, np.float32).reshape(3)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        diff = self.means - o  # [N,3]
        perp = diff - (diff @ d)[:, None] * d  # offset from the ray (no cancellation)
        near_ray = np.einsum("ni,ni->n", perp, perp) <= self.reach2
        if visible is not None:
            near_ray &= visible
        cand = np.flatnonzero(near_ray)
        d64 = d.astype(np.float64)
        prec, dc = self.precisions[cand].astype(np.float64), diff[cand].astype(np.float64)
        pd = prec @ d64  # [K,3]  Σ⁻¹d (Σ⁻¹ symmetric)
        dpd = np.maximum(pd @ d64, 1e-300)  # [K]
        tc = np.einsum("ni,ni->n", pd, dc) / dpd  # [K]  dᵀΣ⁻¹(μ−o) / dᵀΣ⁻¹d
        r = dc - tc[:, None] * d64  # μ minus its peak point on the ray
        q = np.einsum("ni,nij,nj->n", r, prec, r)
        alpha = np.minimum(ALPHA_MAX, self.opacities[cand] * np.exp(-0.5 * q))
        keep = (alpha >= ALPHA_MIN) & (tc > near)
        cand, alpha, tc = cand[keep], alpha[keep], tc[keep]
        if len(cand) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
        order = np.argsort(tc, kind="stable")
        cand, alpha, tc = cand[order], alpha[order], tc[order]
        trans = np.concatenate([[1.0], np.cumprod(1.0 - alpha.astype(np.float64))[:-1]])
        live = trans > T_STOP
        weights = (trans * alpha)[live].astype(np.float32)
        return cand[live].astype(np.int64), tc[live].astype(np.float32), weights

    def pick(
        self, origin, direction, visible: np.ndarray | None = None, min_weight: float = 0.1, near: float = 0.0
    ) -> PickResult | None:
        """The first Gaussian along the ray with weight ``T·α >= min_weight``; if none reaches
        it, the one of largest weight; None when the ray hits nothing."""
        return self.choose(origin, direction, *self.ray_weights(origin, direction, visible, near), min_weight)

    def surface(self, pick: PickResult, ids: np.ndarray, t: np.ndarray, sigmas: float = 3.0) -> np.ndarray:
        """[K] bool over a ray's Gaussians (``ray_weights`` output): those on the picked surface,
        within ``sigmas`` of the picked Gaussian's largest standard deviation in depth."""
        return np.abs(t - pick.t) <= sigmas * float(self.max_scales[pick.index])

    @staticmethod
    def choose(
        origin, direction, ids: np.ndarray, t: np.ndarray, weights: np.ndarray, min_weight: float = 0.1
    ) -> PickResult | None:
        """The pick among a ray's composited Gaussians (``ray_weights`` output), as in ``pick``."""
        if len(ids) == 0:
            return None
        strong = np.flatnonzero(weights >= min_weight)
        k = int(strong[0]) if len(strong) else int(np.argmax(weights))
        o = np.asarray(origin, np.float64).reshape(3)
        d = np.asarray(direction, np.float64).reshape(3)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        p = o + float(t[k]) * d
        return PickResult(int(ids[k]), float(t[k]), float(weights[k]), (float(p[0]), float(p[1]), float(p[2])))
