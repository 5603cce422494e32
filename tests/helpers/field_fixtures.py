"""A tiny NeRF-field configuration shared by the field tests."""

from __future__ import annotations

from gsseg.config.field import FieldConfig


def tiny_cfg(**kw) -> FieldConfig:
    """A field small enough to train in seconds on CPU (2 hash levels, 16-wide MLP, 20 steps); ``kw`` overrides."""
    base = dict(
        resolutions=(8, 16),
        feature_resolutions=(8,),
        channels=2,
        hidden=16,
        geo_dim=4,
        samples_inner=24,
        samples_outer=4,
        grid_resolution=16,
        grid_warmup=10,
        grid_every=5,
        rays=256,
        chunk=2048,
        iters=20,
        checkpoint_every=5,
        device="cpu",
    )
    base.update(kw)
    return FieldConfig(**base)
