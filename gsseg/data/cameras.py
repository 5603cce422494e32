"""Pinhole cameras in the OpenCV / gsplat convention.

World-to-camera ``viewmats [C,4,4]`` map world points to camera space where +x is right,
+y is down and +z looks forward; ``Ks [C,3,3]`` are pixel intrinsics with the pixel centre
of pixel (u, v) at (u + 0.5, v + 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# OpenGL/Blender camera axes (x right, y up, z backward) -> OpenCV (x right, y down, z forward).
OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


@dataclass
class Cameras:
    """A batch of C pinhole cameras.

    Attributes:
        viewmats: [C,4,4] float32 world-to-camera (OpenCV).
        Ks: [C,3,3] float32 intrinsics in pixels.
        widths, heights: [C] int64 image sizes in pixels.
        names: C image stems (file names without extension), used for every per-view output.
    """

    viewmats: Tensor
    Ks: Tensor
    widths: Tensor
    heights: Tensor
    names: list[str]

    def __post_init__(self) -> None:
        self.viewmats = torch.as_tensor(self.viewmats, dtype=torch.float32)
        self.Ks = torch.as_tensor(self.Ks, dtype=torch.float32)
        self.widths = torch.as_tensor(self.widths, dtype=torch.int64).reshape(-1)
        self.heights = torch.as_tensor(self.heights, dtype=torch.int64).reshape(-1)
        self.names = list(self.names)
        c = self.viewmats.shape[0]
        if self.viewmats.shape != (c, 4, 4) or self.Ks.shape != (c, 3, 3):
            raise ValueError(
                f"viewmats must be [C,4,4] and Ks [C,3,3], got {tuple(self.viewmats.shape)} and {tuple(self.Ks.shape)}"
            )
        if not (len(self.widths) == len(self.heights) == len(self.names) == c):
            raise ValueError("widths, heights and names must have one entry per camera")

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    def __getitem__(self, index: int | slice | list[int] | Tensor) -> "Cameras":
        """A sub-batch; an int index keeps the batch dimension (C = 1)."""
        if isinstance(index, int):
            index = [index]
        if isinstance(index, slice):
            names = self.names[index]
        else:
            idx = torch.as_tensor(index, dtype=torch.int64).reshape(-1)
            names = [self.names[i] for i in idx.tolist()]
            index = idx
        return Cameras(self.viewmats[index], self.Ks[index], self.widths[index], self.heights[index], names)

    def to(self, device: torch.device | str) -> "Cameras":
        return Cameras(self.viewmats.to(device), self.Ks.to(device), self.widths, self.heights, self.names)

    @property
    def device(self) -> torch.device:
        return self.viewmats.device

    @property
    def camtoworlds(self) -> Tensor:
        """[C,4,4] camera-to-world (OpenCV axes)."""
        return torch.linalg.inv(self.viewmats)

    @property
    def centers(self) -> Tensor:
        """[C,3] camera centres in world space."""
        return self.camtoworlds[:, :3, 3]

    def index_of(self, name: str) -> int:
        """Position of the camera whose image stem is ``name`` (ValueError if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"no view named {name!r}") from None

    def scaled(self, factor: float) -> "Cameras":
        """Cameras for images resized by ``factor`` (e.g. 0.5 halves width and height).

        Image sizes are rounded; the intrinsics are scaled by the exact per-axis ratio so the
        pixel-centre convention is preserved.
        """
        new_w = torch.clamp((self.widths.double() * factor).round(), min=1).long()
        new_h = torch.clamp((self.heights.double() * factor).round(), min=1).long()
        sx = (new_w.double() / self.widths.double()).float()
        sy = (new_h.double() / self.heights.double()).float()
        Ks = self.Ks.clone()
        Ks[:, 0, :] *= sx[:, None].to(Ks)
        Ks[:, 1, :] *= sy[:, None].to(Ks)
        return Cameras(self.viewmats.clone(), Ks, new_w, new_h, list(self.names))

    @staticmethod
    def from_opengl_c2w(c2w: Tensor, Ks: Tensor, widths, heights, names: list[str]) -> "Cameras":
        """Build from Blender/NeRF camera-to-world matrices [C,4,4] (OpenGL axes)."""
        c2w = torch.as_tensor(c2w, dtype=torch.float64)
        c2w_cv = c2w @ OPENGL_TO_OPENCV.to(c2w)
        return Cameras(torch.linalg.inv(c2w_cv).float(), Ks, widths, heights, names)

    def to_opengl_c2w(self) -> Tensor:
        """[C,4,4] float64 camera-to-world in OpenGL axes (inverse of ``from_opengl_c2w``)."""
        c2w_cv = torch.linalg.inv(self.viewmats.double())
        return c2w_cv @ OPENGL_TO_OPENCV.to(c2w_cv)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    """[3,3] pinhole intrinsic matrix."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)
