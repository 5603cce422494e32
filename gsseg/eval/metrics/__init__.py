"""The papers' segmentation metrics as pure numpy functions on label maps and score maps.

One file per metric family: ``covering`` (NC), ``injectivity`` (SI), ``consistency`` (VC),
``point_query`` (OmniSeg3D hierarchical mIoU), ``prompted`` (SANeRF-HQ object IoU / accuracy),
``panoptic`` (PQ^scene and matched mIoU).
"""

from gsseg.eval.metrics.consistency import consistency_per_segment, depth_warp, view_consistency
from gsseg.eval.metrics.covering import (
    covering_from_masks,
    covering_per_segment,
    mean_over_images,
    normalized_covering,
)
from gsseg.eval.metrics.injectivity import injectivity_per_segment, segmentation_injectivity
from gsseg.eval.metrics.panoptic import PanopticResult, panoptic_quality_scene
from gsseg.eval.metrics.point_query import (
    QueryPair,
    best_threshold_iou,
    hierarchical_query,
    interior_pixel,
    masks_score_map,
    query_pairs,
)
from gsseg.eval.metrics.prompted import ObjectScore, mean_object_scores, object_score

__all__ = [
    "ObjectScore",
    "PanopticResult",
    "QueryPair",
    "best_threshold_iou",
    "consistency_per_segment",
    "covering_from_masks",
    "covering_per_segment",
    "depth_warp",
    "hierarchical_query",
    "injectivity_per_segment",
    "interior_pixel",
    "masks_score_map",
    "mean_object_scores",
    "mean_over_images",
    "normalized_covering",
    "object_score",
    "panoptic_quality_scene",
    "query_pairs",
    "segmentation_injectivity",
    "view_consistency",
]
