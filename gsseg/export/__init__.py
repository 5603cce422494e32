"""Export of segmented scenes: per-object vanilla INRIA PLYs, the rest of the scene, a labels
sidecar and a ``segments.json`` manifest."""

from gsseg.export.objects import export_segments, segment_color
from gsseg.export.run import export_run
from gsseg.export.select import parse_ids, segments_under_clicks

__all__ = ["export_run", "export_segments", "parse_ids", "segment_color", "segments_under_clicks"]
