"""``sam`` source: segment-anything's automatic mask generator on every view.

Defaults are OmniSeg3D's (32 points per side, predicted IoU 0.88, stability 0.95, minimum
region area 128). Images whose long side exceeds ``max_size`` are downscaled first (SAM on
large photos is the most reported out-of-memory); the stored patch map then has the reduced
size and ``image_size`` records the original. segment_anything's small-region clean-up needs
OpenCV; without it the same clean-up (fill holes and drop islands smaller than the minimum
area, 8-connectivity, then box NMS preferring untouched masks) is done here with scipy.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from gsseg.masks.sources.base import View
from gsseg.masks.sources.sam_model import load_sam
from gsseg.masks.sources.sam_settings import SamSettings
from gsseg.masks.sources.torchvision_compat import ensure_torchvision
from gsseg.masks.store import ViewMasks

_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def downscale_to(image: np.ndarray, max_size: int) -> np.ndarray:
    """Bilinear downscale of ``image [H,W,3] uint8`` so its long side is at most ``max_size``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_size:
        return image
    scale = max_size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))


def remove_small_regions(mask: np.ndarray, min_area: int, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) smaller than ``min_area``.

    mask: [H,W] bool. 8-connected components; when every island is small the largest stays.
    Returns (mask, changed).
    """
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    working = ~mask if mode == "holes" else mask
    labels, n = ndimage.label(working, structure=_EIGHT_NEIGHBOURS)
    if n == 0:
        return mask, False
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    small = sizes < min_area
    if not small.any():
        return mask, False
    if mode == "holes":
        return mask | np.isin(labels, np.flatnonzero(small) + 1), True
    keep = np.flatnonzero(~small) + 1
    if len(keep) == 0:
        keep = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(labels, keep), True


def _mask_boxes(masks: np.ndarray) -> torch.Tensor:
    """XYXY boxes (inclusive max, like segment_anything) of masks [M,H,W]: [M,4] float32."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(ys):
            boxes[i] = (xs.min(), ys.min(), xs.max(), ys.max())
    return torch.from_numpy(boxes)


def clean_small_regions(
    masks: np.ndarray, scores: np.ndarray, min_area: int, nms_thresh: float
) -> tuple[np.ndarray, np.ndarray]:
    """Small-region clean-up of generator output without OpenCV.

    masks: [M,H,W] bool, scores: [M]. Each mask gets holes filled and islands removed; box
    NMS at ``nms_thresh`` then prefers masks the clean-up left untouched. Returns the kept
    (masks [K,H,W], scores [K]).
    """
    if len(masks) == 0:
        return masks, scores
    cleaned = np.empty_like(masks)
    untouched = np.zeros(len(masks), dtype=np.float32)
    for i, mask in enumerate(masks):
        mask, holes_changed = remove_small_regions(mask, min_area, "holes")
        mask, islands_changed = remove_small_regions(mask, min_area, "islands")
        cleaned[i] = mask
        untouched[i] = float(not (holes_changed or islands_changed))
    from torchvision.ops.boxes import batched_nms

    boxes = _mask_boxes(cleaned)
    keep = batched_nms(boxes, torch.from_numpy(untouched), torch.zeros(len(boxes), dtype=torch.int64), nms_thresh)
    keep = np.sort(keep.numpy())
    return cleaned[keep], scores[keep]


class SamSource:
    """Automatic SAM masks for a view: ``SamSource(settings)(view) -> ViewMasks``."""

    name = "sam"

    def __init__(self, settings: SamSettings) -> None:
        self.config = settings
        self.note = ensure_torchvision()
        from segment_anything import SamAutomaticMaskGenerator

        model = load_sam(settings.checkpoint, settings.model_type, settings.device)
        self.has_cv2 = importlib.util.find_spec("cv2") is not None
        if not self.has_cv2 and settings.min_mask_region_area > 0:
            cv2_note = "opencv is not installed; small-region clean-up is done with scipy instead"
            self.note = f"{self.note}; {cv2_note}" if self.note else cv2_note
        self.generator = SamAutomaticMaskGenerator(
            model,
            points_per_side=settings.points_per_side,
            points_per_batch=settings.points_per_batch,
            pred_iou_thresh=settings.pred_iou_thresh,
            stability_score_thresh=settings.stability_score_thresh,
            stability_score_offset=settings.stability_score_offset,
            box_nms_thresh=settings.box_nms_thresh,
            crop_n_layers=settings.crop_n_layers,
            min_mask_region_area=settings.min_mask_region_area if self.has_cv2 else 0,
        )

    def settings(self) -> dict[str, Any]:
        out = asdict(self.config)
        out["checkpoint"] = str(self.config.checkpoint) if self.config.checkpoint else None
        out["small_regions"] = "segment_anything+opencv" if self.has_cv2 else "gsseg+scipy"
        return out

    def masks_for_image(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks of an RGB image [H,W,3] uint8 at its own size: (masks [M,H,W] bool, scores [M])."""
        records = self.generator.generate(image)
        h, w = image.shape[:2]
        masks = np.array([r["segmentation"] for r in records], dtype=bool).reshape(len(records), h, w)
        scores = np.array([r["predicted_iou"] for r in records], dtype=np.float32)
        if not self.has_cv2 and self.config.min_mask_region_area > 0:
            masks, scores = clean_small_regions(
                masks, scores, self.config.min_mask_region_area, self.config.box_nms_thresh
            )
        return masks, scores

    def __call__(self, view: View) -> ViewMasks:
        image = view.image()
        small = downscale_to(image, self.config.max_size)
        with torch.inference_mode():
            masks, scores = self.masks_for_image(small)
        return ViewMasks.from_masks(masks, scores, self.name, image_size=image.shape[:2], info=self.settings())
