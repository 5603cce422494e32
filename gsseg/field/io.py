"""``RUN/field.pt``: a trained radiance field (settings, normalisation, weights, occupancy grid,
background colour), written atomically; read back with a one-line error for a bad file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from gsseg.config.field import field_config_from_dict
from gsseg.errors import file_error
from gsseg.field.model import RadianceField
from gsseg.field.occupancy import OccupancyGrid

FORMAT = "gsseg-field"


def field_path(run_root: str | Path) -> Path:
    return Path(run_root) / "field.pt"


def field_payload(field: RadianceField, grid: OccupancyGrid, background: tuple[float, float, float]) -> dict:
    cfg = dataclasses.asdict(field.cfg)
    return {
        "format": FORMAT,
        "version": 1,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "center": field.center.detach().cpu(),
        "radius": float(field.radius),
        "feature_dim": field.feature_dim,
        "state": {k: v.detach().cpu() for k, v in field.state_dict().items()},
        "grid": grid.state_dict(),
        "background": [float(v) for v in background],
    }


def field_from_payload(d: dict, device: torch.device | str = "cpu") -> tuple[RadianceField, OccupancyGrid, tuple]:
    """(field, occupancy grid, background) from :func:`field_payload` data (KeyError/ValueError if malformed)."""
    if d.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    cfg = field_config_from_dict(d["config"])
    field = RadianceField(cfg, d["center"], float(d["radius"]), feature_dim=int(d["feature_dim"]))
    field.load_state_dict(d["state"])
    field.to(device)
    grid = OccupancyGrid(cfg.grid_resolution, cfg.grid_alpha, device=device)
    grid.load_state_dict(d["grid"])
    bg = tuple(float(v) for v in d["background"])
    return field, grid, bg


def save_field(path: str | Path, field: RadianceField, grid: OccupancyGrid, background) -> Path:
    from gsseg.run.checkpoint import save_checkpoint

    return save_checkpoint(path, field_payload(field, grid, background))


def load_field(path: str | Path, device: torch.device | str = "cpu") -> tuple[RadianceField, OccupancyGrid, tuple]:
    """Read ``RUN/field.pt``; GssegError naming the file when it is missing or not a field."""
    from gsseg.run.checkpoint import load_checkpoint

    if not Path(path).is_file():
        raise file_error(path, "not found: train the field first (`gsseg train DATA --out RUN --representation nerf`)")
    d = load_checkpoint(path, map_location="cpu")
    try:
        return field_from_payload(d, device)
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise file_error(path, f"not a usable radiance field ({type(e).__name__}: {e}); re-run `gsseg train`") from None
