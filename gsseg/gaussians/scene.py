"""The Gaussian scene: raw 3DGS parameters plus optional identity features.

Parameters are stored raw, exactly like the INRIA PLY (log scales, logit opacities,
unnormalised wxyz quaternions, SH coefficients), so PLY I/O is lossless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

# Order and names match what gsplat's strategies expect in their parameter dict.
PARAM_KEYS = ("means", "scales", "quats", "opacities", "sh0", "shN")
FEATURE_KINDS = ("embedding", "logits")


@dataclass
class FeatureInfo:
    """What the per-Gaussian feature vectors mean.

    kind: "embedding" (compare by distance / cosine) or "logits" (one channel per identity).
    objective: name of the objective that trained them (e.g. "contrastive", "clustering").
    dim: D, the feature dimension.
    """

    kind: str
    objective: str
    dim: int

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if self.dim < 1:
            raise ValueError(f"feature dim must be >= 1, got {self.dim}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "objective": self.objective, "dim": int(self.dim)}

    @staticmethod
    def from_dict(d: dict) -> "FeatureInfo":
        return FeatureInfo(kind=str(d["kind"]), objective=str(d["objective"]), dim=int(d["dim"]))


def sh_degree_from_coeffs(n_coeffs: int) -> int:
    """SH degree d such that (d+1)^2 == n_coeffs (ValueError otherwise)."""
    d = math.isqrt(n_coeffs) - 1
    if n_coeffs < 1 or (d + 1) ** 2 != n_coeffs:
        raise ValueError(f"{n_coeffs} SH coefficients is not (d+1)^2 for any degree d")
    return d


@dataclass
class GaussianScene:
    """N Gaussians with raw parameters.

    Attributes:
        means: [N,3] positions.
        log_scales: [N,3] log of the per-axis standard deviations.
        quats: [N,4] wxyz rotations, unnormalised.
        logit_opacities: [N] logit of the opacity.
        sh0: [N,1,3] SH DC coefficients.
        shN: [N,K-1,3] higher-order SH coefficients, K = (sh_degree+1)^2 (K-1 may be 0).
        features: [N,D] identity features, or None.
        feature_info: what ``features`` mean (required when features is given).
    """

    means: Tensor
    log_scales: Tensor
    quats: Tensor
    logit_opacities: Tensor
    sh0: Tensor
    shN: Tensor
    features: Tensor | None = None
    feature_info: FeatureInfo | None = field(default=None)

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        shapes = {
            "means": (self.means, (n, 3)),
            "log_scales": (self.log_scales, (n, 3)),
            "quats": (self.quats, (n, 4)),
            "logit_opacities": (self.logit_opacities, (n,)),
            "sh0": (self.sh0, (n, 1, 3)),
        }
        for name, (t, shape) in shapes.items():
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
        if self.shN.dim() != 3 or self.shN.shape[0] != n or self.shN.shape[2] != 3:
            raise ValueError(f"shN must have shape [N,K-1,3], got {list(self.shN.shape)}")
        try:
            sh_degree_from_coeffs(self.shN.shape[1] + 1)
        except ValueError as e:
            raise ValueError(f"shN must have (d+1)^2-1 coefficients for an SH degree d: {e}") from None
        if self.features is not None:
            if self.features.dim() != 2 or self.features.shape[0] != n:
                raise ValueError(f"features must have shape [N,D], got {list(self.features.shape)}")
            if self.feature_info is None:
                raise ValueError("features given without feature_info")
            if self.feature_info.dim != self.features.shape[1]:
                raise ValueError(
                    f"feature_info.dim={self.feature_info.dim} but features have D={self.features.shape[1]}"
                )

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_coeffs(self.shN.shape[1] + 1)

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def scales(self) -> Tensor:
        """[N,3] activated scales."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> Tensor:
        """[N] activated opacities in (0,1)."""
        return torch.sigmoid(self.logit_opacities)

    @property
    def colors(self) -> Tensor:
        """[N,K,3] all SH coefficients."""
        return torch.cat([self.sh0, self.shN], dim=1)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def empty(sh_degree: int = 0) -> "GaussianScene":
        k = (sh_degree + 1) ** 2
        z = torch.zeros
        return GaussianScene(z(0, 3), z(0, 3), z(0, 4), z(0), z(0, 1, 3), z(0, k - 1, 3))

    def with_sh_degree(self, sh_degree: int) -> "GaussianScene":
        """Same scene with shN zero-padded or truncated to ``sh_degree``."""
        k_rest = (sh_degree + 1) ** 2 - 1
        cur = self.shN.shape[1]
        if k_rest <= cur:
            shN = self.shN[:, :k_rest].clone()
        else:
            pad = torch.zeros(len(self), k_rest - cur, 3, dtype=self.shN.dtype, device=self.shN.device)
            shN = torch.cat([self.shN, pad], dim=1)
        return GaussianScene(
            self.means,
            self.log_scales,
            self.quats,
            self.logit_opacities,
            self.sh0,
            shN,
            self.features,
            self.feature_info,
        )

    def to(self, device: torch.device | str) -> "GaussianScene":
        f = None if self.features is None else self.features.to(device)
        return GaussianScene(
            self.means.to(device),
            self.log_scales.to(device),
            self.quats.to(device),
            self.logit_opacities.to(device),
            self.sh0.to(device),
            self.shN.to(device),
            f,
            self.feature_info,
        )

    def detach(self) -> "GaussianScene":
        """A copy with detached, cloned tensors."""
        f = None if self.features is None else self.features.detach().clone()
        return GaussianScene(
            self.means.detach().clone(),
            self.log_scales.detach().clone(),
            self.quats.detach().clone(),
            self.logit_opacities.detach().clone(),
            self.sh0.detach().clone(),
            self.shN.detach().clone(),
            f,
            self.feature_info,
        )

    def subset(self, index: Tensor) -> "GaussianScene":
        """Gaussians selected by a bool mask [N] or an index tensor."""
        f = None if self.features is None else self.features[index]
        return GaussianScene(
            self.means[index],
            self.log_scales[index],
            self.quats[index],
            self.logit_opacities[index],
            self.sh0[index],
            self.shN[index],
            f,
            self.feature_info,
        )

    def with_features(self, features: Tensor | None, info: FeatureInfo | None) -> "GaussianScene":
        return GaussianScene(
            self.means, self.log_scales, self.quats, self.logit_opacities, self.sh0, self.shN, features, info
        )

    # ------------------------------------------------------------------ parameter dicts
    def to_param_dict(self, requires_grad: bool = True) -> torch.nn.ParameterDict:
        """ParameterDict with gsplat's keys (means, scales, quats, opacities, sh0, shN); raw values."""
        raw = {
            "means": self.means,
            "scales": self.log_scales,
            "quats": self.quats,
            "opacities": self.logit_opacities,
            "sh0": self.sh0,
            "shN": self.shN,
        }
        return torch.nn.ParameterDict(
            [(k, torch.nn.Parameter(raw[k].detach().clone().float(), requires_grad=requires_grad)) for k in PARAM_KEYS]
        )

    @staticmethod
    def from_param_dict(
        params: dict[str, Tensor], features: Tensor | None = None, feature_info: FeatureInfo | None = None
    ) -> "GaussianScene":
        """Detached scene from a dict with gsplat's keys (see ``to_param_dict``)."""
        d = {k: params[k].detach().clone() for k in PARAM_KEYS}
        return GaussianScene(
            d["means"], d["scales"], d["quats"], d["opacities"], d["sh0"], d["shN"], features, feature_info
        )

    def invalid_rows(self) -> Tensor:
        """[N] bool, True where any parameter (or feature) is NaN or Inf."""
        parts = [
            self.means,
            self.log_scales,
            self.quats,
            self.logit_opacities[:, None],
            self.sh0.flatten(1),
            self.shN.flatten(1),
        ]
        if self.features is not None:
            parts.append(self.features)
        return ~torch.isfinite(torch.cat(parts, dim=1)).all(dim=1)
