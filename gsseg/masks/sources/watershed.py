"""``watershed`` source: the weight-free default, a multi-granular segmentation from higra.

The image is smoothed, a 4-adjacency pixel graph is weighted by the colour difference of
neighbours (the gradient), and a hierarchical watershed (by area, volume or dynamics) is
cut at several region counts. Every region of every cut is one mask; regions smaller than
a fraction of the image are dropped and regions repeated across cuts are kept once. A
region's score is its persistence: how long it survives in the hierarchy, in [0,1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from gsseg.masks.sources.base import View
from gsseg.masks.store import ViewMasks

ATTRIBUTES = ("area", "volume", "dynamics")


@dataclass
class WatershedSettings:
    """region_counts: the cuts (regions per cut); attribute: hierarchy ordering;
    min_area_fraction: smallest kept region as a fraction of the image; sigma: pre-smoothing."""

    region_counts: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64, 128])
    attribute: str = "volume"
    min_area_fraction: float = 0.002
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.attribute not in ATTRIBUTES:
            raise ValueError(f"attribute must be one of {ATTRIBUTES}, got {self.attribute!r}")
        if not self.region_counts or min(self.region_counts) < 1:
            raise ValueError(f"region counts must be positive, got {self.region_counts}")


def watershed_cuts(image: np.ndarray, settings: WatershedSettings) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cuts of the hierarchical watershed of ``image [H,W,3] uint8``.

    Returns (label maps [L,H,W] int64 with labels 1.., one map per region count;
    per map the persistence [R] of each label 1..R, in [0,1]).
    """
    import higra as hg

    h, w = image.shape[:2]
    smooth = ndimage.gaussian_filter(image.astype(np.float64) / 255.0, sigma=(settings.sigma, settings.sigma, 0))
    graph = hg.get_4_adjacency_graph((h, w))
    gradient = hg.weight_graph(graph, smooth.reshape(h * w, -1), hg.WeightFunction.L2)
    return cuts_of_graph(graph, gradient, (h, w), settings)


def cuts_of_graph(
    graph, gradient: np.ndarray, shape: tuple[int, int], settings: WatershedSettings
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The hierarchical watershed of a higra pixel ``graph`` of an image of ``shape`` (H, W) with
    edge weights ``gradient [E]``, cut at ``settings.region_counts`` (see :func:`watershed_cuts`)."""
    import higra as hg

    h, w = shape
    build = {
        "area": hg.watershed_hierarchy_by_area,
        "volume": hg.watershed_hierarchy_by_volume,
        "dynamics": hg.watershed_hierarchy_by_dynamics,
    }[settings.attribute]
    tree, altitudes = build(graph, gradient)
    top = float(altitudes.max()) or 1.0
    parents = tree.parents()
    explorer = hg.HorizontalCutExplorer(tree, altitudes)
    maps, persistence = [], []
    for count in sorted(set(settings.region_counts)):
        cut = explorer.horizontal_cut_from_num_regions(min(count, h * w))
        nodes = np.asarray(cut.nodes())
        # Leaves are labelled with the id of their cut node; renumber the cut nodes 1..R.
        order = np.sort(nodes)
        renumber = np.zeros(tree.num_vertices(), dtype=np.int64)
        renumber[order] = np.arange(1, len(order) + 1)
        labels = renumber[np.asarray(cut.labelisation_leaves(tree))]
        alive = (altitudes[parents[order]] - altitudes[order]) / top
        maps.append(labels.reshape(h, w))
        persistence.append(np.clip(alive, 0.0, 1.0).astype(np.float32))
    return np.stack(maps), persistence


class WatershedSource:
    """``WatershedSource(settings)(view) -> ViewMasks`` (no weights needed)."""

    name = "watershed"

    def __init__(self, settings: WatershedSettings | None = None) -> None:
        self.config = settings or WatershedSettings()

    def settings(self) -> dict[str, Any]:
        return asdict(self.config)

    def masks_for_image(self, image: np.ndarray) -> ViewMasks:
        """Masks of an RGB image [H,W,3] uint8."""
        h, w = image.shape[:2]
        maps, persistence = watershed_cuts(image, self.config)
        min_area = self.config.min_area_fraction * h * w
        view, labels = ViewMasks.from_label_maps(maps, self.name, image_size=(h, w), info=self.settings())
        view.scores = np.array([persistence[level][value - 1] for level, value in labels], dtype=np.float32)
        # Regions repeated across cuts (equal membership rows) are kept once, from the coarsest cut.
        _, first = np.unique(np.packbits(view.membership, axis=1), axis=0, return_index=True)
        keep = np.zeros(view.n_masks, dtype=bool)
        keep[first] = True
        return view.subset(keep & (view.areas >= min_area))

    def __call__(self, view: View) -> ViewMasks:
        return self.masks_for_image(view.image())
