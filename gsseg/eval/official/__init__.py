"""The papers' metrics exactly as their official evaluation code computes them.

The rules are those of ``shared/parity/README.md`` (UFF ``eval_nc.py`` / ``eval_nc_dense.py`` /
``eval_vc.py``, SANeRF-HQ ``evaluation.py``, Panoptic Lifting's PQ^scene, OmniSeg3D's
reference-view threshold transfer). Where the official code draws random pixels, ``exact=True``
replaces the 100-draw estimate by its expectation (every pixel enumerated, deterministic);
``exact=False`` draws like the official code (seeded).

- ``levels``: the scored GT levels, fg/bg included;
- ``protocols``: NC, NC dense, SI and VC of one view (and its partner) in one pass per cut;
- ``geometry``: the official VC reprojection and the visibility masks;
- ``panoptic``: PQ^scene; ``prompted``: SANeRF-HQ object mIoU / mAcc;
- ``transfer``: OmniSeg3D's threshold fixed on a reference view and transferred;
- ``labels``: scoring any method's label maps on a dataset (``gsseg eval --labels``).
"""

from gsseg.eval.official.geometry import PairGeometry, pair_geometry, reprojection, visibility
from gsseg.eval.official.levels import FGBG, ScoredLevel, official_levels
from gsseg.eval.official.panoptic import OfficialPanoptic, panoptic_quality_official
from gsseg.eval.official.prompted import OfficialObject, sanerf_object, sanerf_summary
from gsseg.eval.official.protocols import ImageScore, score_view
from gsseg.eval.official.transfer import THRESHOLDS, transferred_threshold_iou

__all__ = [
    "FGBG",
    "THRESHOLDS",
    "ImageScore",
    "OfficialObject",
    "OfficialPanoptic",
    "PairGeometry",
    "ScoredLevel",
    "official_levels",
    "pair_geometry",
    "panoptic_quality_official",
    "reprojection",
    "sanerf_object",
    "sanerf_summary",
    "score_view",
    "transferred_threshold_iou",
    "visibility",
]
