"""Settings of the ``sam`` source, importable without torch (the CLI and runner build them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SamSettings:
    """Settings of the ``sam`` source (generator arguments use segment_anything's names)."""

    checkpoint: Path | None = None
    """SAM checkpoint file (.pth)."""
    model_type: str | None = None
    """vit_h, vit_l or vit_b; inferred from the file name or weights when not given."""
    points_per_side: int = 32
    """Prompt grid points per image side."""
    points_per_batch: int = 64
    """Prompt points run through the decoder at once."""
    pred_iou_thresh: float = 0.88
    """Minimum predicted IoU of a kept mask."""
    stability_score_thresh: float = 0.95
    """Minimum stability score of a kept mask."""
    stability_score_offset: float = 1.0
    """Logit offset of the stability score."""
    box_nms_thresh: float = 0.7
    """Box IoU above which non-maximum suppression drops the lower-scored mask."""
    crop_n_layers: int = 0
    """Layers of image crops SAM also runs on (0: the whole image only)."""
    min_mask_region_area: int = 128
    """Fill holes / drop islands smaller than this many pixels (0: off)."""
    max_size: int = 1024
    """Downscale images whose long side exceeds this many pixels before running SAM."""
    device: str = "cpu"
    """Device SAM runs on: cpu or cuda."""
