"""Pixel sampling and small per-view caches shared by the objectives."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

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
