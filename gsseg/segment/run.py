"""``gsseg segment RUN``: click selections and hierarchy cuts written into ``RUN/segments/``,
per-view label maps and click score maps (``RUN/scores/<stem>.npy``)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import torch

from gsseg.errors import GssegError
from gsseg.segment.clicks import Click
from gsseg.segment.cuts import (
    Cut,
    SegmentsDir,
    cut_entry,
    cut_name,
    nest_cuts,
    replace_dir,
    segment_parents,
    write_cut_files,
)
from gsseg.segment.labelmaps import render_label_map, write_label_png
from gsseg.utils.atomic import atomic_path
from gsseg.utils.device import resolve_device

if TYPE_CHECKING:
    from gsseg.data.dataset import SceneDataset
    from gsseg.features.record import FeatureRecord
    from gsseg.gaussians.scene import GaussianScene
    from gsseg.render.tables import TableCache

Split = Literal["train", "test", "all"]
SPLITS: tuple[str, ...] = get_args(Split)


@dataclass
class SegmentContext:
    """A run's Gaussians, identity features and cameras, with a lazy table cache over all views."""

    run_root: Path
    scene: GaussianScene  # with features
    record: FeatureRecord
    dataset: SceneDataset
    tables: TableCache  # over dataset.cameras("all")
    device: torch.device

    @property
    def kind(self) -> str:
        return self.record.info.kind

    @property
    def features(self) -> torch.Tensor:
        """[N,D] the identity features (``load_context`` refuses a run without them)."""
        assert self.scene.features is not None
        return self.scene.features

    def views(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise GssegError(f"unknown views {split!r}; use one of {', '.join(SPLITS)}")
        return self.dataset.names(split)


def load_context(run_root: str | Path, device: str = "auto", max_tables: int = 4) -> SegmentContext:
    """Load ``RUN/scene.ply`` + ``RUN/features.pt`` and the run's dataset cameras (GssegError
    when the run has no features or its dataset is gone)."""
    from gsseg.data import load_dataset
    from gsseg.features import load_run_scene
    from gsseg.render.tables import TableCache
    from gsseg.run.run_dir import RunDir
    from gsseg.utils.memory import auto_budget_bytes

    run = RunDir(run_root)
    cfg = run.read_config()
    scene, record = load_run_scene(run.root)
    assert record is not None  # require_features: a run without features raised a GssegError
    dev = resolve_device(device)
    scene = scene.to(dev)
    ds = load_dataset(cfg.dataset, downscale=cfg.downscale)
    tables = TableCache(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        ds.cameras("all").to(dev),
        max_tables=max_tables,
        max_bytes=auto_budget_bytes(),
    )
    return SegmentContext(run.root, scene, record, ds, tables, dev)


def parse_threshold_range(text: str) -> list[float]:
    """``A:B:STEP`` -> [A, A+STEP, ..., <= B] (GssegError on malformed input)."""
    try:
        a, b, step = (float(v) for v in text.split(":"))
    except ValueError:
        raise GssegError(f"--thresholds {text!r}: expected A:B:STEP, e.g. 0.1:0.5:0.1") from None
    if step <= 0 or b < a:
        raise GssegError(f"--thresholds {text!r}: need STEP > 0 and B >= A")
    n = int(np.floor((b - a) / step + 1e-9)) + 1
    return [round(a + i * step, 6) for i in range(n)]


@dataclass
class SegmentRequest:
    """What ``gsseg segment`` computes; with no cut requested at all it does ``auto``."""

    clicks: list[Click] = field(default_factory=list)
    click_threshold: float | None = None
    thresholds: list[float] = field(default_factory=list)
    regions: list[int] = field(default_factory=list)
    auto: bool = False
    auto_levels: int = 3
    """How many stable levels --auto keeps at most."""
    argmax: bool = False
    """Logit features only: cut 'argmax', each Gaussian labelled by its most probable channel."""
    views: Split = "test"
    """Views to write label maps (and score maps) for."""
    k: int = 10
    """Neighbours per Gaussian in the hierarchy's kNN graph."""
    spatial_weight: float = 0.0
    """Share in [0,1] of spatial distance blended into the feature distance of graph edges."""
    min_size: int | None = None
    """Segments smaller than this many Gaussians are merged into the spatial neighbour they share the most
    boundary with, or dropped (default: 0.2% of the supervised Gaussians, >= 10)."""
    small: Literal["merge", "drop"] = "merge"
    """What happens to too-small segments: merge (into the spatial neighbour they share the most boundary
    with) or drop (label 0)."""
    linkage: Literal["average", "single"] = "average"
    """Hierarchy above near-identical Gaussians: average (average linkage of their mean features) or single
    (single linkage over the kNN graph, the UFF protocol)."""
    min_alpha: float = 0.0
    """Label-map pixels whose accumulated opacity is below this are 0 (unassigned)."""
    show_progress: bool = True

    def wants_hierarchy(self) -> bool:
        return bool(self.thresholds or self.regions or self.auto)

    def validate(self, kind: str) -> None:
        for t in self.thresholds:
            if not 0.0 <= t <= 1.0:
                raise GssegError(f"threshold {t} out of range: feature distances lie in [0,1]")
        for n in self.regions:
            if n < 1:
                raise GssegError(f"--regions {n}: the number of regions must be >= 1")
        if self.click_threshold is not None and not 0.0 <= self.click_threshold <= 1.0:
            raise GssegError(f"--click-threshold {self.click_threshold}: scores lie in [0,1]")
        if self.argmax and kind != "logits":
            raise GssegError(
                "--argmax needs logit features (object-field / clustering objectives); "
                "these features are embeddings: use --threshold, --regions or --auto"
            )
        if self.auto_levels < 1:
            raise GssegError("--auto-levels must be >= 1")
        if self.k < 1:
            raise GssegError("--k must be >= 1")
        if not 0.0 <= self.spatial_weight <= 1.0:
            raise GssegError("--spatial-weight must be in [0,1]")
        if not 0.0 <= self.min_alpha <= 1.0:
            raise GssegError(f"--min-alpha {self.min_alpha}: must be in [0,1]")
        if self.small not in ("merge", "drop"):
            raise GssegError(f"--small {self.small!r}: use merge or drop")
        if self.linkage not in ("average", "single"):
            raise GssegError(f"--linkage {self.linkage!r}: use average or single")


def click_selection(
    ctx: SegmentContext, clicks: list[Click], threshold: float | None
) -> tuple[torch.Tensor, np.ndarray, float]:
    """(scores [N], selected [N] bool, threshold used) of click queries; GssegError if nothing is selected.

    Without ``threshold``: embeddings use the threshold chosen from the click's score distribution
    (:func:`gsseg.segment.threshold.click_threshold`), logits the probability 0.5."""
    from gsseg.features.coverage import supervised_gaussians
    from gsseg.segment.scores import DEFAULT_SELECT_THRESHOLD, scores_from_clicks
    from gsseg.segment.threshold import click_threshold

    scores = scores_from_clicks(ctx.scene, ctx.record, clicks, ctx.tables)
    thr = DEFAULT_SELECT_THRESHOLD[ctx.kind] if threshold is None else float(threshold)
    if threshold is None and ctx.kind == "embedding":
        auto = click_threshold(
            scores.detach().cpu().numpy(),
            supervised_gaussians(ctx.record.coverage, len(ctx.scene)),
            ctx.scene.means.detach().cpu().numpy(),
        )
        thr = thr if auto is None else auto
    selected = (scores >= thr).cpu().numpy()
    if not selected.any():
        raise GssegError(
            f"the clicks select no Gaussian at threshold {thr:g} "
            f"(highest score {float(scores.max()):.3f}); "
            "lower --click-threshold or click elsewhere"
        )
    return scores, selected, thr


def hierarchy_cuts(ctx: SegmentContext, req: SegmentRequest) -> tuple[list[Cut], dict]:
    """Cuts of the scene hierarchy asked for by ``req`` (nested, coarsest first) and the hierarchy settings.

    With ``small="merge"`` (the default) segments under the minimum size (default
    :func:`gsseg.segment.merge.segment_min_size`, a share of the supervised Gaussians) join the
    spatial neighbour they share the most boundary with (:mod:`gsseg.segment.merge`)."""
    from gsseg.features.coverage import supervised_gaussians
    from gsseg.segment.hierarchy import build_hierarchy
    from gsseg.segment.merge import SpatialAdjacency, merge_small, segment_min_size

    min_size = req.min_size
    if min_size is None:
        min_size = segment_min_size(int(supervised_gaussians(ctx.record.coverage, len(ctx.scene)).sum()))
    h = build_hierarchy(
        ctx.scene,
        ctx.record,
        k=req.k,
        spatial_weight=req.spatial_weight,
        min_size=min_size,
        small=req.small,
        linkage=req.linkage,
    )
    settings = {
        "k": req.k,
        "spatial_weight": req.spatial_weight,
        "min_size": h.min_size,
        "small": req.small,
        "merge": "spatial neighbour" if req.small == "merge" else None,
        "linkage": req.linkage,
        "leaves": h.num_leaves,
    }
    specs: dict[str, tuple[str, float, float]] = {}
    if req.auto:
        thresholds = h.auto_thresholds(req.auto_levels)
        if not thresholds:
            raise GssegError(
                "the hierarchy has no stable level with two or more segments (the features do not "
                "separate anything); check the feature stage or use --regions N"
            )
        for i, t in enumerate(thresholds):
            specs.setdefault(cut_name("auto", i), ("auto", i, t))
    for n in req.regions:
        specs.setdefault(cut_name("regions", n), ("regions", n, h.cut_regions(n)[1]))
    for t in req.thresholds:
        specs.setdefault(cut_name("threshold", t), ("threshold", t, t))
    order = sorted(specs, key=lambda name: -specs[name][2])  # coarsest first (stable for equal thresholds)
    adjacency = None
    if req.small == "merge":
        means = ctx.scene.means.detach().cpu().numpy()
        adjacency = SpatialAdjacency(means if h.leaf_gaussians is None else means[h.leaf_gaussians])
    cuts: list[Cut] = []
    coarser = None
    for name in order:
        kind, value, t = specs[name]
        if adjacency is None:
            labels = h.cut_threshold(t)
        else:
            leaf = merge_small(h.leaf_regions(t), adjacency, h.min_size, coarser)
            coarser = leaf
            labels = h.per_gaussian(leaf)
        cuts.append(Cut(name, kind, value, labels, t, info={"hierarchy": settings}))
    nest_cuts(cuts)
    fill_thin_gaussians(ctx, h, cuts)
    return cuts, settings


def fill_thin_gaussians(ctx: SegmentContext, h, cuts: list[Cut]) -> None:
    """Give the Gaussians the hierarchy left out (seen, but covered thinly by the masks) the labels
    of their well-observed neighbours in every cut (:mod:`gsseg.segment.fill`), in place; each
    cut's ``info`` records how many were filled and how many stay unassigned (never seen)."""
    from gsseg.segment.fill import choose_donors, seen_gaussians

    n = len(ctx.scene)
    seen = seen_gaussians(ctx.record.coverage, n)
    donors = None
    if cuts and h.leaf_gaussians is not None:
        fillable = seen.copy()
        fillable[h.leaf_gaussians] = False
        finest = min(cuts, key=lambda c: math.inf if c.threshold is None else c.threshold)  # all have one
        donors = choose_donors(ctx.scene.means.detach().cpu().numpy(), finest.labels, fillable)
    for c in cuts:
        if donors is not None and len(donors):
            c.labels = donors.fill(c.labels)
        c.info["filled_from_neighbours"] = 0 if donors is None else len(donors)
        c.info["unassigned"] = int((c.labels == 0).sum())
        c.info["never_seen"] = int((~seen).sum())


def segment_run(run_root: str | Path, req: SegmentRequest, device: str = "auto") -> dict:
    """Compute the requested cuts and write them (see module doc); returns a summary dict.
    Another process writing the run (``RUN/.lock``) makes it fail with a GssegError."""
    from gsseg.utils.run_lock import folder_lock

    ctx = load_context(run_root, device)
    req.validate(ctx.kind)
    with folder_lock(ctx.run_root, "segment", create=False):
        return _segment(ctx, req)


def _segment(ctx: SegmentContext, req: SegmentRequest) -> dict:
    """The body of :func:`segment_run`, run while holding the run's lock."""
    from gsseg.segment.argmax import argmax_labels
    from gsseg.segment.scores import render_score_map
    from gsseg.utils.progress import NullProgress, progress_bar

    if not (req.clicks or req.wants_hierarchy() or req.argmax):
        req = dataclasses.replace(req, auto=True)
    views = ctx.views(req.views)
    view_set = set(views)
    cuts: list[Cut] = []
    scores = None
    if req.clicks:
        scores, selected, thr = click_selection(ctx, req.clicks, req.click_threshold)
        cuts.append(
            Cut("click", "click", thr, selected.astype(np.int32), info={"clicks": [str(c) for c in req.clicks]})
        )
    if req.argmax:
        cuts.append(Cut("argmax", "argmax", 0.0, argmax_labels(ctx.features)))
    hier: list[Cut] = []
    if req.wants_hierarchy():  # one long step on big scenes: the plain ticker still says it is running
        with progress_bar(transient=True) if req.show_progress else NullProgress() as bar:
            task = bar.add_task("hierarchy", total=1, info=f"{len(ctx.scene)} Gaussians", unit="step")
            hier, _ = hierarchy_cuts(ctx, req)
            bar.update(task, advance=1)
    cuts = hier + cuts
    by_name = {c.name: c for c in cuts}
    parents = {c.name: segment_parents(c.labels, by_name[c.parent].labels) if c.parent else {} for c in cuts}

    segments = SegmentsDir(ctx.run_root)
    score_views = list(dict.fromkeys(views + [c.pixel()[0] for c in req.clicks if not c.is_point]))
    with contextlib.ExitStack() as stack:
        folders = {c.name: stack.enter_context(replace_dir(segments.cut_dir(c.name))) for c in cuts}
        for c in cuts:
            write_cut_files(folders[c.name], c, views, parents[c.name])
        todo = list(dict.fromkeys(views + (score_views if scores is not None else [])))
        with progress_bar(transient=True) if req.show_progress else NullProgress() as bar:
            task = bar.add_task("label maps", total=len(todo), info="", unit="view")
            for view in todo:
                table = ctx.tables.get(view)
                if view in view_set:
                    for c in cuts:
                        label_map = render_label_map(table, c.labels, req.min_alpha)
                        write_label_png(folders[c.name] / f"{view}.png", label_map)
                if scores is not None and view in score_views:
                    with atomic_path(ctx.run_root / "scores" / f"{view}.npy") as tmp:
                        np.save(tmp, render_score_map(table, scores.detach()))
                bar.update(task, advance=1, info=view)
    index = segments.update_index([cut_entry(c, views) for c in cuts])
    return {
        "run": str(ctx.run_root),
        "objective": ctx.record.info.objective,
        "kind": ctx.kind,
        "gaussians": len(ctx.scene),
        "views": len(views),
        "cuts": [
            {k: e[k] for k in ("name", "kind", "value", "threshold", "segments", "parent")}
            for e in index["cuts"]
            if e["name"] in by_name
        ],
        "scores": len(score_views) if scores is not None else 0,
        "selected": int((by_name["click"].labels > 0).sum()) if "click" in by_name else None,
    }
