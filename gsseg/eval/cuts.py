"""The cuts a hierarchy is scored by: the run's own hierarchy cuts (``RUN/segments``) or
horizontal cuts computed through the segmentation API, and their per-view label maps."""

from __future__ import annotations

import numpy as np

from gsseg.errors import GssegError


def select_plateaus(regions: np.ndarray, lengths: np.ndarray, max_cuts: int) -> np.ndarray:
    """Indices of at most ``max_cuts`` plateaus, spread evenly in log(region count).

    regions: [P] segments per plateau (distinct partitions); lengths: [P] threshold ranges
    (ties between equally close plateaus go to the longer one). Returns sorted indices.
    """
    regions = np.asarray(regions, dtype=np.float64)
    if len(regions) <= max_cuts:
        return np.arange(len(regions))
    targets = np.geomspace(max(regions.min(), 1.0), max(regions.max(), 1.0), max_cuts)
    chosen = set()
    log_r = np.log(np.maximum(regions, 1.0))
    for t in np.log(targets):
        dist = np.abs(log_r - t)
        order = np.lexsort((-np.asarray(lengths), dist))
        for i in order:
            if int(i) not in chosen:
                chosen.add(int(i))
                break
    return np.asarray(sorted(chosen), dtype=np.int64)


def computed_cuts(ctx) -> tuple[np.ndarray, list[str]]:
    """Horizontal cuts of the run's scene hierarchy: (labels [T,N] int32, names)."""
    from gsseg.segment import build_hierarchy

    h = build_hierarchy(
        ctx.scene,
        ctx.record,
        k=ctx.settings.hierarchy_k,
        spatial_weight=ctx.settings.spatial_weight,
        linkage=ctx.settings.linkage,
    )
    plats = [p for p in h.plateaus() if p.regions >= 1]
    if not plats:
        raise GssegError(f"{ctx.run.root}: the hierarchy of this run has no segment at any threshold")
    keep = select_plateaus(
        np.array([p.regions for p in plats]), np.array([p.length for p in plats]), ctx.settings.max_cuts
    )
    thresholds = [plats[i].middle for i in keep]
    labels = np.stack([h.cut_threshold(t) for t in thresholds]).astype(np.int32)
    return labels, [f"t{t:.4f}" for t in thresholds]


def segment_cuts(ctx) -> tuple[np.ndarray, list[str]] | None:
    """The hierarchy cuts stored in ``RUN/segments`` (those with a threshold), or None."""
    from gsseg.segment import SegmentsDir

    seg = SegmentsDir(ctx.run.root)
    if not seg.index_path.is_file():
        return None
    names = [c["name"] for c in seg.read_index()["cuts"] if c.get("threshold") is not None]
    if not names:
        return None
    labels = np.stack([seg.labels(n, len(ctx.scene)) for n in names]).astype(np.int32)
    return labels, names


def hierarchy_cuts(ctx) -> tuple[np.ndarray, list[str], str]:
    """(labels [T,N] int32, cut names, source "segments" | "computed") per ``ctx.settings.cuts``."""
    mode = ctx.settings.cuts
    if mode in ("auto", "segments"):
        found = segment_cuts(ctx)
        if found is not None:
            return found[0], found[1], "segments"
        if mode == "segments":
            raise GssegError(
                f"{ctx.run.root / 'segments'}: no hierarchy cuts; run `gsseg segment` or use --cuts computed"
            )
    labels, names = computed_cuts(ctx)
    return labels, names, "computed"


def view_label_maps(ctx, view: str, labels: np.ndarray) -> np.ndarray:
    """Label maps [T,H,W] int32 of every cut ``labels [T,N]`` in ``view`` (0 = unassigned)."""
    from gsseg.segment import render_label_map

    table = ctx.table(view)
    return np.stack([render_label_map(table, lab, ctx.settings.min_alpha) for lab in labels])
