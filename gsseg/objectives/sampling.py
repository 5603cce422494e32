"""Pixel sampling, small per-view caches and mask seams (sliver patches) shared by the objectives."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

T = TypeVar("T")


def uniform_pixels(n: int, height: int, width: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` pixel ids drawn uniformly with replacement from an ``height × width`` image: [n] int64."""
    return torch.randint(0, height * width, (n,), generator=generator, dtype=torch.int64)


class ViewCache(Generic[T]):
    """LRU of per-view data built on demand by ``build(view)``; holds at most ``size`` views."""

    def __init__(self, build: Callable[[str], T], size: int = 32) -> None:
        self._build = build
        self._size = max(int(size), 1)
        self._items: OrderedDict[str, T] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, view: str) -> T:
        if view in self._items:
            self._items.move_to_end(view)
            return self._items[view]
        item = self._build(view)
        self._items[view] = item
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return item


def sliver_patches(patch_index: np.ndarray, radius: int, n_patches: int = 0) -> np.ndarray:
    """[Q] bool: the patches of ``patch_index [H,W]`` that an erosion by ``radius`` px (a square
    of side 2·radius+1) removes entirely: strips at most ``2·radius`` px wide, such as the seams
    where two masks' boundaries disagree by a pixel or two; the image border does not erode.
    Q = max(n_patches, largest patch id + 1)."""
    from scipy import ndimage

    size = 2 * radius + 1
    interior = ndimage.maximum_filter(patch_index, size=size, mode="nearest") == ndimage.minimum_filter(
        patch_index, size=size, mode="nearest"
    )
    n = max(int(patch_index.max()) + 1, n_patches)
    present = np.bincount(patch_index.ravel(), minlength=n) > 0
    survives = np.bincount(patch_index[interior], minlength=n) > 0
    return present & ~survives


def seam_patches(patch_index: np.ndarray, membership: np.ndarray, radius: int) -> np.ndarray:
    """[Q] bool: sliver patches (:func:`sliver_patches`) whose mask set differs by exactly one mask
    from a patch next to them: a strip where one mask's boundary overshoots or falls short of the
    others (a floor mask grown a pixel into an object), not a thin segment of its own (a pole,
    whose set differs from its neighbours' by a whole mask swapped). membership: [M,Q] bool."""
    q = membership.shape[1]
    thin = sliver_patches(patch_index, radius, q)
    if not thin.any():
        return thin
    pairs = np.concatenate(
        [
            np.stack([patch_index[:, :-1].ravel(), patch_index[:, 1:].ravel()], 1),
            np.stack([patch_index[:-1].ravel(), patch_index[1:].ravel()], 1),
        ]
    )
    pairs = pairs[(pairs[:, 0] != pairs[:, 1]) & (thin[pairs[:, 0]] | thin[pairs[:, 1]])]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    cols = membership.astype(bool)
    differ = (cols[:, pairs[:, 0]] != cols[:, pairs[:, 1]]).sum(0)
    one = pairs[differ == 1]
    seam = np.zeros(q, bool)
    seam[one[thin[one[:, 0]], 0]] = True
    seam[one[thin[one[:, 1]], 1]] = True
    return seam
