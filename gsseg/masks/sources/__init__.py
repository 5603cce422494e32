"""Mask sources: each turns one view into a :class:`gsseg.masks.store.ViewMasks`.

- ``sam``: segment-anything's automatic mask generator (user checkpoint);
- ``geometry``: hierarchical watersheds of colour, rendered depth and normal edges (needs a run
  whose RGB stage is done; ``gsseg train`` on a dataset with no masks makes them itself);
- ``watershed``: higra hierarchical watershed of the image gradient, cut at several levels;
- ``labels``: import ``DATA/label_masks/<stem>/*.png`` label maps;
- ``simulated``: SAM-like noisy masks from the ground truth of built-in scenes.

Sources are imported lazily by :func:`gsseg.masks.runner.make_source`, so reading masks never
imports torch models or higra.
"""

SOURCE_NAMES = ("sam", "geometry", "watershed", "labels", "simulated")

__all__ = ["SOURCE_NAMES"]
