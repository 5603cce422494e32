"""What the renderers return: rendered images (``RenderOutput``) and per-pixel contribution
tables (``ContributionTable``). The bottom of ``gsseg.render``: every other module imports these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gsseg.data.cameras import Cameras


@dataclass
class RenderOutput:
    """Rendered images for C cameras of size H x W.

    Attributes:
        rgb: [C,H,W,3] colour composited over the background.
        alpha: [C,H,W,1] accumulated opacity (1 - final transmittance).
        depth: [C,H,W,1] expected depth sum(w z) / alpha, 0 where alpha = 0.
        features: [C,H,W,D] composited features (no background), or None.
        meta: per-Gaussian screen-space data for gsplat's DefaultStrategy (packed=False).
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor
    features: Tensor | None
    meta: dict[str, Any] = field(default_factory=dict)


def image_size(cameras: Cameras) -> tuple[int, int]:
    """(width, height) shared by all cameras; ValueError if they differ."""
    widths, heights = cameras.widths.unique(), cameras.heights.unique()
    if len(widths) != 1 or len(heights) != 1:
        raise ValueError("render() needs cameras of one image size; render views of different sizes separately")
    return int(widths[0]), int(heights[0])


@dataclass
class ContributionTable:
    """Per-pixel contributors of one view (CSR over pixels, pixel id = y * width + x).

    Attributes:
        offsets: [H*W+1] int64; pixel p owns entries offsets[p]:offsets[p+1].
        gaussian_ids: [nnz] int32 Gaussian indices, front to back within a pixel.
        weights: [nnz] float32 T_i * alpha_i.
        width, height: image size of the table (may be a reduced resolution of the view).
    """

    offsets: Tensor
    gaussian_ids: Tensor
    weights: Tensor
    width: int
    height: int

    @property
    def nnz(self) -> int:
        return int(self.gaussian_ids.numel())

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.offsets, self.gaussian_ids, self.weights))

    def to(self, device: torch.device | str) -> "ContributionTable":
        return ContributionTable(
            self.offsets.to(device), self.gaussian_ids.to(device), self.weights.to(device), self.width, self.height
        )

    def pixel_ids(self, x: Tensor, y: Tensor) -> Tensor:
        """Pixel ids [P] int64 of integer pixel coordinates ``x [P]``, ``y [P]``."""
        return y.long() * self.width + x.long()

    def alpha(self) -> Tensor:
        """[H,W] accumulated opacity (sum of weights) of every pixel."""
        counts = self.offsets[1:] - self.offsets[:-1]
        pix = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
        acc = torch.zeros(self.height * self.width, dtype=self.weights.dtype, device=self.weights.device)
        return acc.index_add_(0, pix, self.weights).reshape(self.height, self.width)
