"""What every mask source receives (a :class:`View`) and how it says a view has no input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gsseg.masks.store import ViewMasks


class NoInputForView(Exception):
    """Raised by a source when a view has nothing to work from (e.g. no label maps); the
    runner skips that view and reports it."""


@dataclass
class View:
    """One dataset view as the sources see it, read on demand.

    dataset: a ``gsseg.data.SceneDataset`` (anything with ``root``, ``image(name)``,
    ``gt(name, level)`` and ``gt_levels``); stem: the image stem.
    """

    dataset: Any
    stem: str

    @property
    def root(self) -> Path:
        return Path(self.dataset.root)

    def image(self) -> np.ndarray:
        """RGB image: [H,W,3] uint8."""
        img = self.dataset.image(self.stem)
        arr = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
        if arr.dtype == np.uint8:
            return arr[..., :3]
        return np.clip(np.rint(arr[..., :3] * 255.0), 0, 255).astype(np.uint8)

    def size(self) -> tuple[int, int]:
        """(height, width) of the image, from the cameras when the dataset knows them."""
        if hasattr(self.dataset, "size"):
            width, height = self.dataset.size(self.stem)
            return int(height), int(width)
        return self.image().shape[:2]

    def gt_levels(self) -> list[str]:
        return list(self.dataset.gt_levels)

    def gt(self, level: str) -> np.ndarray | None:
        """Ground-truth labels at ``level``: [H,W] int64, 0 = background; None if absent."""
        return self.dataset.gt(self.stem, level)


class MaskSource(Protocol):
    """A mask source: ``name`` and ``__call__(view) -> ViewMasks``."""

    name: str

    def settings(self) -> dict[str, Any]:
        """Settings recorded in every mask file it writes."""
        ...

    def __call__(self, view: View) -> ViewMasks: ...
