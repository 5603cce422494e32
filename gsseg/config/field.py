"""Settings of the NeRF backend (recorded in ``RUN/config.json`` under ``field``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gsseg.utils.config_fields import APPLY, resume

REPRESENTATIONS = ("gaussians", "nerf")


@dataclass
class FieldConfig:
    """Architecture, ray marching and RGB-stage schedule of a radiance field.

    ``resolutions``: tri-plane levels (texels per side over the contracted cube [-2,2]^3);
    ``samples``: candidate samples per ray before the occupancy grid culls them (``samples_inner``
    of them linear inside the unit ball of the normalised scene, the rest linear in disparity
    out to ``far``); ``rays``: rays per training step.
    """

    resolutions: tuple[int, ...] = (32, 64, 128, 256)
    """Tri-plane levels: texels per side over the contracted cube [-2,2]^3."""
    channels: int = 4
    """Channels per tri-plane texel."""
    hidden: int = 64
    """Width of the MLP hidden layers."""
    geo_dim: int = 15
    """Geometry features passed from the density head to the colour head."""
    feature_resolutions: tuple[int, ...] = (32, 64, 128)
    """Tri-plane levels of the identity-feature head."""
    samples_inner: int = 64
    """Candidate samples per ray, linear inside the unit ball of the normalised scene."""
    samples_outer: int = 16
    """Candidate samples per ray, linear in disparity from the unit ball out to far."""
    far: float = 1000.0
    """Far bound, in units of the normalisation radius."""
    grid_resolution: int = 64
    """Cells per side of the occupancy grid."""
    grid_every: int = 16
    """Occupancy grid refresh period (steps)."""
    grid_warmup: int = 64
    """Every cell counts as occupied until this step."""
    grid_alpha: float = 0.01
    """A cell is occupied when a sample there can reach this opacity."""
    iters: int = field(default=1500, metadata=resume(APPLY))
    """RGB-stage steps of the radiance field."""
    rays: int = 1024
    """Rays per training step."""
    lr: float = 1e-2
    """Learning rate of the tri-planes."""
    lr_mlp: float = 2e-3
    """Learning rate of the MLPs."""
    lr_final_factor: float = 0.1
    """The learning rates decay to this fraction at the last step."""
    lr_background: float = 1e-2
    """Learning rate of the background colour."""
    chunk: int = 4096
    """Rays per chunk when rendering whole images."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk."""
    time_limit_s: float = 0.0
    """Stop the RGB stage of the field after this many seconds (0 = no limit)."""
    seed: int = 0
    """Random seed."""
    device: str = "auto"
    """Torch device."""
    threads: int = 1
    """CPU intra-op threads while the stage runs (0 = torch's default; 1 is faster on a busy CPU)."""

    def validate(self) -> None:
        if self.iters < 0:
            raise ValueError("field iters must be >= 0")
        if not self.resolutions or min(self.resolutions) < 2 or self.channels < 1 or self.hidden < 1:
            raise ValueError("field resolutions must be >= 2 and channels, hidden >= 1")
        if self.samples_inner < 1 or self.samples_outer < 0 or self.rays < 1 or self.chunk < 1:
            raise ValueError("field samples_inner, rays and chunk must be >= 1 (samples_outer >= 0)")
        if self.grid_resolution < 2 or self.grid_every < 1 or not 0 < self.grid_alpha < 1:
            raise ValueError("field grid_resolution must be >= 2, grid_every >= 1, grid_alpha in (0,1)")
        if self.far <= 2.0:
            raise ValueError("field far must be > 2 (units of the normalisation radius)")
        if self.threads < 0:
            raise ValueError("field threads must be >= 0")
        if self.checkpoint_every < 1 or self.lr <= 0 or self.lr_mlp <= 0:
            raise ValueError("field checkpoint_every must be >= 1 and learning rates > 0")


def field_config_from_dict(d: dict) -> FieldConfig:
    """FieldConfig from its JSON form (lists back to tuples); ValueError naming unknown keys."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(FieldConfig)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown field settings: {', '.join(sorted(unknown))}")
    args: dict[str, Any] = {
        k: (tuple(int(x) for x in v) if k in ("resolutions", "feature_resolutions") else v) for k, v in d.items()
    }
    return FieldConfig(**args)
