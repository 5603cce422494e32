"""SAM point prompts: the mask of the object under given pixels of a view (SANeRF-HQ style).

Positive and negative points go to SAM's decoder with multimask output and the mask with the
highest predicted IoU is kept. Large images are encoded at ``max_size`` on their long side;
the chosen mask's logits are upsampled back to the full image before thresholding, so
callers work in full-resolution pixel coordinates throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gsseg.masks.sources.sam import downscale_to
from gsseg.masks.sources.torchvision_compat import ensure_torchvision


@dataclass
class PromptResult:
    """mask: [H,W] bool at full image size; score: SAM's predicted IoU of the kept mask;
    candidates: number of masks SAM proposed."""

    mask: np.ndarray
    score: float
    candidates: int


class SamPrompter:
    """Point-prompted SAM on one image at a time.

    >>> prompter = SamPrompter(model)           # a segment_anything Sam (see sam_model.load_sam)
    >>> prompter.set_image(image)               # [H,W,3] uint8
    >>> prompter.predict([[x, y]], [1]).mask    # [H,W] bool
    """

    def __init__(self, model: torch.nn.Module, max_size: int = 1024) -> None:
        ensure_torchvision()
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(model)
        self.max_size = max_size
        self.full_size: tuple[int, int] | None = None
        self.scale = 1.0

    def set_image(self, image: np.ndarray) -> None:
        """Encode an RGB image [H,W,3] uint8 (downscaled to ``max_size`` first if larger)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be [H,W,3] uint8, got {image.shape} {image.dtype}")
        small = downscale_to(image, self.max_size)
        self.full_size = image.shape[:2]
        self.scale = small.shape[1] / image.shape[1]
        with torch.inference_mode():
            self.predictor.set_image(small)

    def predict(self, points_xy: np.ndarray, labels: np.ndarray) -> PromptResult:
        """Mask for pixel prompts.

        points_xy: [K,2] float pixel coordinates (x, y) in the full image (pixel centres at
        +0.5); labels: [K] int, 1 = on the object, 0 = not on it.
        """
        if self.full_size is None:
            raise RuntimeError("call set_image() before predict()")
        points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(points) == 0 or len(points) != len(labels):
            raise ValueError(
                f"need one label per point and at least one point, got {len(points)} points and {len(labels)} labels"
            )
        with torch.inference_mode():
            logits, ious, _ = self.predictor.predict(
                point_coords=points * self.scale,
                point_labels=labels,
                multimask_output=True,
                return_logits=True,
            )
        best = int(np.argmax(ious))
        chosen = torch.from_numpy(np.ascontiguousarray(logits[best]))[None, None].float()
        if tuple(chosen.shape[-2:]) != self.full_size:
            chosen = F.interpolate(chosen, size=self.full_size, mode="bilinear", align_corners=False)
        mask = (chosen[0, 0] > self.predictor.model.mask_threshold).numpy()
        return PromptResult(mask=mask, score=float(ious[best]), candidates=len(ious))


def prompt_masks(
    model: torch.nn.Module,
    image: np.ndarray,
    prompts: list[tuple[np.ndarray, np.ndarray]],
    max_size: int = 1024,
) -> list[PromptResult]:
    """One mask per (points_xy [K,2], labels [K]) prompt on one image [H,W,3] uint8 (encoded once)."""
    prompter = SamPrompter(model, max_size)
    prompter.set_image(image)
    return [prompter.predict(points, labels) for points, labels in prompts]
