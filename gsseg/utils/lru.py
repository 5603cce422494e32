"""A least-recently-used cache bounded by entry count and bytes."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class BoundedLRU(Generic[V]):
    """At most ``max_items`` values and, when ``max_bytes`` is given, at most that many bytes
    (``size(value)``); the value just added is always kept, so one oversized entry still works."""

    def __init__(self, size: Callable[[V], int], max_items: int | None = None, max_bytes: int | None = None) -> None:
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be >= 1")
        self.size, self.max_items, self.max_bytes = size, max_items, max_bytes
        self.misses = 0  # values made so far (a value made again after eviction counts again)
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``make()`` cached now (evicting the least recently used)."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self.misses += 1
        self._items[key] = value
        self._bytes += self.size(value)
        self._evict()
        return value

    def _evict(self) -> None:
        while len(self._items) > 1 and (
            (self.max_items is not None and len(self._items) > self.max_items)
            or (self.max_bytes is not None and self._bytes > self.max_bytes)
        ):
            self._bytes -= self.size(self._items.popitem(last=False)[1])

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0
