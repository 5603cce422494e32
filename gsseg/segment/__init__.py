"""Segmentation of a run's Gaussians from their identity features: click queries, the
single-linkage scene hierarchy and its cuts, per-view label maps, ``RUN/segments/``."""

from gsseg.segment.argmax import argmax_labels
from gsseg.segment.clicks import Click, parse_click, parse_clicks
from gsseg.segment.cuts import Cut, SegmentsDir, cut_name, replace_dir, segment_parents
from gsseg.segment.graph import GraphConfig, KnnGraph, build_knn_graph
from gsseg.segment.hierarchy import SceneHierarchy, build_hierarchy, hierarchy_from_features, hierarchy_from_graph
from gsseg.segment.labelmaps import read_label_png, render_label_map, write_label_png
from gsseg.segment.run import SegmentContext, SegmentRequest, load_context, parse_threshold_range, segment_run
from gsseg.segment.scores import (
    feature_space,
    render_score_map,
    scores_from_clicks,
    scores_from_features,
    similarity,
)

__all__ = [
    "Click",
    "Cut",
    "GraphConfig",
    "KnnGraph",
    "SceneHierarchy",
    "SegmentContext",
    "SegmentRequest",
    "SegmentsDir",
    "argmax_labels",
    "build_hierarchy",
    "build_knn_graph",
    "cut_name",
    "feature_space",
    "hierarchy_from_features",
    "hierarchy_from_graph",
    "load_context",
    "parse_click",
    "parse_clicks",
    "parse_threshold_range",
    "read_label_png",
    "render_label_map",
    "render_score_map",
    "replace_dir",
    "scores_from_clicks",
    "scores_from_features",
    "segment_parents",
    "segment_run",
    "similarity",
    "write_label_png",
]
