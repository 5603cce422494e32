"""``gsseg export RUN --out DIR``: resolve the cut and the selection of a run, then export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gsseg.errors import GssegError
from gsseg.export.formats import check_formats
from gsseg.export.objects import export_segments
from gsseg.export.select import segments_under_clicks
from gsseg.segment.clicks import Click
from gsseg.segment.cuts import SegmentsDir


def export_run(
    run_root: str | Path,
    out_dir: str | Path,
    cut: str | None = None,
    objects: list[int] | None = None,
    clicks: list[Click] | None = None,
    click_threshold: float | None = None,
    device: str = "auto",
    show_progress: bool = False,
    formats: list[str] | None = None,
    with_labels: bool = False,
    keep_outliers: bool = False,
) -> dict[str, Any]:
    """Export a run's segments; returns the manifest.

    Without clicks: the segments ``objects`` (default all) of ``cut`` (default: the coarsest
    auto cut of the latest ``gsseg segment``). Clicks with a cut: the cut's segments under the
    clicks. Clicks without a cut: the Gaussians the click query selects, exported as object 1.
    formats, with_labels, keep_outliers: see :func:`export_segments`.
    """
    from gsseg.run.run_dir import RunDir

    run = RunDir(run_root)
    formats = check_formats(formats)
    if objects and clicks:
        raise GssegError("give either --objects or --click, not both")
    if clicks and cut is None:
        from gsseg.segment.run import click_selection, load_context

        ctx = load_context(run.root, device)
        _, picked, thr = click_selection(ctx, clicks, click_threshold)
        labels = picked.astype(np.int32)
        source = {"run": str(run.root), "clicks": [str(c) for c in clicks], "click_threshold": thr}
        return export_segments(
            ctx.scene.to("cpu"),
            labels,
            out_dir,
            [1],
            None,
            "click",
            source,
            show_progress,
            formats,
            with_labels,
            keep_outliers,
        )

    from gsseg.features import load_run_scene

    segments = SegmentsDir(run.root)
    scene, _ = load_run_scene(run.root, require_features=False)
    name = cut or segments.default_cut()
    labels = segments.labels(name, len(scene))
    entry = segments.entry(name)
    parents = {int(k): int(v) for k, v in entry.get("segment_parents", {}).items()}
    selected = objects
    if clicks:
        from gsseg.segment.run import load_context

        ctx = load_context(run.root, device)
        selected = segments_under_clicks(clicks, labels, ctx.tables, ctx.scene.means)
        if not selected:
            raise GssegError(f"the clicks hit no segment of cut {name!r} (only unassigned Gaussians or background)")
    source = {
        "run": str(run.root),
        "cut_kind": entry.get("kind"),
        "cut_value": entry.get("value"),
        "parent_cut": entry.get("parent"),
        "filled_from_neighbours": entry.get("filled_from_neighbours"),
        "never_seen": entry.get("never_seen"),
    }
    if clicks:
        source["clicks"] = [str(c) for c in clicks]
    return export_segments(
        scene,
        labels,
        out_dir,
        selected,
        parents or None,
        name,
        source,
        show_progress,
        formats,
        with_labels,
        keep_outliers,
    )
