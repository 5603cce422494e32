"""The radiance field: scene normalisation + contraction, tri-plane density / colour, and a separate
identity-feature head (its own tri-plane, so the features stage trains it with geometry frozen)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gsseg.config.field import FieldConfig
from gsseg.field.encoding import TriPlane

DENSITY_BIAS = -3.0  # sigma starts near exp(-3): nearly transparent, so cells no ray trains stay empty


class _TruncExp(torch.autograd.Function):
    """exp(x) whose gradient uses exp(min(x, 15)) (instant-ngp's density activation)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: Tensor) -> Tensor:
    return _TruncExp.apply(x)


def contract(x: Tensor) -> Tensor:
    """mip-NeRF 360 contraction of normalised points [N,3]: identity inside the unit ball, then
    (2 - 1/|x|) x/|x|, so all space maps into the ball of radius 2."""
    n = x.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    return torch.where(n <= 1.0, x, (2.0 - 1.0 / n) * (x / n))


def scene_normalisation(cameras) -> tuple[Tensor, float]:
    """(centre [3], radius) of the normalised scene from the training cameras: the point closest to
    all optical axes (least squares; the cameras' mean centre when the axes are near parallel) and
    0.6 x the median camera distance from it, so the content inside the camera ring is in the unit ball."""
    c2w = torch.linalg.inv(cameras.viewmats.double())
    centers, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    forward = forward / forward.norm(dim=1, keepdim=True)
    proj = torch.eye(3, dtype=torch.float64)[None] - forward[:, :, None] * forward[:, None, :]  # [C,3,3]
    a, b = proj.sum(0), (proj @ centers[:, :, None]).sum(0)[:, 0]
    if len(centers) >= 2 and torch.linalg.cond(a) < 1e6:
        center = torch.linalg.solve(a, b)
    else:
        center = centers.mean(0) + forward.mean(0)
    dist = (centers - center).norm(dim=1)
    radius = float(0.6 * dist.median()) if float(dist.median()) > 1e-9 else 1.0
    return center.float(), radius


class RadianceField(nn.Module):
    """Density, colour and identity features at world points.

    Buffers ``center`` [3] and ``radius`` [] map world points into the normalised scene;
    ``feature_dim`` D = 0 builds no feature head (the RGB stage); :meth:`add_feature_head` adds one.
    """

    center: Tensor  # buffers (registered in __init__)
    radius: Tensor

    def __init__(self, cfg: FieldConfig, center: Tensor, radius: float, feature_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32).reshape(3).clone())
        self.register_buffer("radius", torch.tensor(float(radius), dtype=torch.float32))
        self.encoding = TriPlane(cfg.resolutions, cfg.channels)
        self.density_mlp = nn.Sequential(
            nn.Linear(self.encoding.out_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1 + cfg.geo_dim)
        )
        self.color_mlp = nn.Sequential(
            nn.Linear(cfg.geo_dim + 3, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, 3),
        )  # fmt: skip
        self.feature_dim = 0
        self.feature_encoding: TriPlane | None = None
        self.feature_mlp: nn.Sequential | None = None
        if feature_dim > 0:
            self.add_feature_head(feature_dim)

    def add_feature_head(self, dim: int) -> None:
        """A fresh identity-feature head of dimension ``dim`` (its own tri-plane + MLP; seeded by the
        caller through torch's generator)."""
        cfg = self.cfg
        enc = TriPlane(cfg.feature_resolutions, cfg.channels)
        mlp = nn.Sequential(nn.Linear(enc.out_dim, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, dim))
        self.feature_encoding, self.feature_mlp = enc.to(self.center.device), mlp.to(self.center.device)
        self.feature_dim = int(dim)

    def feature_parameters(self) -> list[nn.Parameter]:
        """Parameters of the identity-feature head (ValueError when the field has none)."""
        if self.feature_encoding is None or self.feature_mlp is None:
            raise ValueError("the field has no feature head (add_feature_head first)")
        return [*self.feature_encoding.parameters(), *self.feature_mlp.parameters()]

    def rgb_parameters(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups of the RGB stage: ``planes`` (tri-plane) and ``mlp``."""
        return {
            "planes": list(self.encoding.parameters()),
            "mlp": [*self.density_mlp.parameters(), *self.color_mlp.parameters()],
        }

    def normalise(self, x: Tensor) -> Tensor:
        """World points [N,3] -> contracted coordinates in [-1,1]^3 (contracted ball / 2)."""
        return contract((x - self.center) / self.radius) / 2.0

    def density(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [N,3] world -> (sigma [N] per normalised unit length, geometry features [N,geo_dim])."""
        h = self.density_mlp(self.encoding(self.normalise(x)))
        return trunc_exp(h[:, 0] + DENSITY_BIAS), h[:, 1:]

    def density_contracted(self, y: Tensor) -> Tensor:
        """sigma [N] at contracted/2 points y [N,3] in [-1,1]^3 (the occupancy grid's probe)."""
        return trunc_exp(self.density_mlp(self.encoding(y))[:, 0] + DENSITY_BIAS)

    def color(self, geo: Tensor, dirs: Tensor) -> Tensor:
        """geo: [N,geo_dim], dirs: [N,3] unit view directions -> rgb [N,3] in (0,1)."""
        return torch.sigmoid(self.color_mlp(torch.cat([geo, dirs], dim=1)))

    def features(self, x: Tensor) -> Tensor:
        """x: [N,3] world -> identity features [N,D] (raw; the objective activates them)."""
        if self.feature_encoding is None or self.feature_mlp is None:
            raise RuntimeError("the field has no feature head")
        return self.feature_mlp(self.feature_encoding(self.normalise(x)))


def unit(v: Tensor) -> Tensor:
    return F.normalize(v, dim=-1)
