"""A minimal torchvision stand-in so the real segment_anything code runs without torchvision.

segment_anything imports four things from torchvision: ``ops.boxes.batched_nms`` and
``ops.boxes.box_area`` (automatic mask generator) and ``transforms.functional.resize`` and
``to_pil_image`` (image resizing in the predictor). torchvision has no CPU wheel for some torch
builds and is often installed against the wrong torch. :func:`ensure_torchvision` leaves a
working torchvision alone; only when it cannot be imported does it register small modules
under ``torchvision`` in ``sys.modules`` that implement exactly those four functions with
torch and PIL.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

STAND_IN_FLAG = "__gsseg_stand_in__"
INSTALL_HINT = "install torchvision built for torch {torch} (pip install torchvision) to use the real one"


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of boxes [N,4] in (x1, y1, x2, y2) form: [N]."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of boxes [N,4] and [M,4]: [N,M]."""
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices [K] int64 of kept boxes, by decreasing score.

    A box is dropped when its IoU with a higher-scoring kept box exceeds ``iou_threshold``.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_boxes = boxes[order].double()
    iou = box_iou(sorted_boxes, sorted_boxes).cpu().numpy()
    n = len(order)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if keep[i]:
            keep[i + 1 :] &= iou[i, i + 1 :] <= iou_threshold
    return order[torch.from_numpy(keep).to(order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS applied independently per category ``idxs`` [N]: kept indices [K] int64, by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    # Shift each category to its own region of the plane so boxes of different categories never overlap.
    span = boxes.max() - boxes.min() + 1
    offsets = idxs.to(boxes.dtype) * span
    return nms(boxes.double() + offsets.double()[:, None], scores, iou_threshold)


def _output_size(height: int, width: int, size: int | Sequence[int], max_size: int | None) -> tuple[int, int]:
    """torchvision's size rule: a pair is (h, w); an int sets the shorter side."""
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    short = int(size[0] if isinstance(size, Sequence) else size)
    if height <= width:
        new_h, new_w = short, int(short * width / height)
    else:
        new_h, new_w = int(short * height / width), short
    if max_size is not None and max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = int(new_h * scale), int(new_w * scale)
    return new_h, new_w


def resize(img, size, interpolation=None, max_size: int | None = None, antialias: bool | None = True):
    """Bilinear resize of a PIL image or a tensor [..., H, W] to ``size`` ((h, w) or shorter side)."""
    if isinstance(img, Image.Image):
        new_h, new_w = _output_size(img.height, img.width, size, max_size)
        return img.resize((new_w, new_h), Image.Resampling.BILINEAR)
    if isinstance(img, torch.Tensor):
        new_h, new_w = _output_size(img.shape[-2], img.shape[-1], size, max_size)
        lead = img.shape[:-2]
        flat = img.reshape(-1, 1, *img.shape[-2:])
        out = F.interpolate(
            flat.float(), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=bool(antialias)
        )
        if not img.is_floating_point():
            out = out.round().clamp(0, 255)
        return out.to(img.dtype).reshape(*lead, new_h, new_w)
    raise TypeError(f"resize expects a PIL image or a tensor, got {type(img).__name__}")


def to_pil_image(pic, mode: str | None = None) -> Image.Image:
    """A PIL image from a [H,W(,C)] array or a [C,H,W] tensor (floats are scaled by 255)."""
    if isinstance(pic, torch.Tensor):
        if pic.ndim == 3:
            pic = pic.permute(1, 2, 0)
        if pic.is_floating_point():
            pic = (pic * 255).to(torch.uint8)
        pic = pic.cpu().numpy()
    arr = np.asarray(pic)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8 and arr.ndim == 3:
        arr = arr.astype(np.uint8)
    return Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)


def _module(name: str, package: bool = False) -> types.ModuleType:
    module = types.ModuleType(name, f"gsseg stand-in for {name} (torchvision is not importable)")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=package)
    if package:
        module.__path__ = []
    setattr(module, STAND_IN_FLAG, True)
    return module


def install_stand_in() -> None:
    """Register the stand-in modules ``torchvision``, ``.ops``, ``.ops.boxes``, ``.transforms``,
    ``.transforms.functional`` in ``sys.modules`` (replacing any half-imported torchvision)."""
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    root = _module("torchvision", package=True)
    ops = _module("torchvision.ops", package=True)
    boxes = _module("torchvision.ops.boxes")
    transforms = _module("torchvision.transforms", package=True)
    functional = _module("torchvision.transforms.functional")
    # Through the module dicts: ModuleType declares no such attributes, so mypy refuses plain assignments.
    for target in (boxes, ops):
        vars(target).update(batched_nms=batched_nms, nms=nms, box_area=box_area, box_iou=box_iou)
    vars(functional).update(resize=resize, to_pil_image=to_pil_image)
    vars(ops).update(boxes=boxes)
    vars(transforms).update(functional=functional)
    vars(root).update(ops=ops, transforms=transforms, __version__="0.0.0+gsseg-stand-in")
    sys.modules.update(
        {
            "torchvision": root,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )


def ensure_torchvision() -> str | None:
    """Make ``import torchvision.ops.boxes`` / ``.transforms.functional`` work.

    Returns None when the real torchvision imports, else a one-line note saying why the
    stand-in is used and what to install instead.
    """
    existing = sys.modules.get("torchvision")
    if existing is not None and getattr(existing, STAND_IN_FLAG, False):
        return f"torchvision is not importable; using gsseg's stand-in ({INSTALL_HINT.format(torch=torch.__version__)})"
    try:
        importlib.import_module("torchvision.ops.boxes")
        importlib.import_module("torchvision.transforms.functional")
        return None
    except Exception as e:  # noqa: BLE001 - a broken torchvision fails with many error types
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
    install_stand_in()
    hint = INSTALL_HINT.format(torch=torch.__version__)
    return f"torchvision is not importable ({reason}); using gsseg's stand-in ({hint})"


def is_stand_in() -> bool:
    """True when ``torchvision`` in ``sys.modules`` is this module's stand-in."""
    return bool(getattr(sys.modules.get("torchvision"), STAND_IN_FLAG, False))
