"""Per-view multi-granular 2D masks: the store, what is derived from it, and the sources.

``from gsseg.masks import MaskStore, ViewMasks`` is enough to read masks; the sources live in
:mod:`gsseg.masks.sources` and are run over a dataset by :mod:`gsseg.masks.runner`.
"""

from gsseg.masks.store import MaskStore, ViewMasks, summarize

__all__ = ["MaskStore", "ViewMasks", "summarize"]
