"""``labels`` source: import ``DATA/label_masks/<stem>/*.png`` from any segmenter or annotator.

Every distinct non-zero value of every PNG is one mask; several PNGs per view are several
granularities. Grey, 16-bit and palette PNGs are read as integer labels; RGB(A) PNGs as
colours (black, or alpha 0, is "no mask"). Every PNG must have the view's image size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from gsseg.errors import file_error
from gsseg.masks.sources.base import NoInputForView, View
from gsseg.masks.store import ViewMasks

LABEL_DIR = "label_masks"


def read_label_png(path: Path) -> np.ndarray:
    """Integer labels of one PNG: [H,W] int64, 0 = no mask; ``GssegError`` if unreadable."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise file_error(path, f"unreadable label image ({e})") from e
    if mode in ("RGB", "RGBA"):
        rgb = arr[..., :3].astype(np.int64)
        labels = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        if mode == "RGBA":
            labels[arr[..., 3] == 0] = 0
        return labels
    if mode == "LA":
        labels = arr[..., 0].astype(np.int64)
        labels[arr[..., 1] == 0] = 0
        return labels
    if arr.ndim != 2:
        raise file_error(path, f"unsupported label image mode {mode!r} (use grey, 16-bit, palette or RGB PNGs)")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise file_error(
            path,
            f"label image holds {arr.dtype} values (mode {mode!r}); labels must be integers "
            "(grey, 16-bit, palette or RGB PNGs)",
        )
    if arr.size and arr.min() < 0:
        raise file_error(path, f"label image has negative values (min {arr.min()}); labels must be >= 0")
    return arr.astype(np.int64)


def label_pngs(root: Path, stem: str) -> list[Path]:
    """The view's label PNGs, sorted by name."""
    folder = root / LABEL_DIR / stem
    return sorted(p for p in folder.glob("*.png") if p.is_file()) if folder.is_dir() else []


def import_label_maps(
    paths: list[Path],
    image_size: tuple[int, int],
    resample: Callable[[np.ndarray, Path], np.ndarray] | None = None,
) -> ViewMasks:
    """Masks from label PNGs that must all be ``image_size`` (height, width) once ``resample``d
    (the dataset's ``resample_labels``: to the working size, undistorted, nearest-neighbour)."""
    maps = []
    for path in paths:
        labels = read_label_png(path)
        if resample is not None:
            labels = resample(labels, path)
        if labels.shape != tuple(image_size):
            raise file_error(
                path,
                f"label image is {labels.shape[1]}x{labels.shape[0]} but the view's image is "
                f"{image_size[1]}x{image_size[0]} (width x height)",
            )
        maps.append(labels)
    view, labels = ViewMasks.from_label_maps(
        np.stack(maps), "labels", image_size=image_size, info={"files": [p.name for p in paths]}
    )
    view.info["mask_labels"] = labels.tolist()
    return view


class LabelSource:
    """``LabelSource()(view) -> ViewMasks``; views without label PNGs are skipped."""

    name = "labels"

    def settings(self) -> dict[str, Any]:
        return {"folder": LABEL_DIR}

    def __call__(self, view: View) -> ViewMasks:
        paths = label_pngs(view.root, view.stem)
        if not paths:
            raise NoInputForView(f"no {LABEL_DIR}/{view.stem}/*.png")
        resample = getattr(view.dataset, "resample_labels", None)
        if resample is None:
            return import_label_maps(paths, view.size())
        return import_label_maps(paths, view.size(), lambda labels, path: resample(view.stem, labels, path))
