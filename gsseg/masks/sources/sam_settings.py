"""Settings of the ``sam`` source, importable without torch (the CLI and runner build them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SamSettings:
    """Settings of the ``sam`` source (generator arguments use segment_anything's names)."""

    checkpoint: Path | None = None
    model_type: str | None = None
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    min_mask_region_area: int = 128
    max_size: int = 1024
    device: str = "cpu"
