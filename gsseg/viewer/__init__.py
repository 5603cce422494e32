"""Browser viewer (``gsseg view``): the run's Gaussians as client-side splats in viser, with
click selection from identity features, hierarchy-cut colouring and export."""

from gsseg.viewer.pick import PickResult, RayPicker
from gsseg.viewer.selection import ClickRecord, FeatureScorer, SegmentScorer, Selection
from gsseg.viewer.server import ViewerApp, ViewerConfig, serve
from gsseg.viewer.splats import SplatData

__all__ = [
    "ClickRecord",
    "FeatureScorer",
    "PickResult",
    "RayPicker",
    "SegmentScorer",
    "Selection",
    "SplatData",
    "ViewerApp",
    "ViewerConfig",
    "serve",
]
