"""Readers for per-view rasters: RGB images, z-depth maps and ground-truth label maps.

Every reader raises :class:`gsseg.errors.GssegError` naming the file when it is missing,
unreadable or of the wrong shape, so a broken dataset is reported in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gsseg.errors import file_error

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG", ".webp", ".bmp", ".tif", ".tiff")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image, read from its header only."""
    if not path.is_file():
        raise file_error(path, "image file not found")
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise file_error(path, f"cannot read image ({_reason(e)})") from None


def read_image(
    path: Path,
    size: tuple[int, int] | None = None,
    expected: tuple[int, int] | None = None,
    source: str = "the dataset",
) -> torch.Tensor:
    """RGB image as float32 ``[H,W,3]`` in [0,1], area-resampled to ``size = (width, height)``.

    ``expected`` is the (width, height) ``source`` declares for the file; a different size is an error.
    Grayscale is replicated to three channels; an alpha channel is composited onto white
    (the NeRF-Blender convention for transparent renders); 16-bit images keep their precision.
    """
    if not path.is_file():
        raise file_error(path, "image file not found")
    try:
        with Image.open(path) as im:
            im.load()
            arr = _to_rgb_float(im)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise file_error(path, f"cannot read image ({_reason(e)})") from None
    if expected is not None and (arr.shape[1], arr.shape[0]) != tuple(expected):
        raise file_error(path, f"image is {arr.shape[1]}x{arr.shape[0]} but {source} says {expected[0]}x{expected[1]}")
    if size is not None and (arr.shape[1], arr.shape[0]) != tuple(size):
        arr = np.stack([_area_resize(arr[..., c], size) for c in range(3)], axis=-1)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def read_depth(path: Path, native_size: tuple[int, int], size: tuple[int, int], scale: float = 1.0) -> torch.Tensor:
    """z-depth map ``[H,W]`` float32 (0 = no surface) from a ``.npy`` array or a single-channel image.

    Stored values are multiplied by ``scale`` (e.g. 1e-3 for millimetre PNGs). ``native_size`` is
    the (width, height) of the view's full-resolution image; the map must have that size (or
    already be ``size``) and is nearest-resampled to ``size``.
    """
    if not path.is_file():
        raise file_error(path, "depth file not found")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im)
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as e:
        raise file_error(path, f"cannot read depth map ({_reason(e)})") from None
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise file_error(path, f"depth map must be a 2-D numeric array, got shape {arr.shape} dtype {arr.dtype}")
    _check_size(path, "depth map", (arr.shape[1], arr.shape[0]), native_size, size)
    arr = np.nan_to_num(arr.astype(np.float32) * np.float32(scale), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.from_numpy(np.ascontiguousarray(nearest_resize(arr, size)))


def read_labels(path: Path, native_size: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Integer label map ``[H,W]`` int64 from an 8- or 16-bit single-channel PNG, nearest-resampled."""
    if not path.is_file():
        raise file_error(path, "label file not found")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise file_error(path, f"cannot read label image ({_reason(e)})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise file_error(
            path, f"label image must be single-channel integer (8/16-bit PNG), got shape {arr.shape} dtype {arr.dtype}"
        )
    _check_size(path, "label image", (arr.shape[1], arr.shape[0]), native_size, size)
    return np.ascontiguousarray(nearest_resize(arr.astype(np.int64), size))


def nearest_resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``arr [H,W,...]`` to ``size = (width, height)``, sampling pixel centres."""
    w, h = size
    if arr.shape[0] == h and arr.shape[1] == w:
        return arr
    rows = np.minimum(((np.arange(h) + 0.5) * arr.shape[0] / h).astype(np.int64), arr.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * arr.shape[1] / w).astype(np.int64), arr.shape[1] - 1)
    return arr[rows[:, None], cols[None, :]]


def _check_size(path: Path, what: str, got: tuple[int, int], want: tuple[int, int], also_ok: tuple[int, int]) -> None:
    if tuple(got) not in (tuple(want), tuple(also_ok)):
        raise file_error(path, f"{what} is {got[0]}x{got[1]} but its view's image is {want[0]}x{want[1]}")


def _to_rgb_float(im: Image.Image) -> np.ndarray:
    """[H,W,3] float32 in [0,1] from any PIL mode."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        scale = 65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0
        gray = np.asarray(im).astype(np.float32) / scale
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1)
    if im.mode == "F":
        gray = np.asarray(im).astype(np.float32)
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32) / 255.0
        return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
    return np.asarray(im.convert("RGB")).astype(np.float32) / 255.0


def _area_resize(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Box-filter resize of one float32 channel ``[H,W]`` to ``size = (width, height)``."""
    out = Image.fromarray(channel.astype(np.float32)).resize(size, resample=Image.Resampling.BOX)
    return np.asarray(out, dtype=np.float32)


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
