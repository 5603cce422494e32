"""The prompts stage of a run: prompts -> per-view labels at the table resolution, what the
prompted objectives (``object-field``, ``vote``) receive, and the run's depth probe at that
resolution (``clustering``'s "objects" granularity).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsseg.data.cameras import Cameras
from gsseg.errors import GssegError, file_error
from gsseg.gaussians.scene import GaussianScene
from gsseg.prompts.lifting import SurfaceProbe, resized_cameras
from gsseg.prompts.propagation import propagate
from gsseg.prompts.spec import PromptOptions, PromptSpec


@dataclass
class RunPrompts:
    """Prompts propagated over a run's training views.

    spec: the prompts as given; points [M,3] and point_objects [M] after lifting clicks;
    labels: view -> [H,W] int64 at the table resolution (-1 ignore, 0 background, k object);
    skipped: view -> reason.
    """

    spec: PromptSpec
    points: np.ndarray
    point_objects: np.ndarray
    labels: dict[str, np.ndarray]
    skipped: dict[str, str]

    def summary(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "lifted_points": self.points.tolist(),
            "lifted_objects": self.point_objects.tolist(),
            "views": sorted(self.labels),
            "skipped": dict(self.skipped),
        }


def load_run_geometry(run_root: Path | None):
    """The frozen scene of a run (``RUN/scene.ply``); GssegError when there is none."""
    from gsseg.gaussians.ply import read_ply

    if run_root is None:
        raise GssegError("prompted objectives need a run directory with a trained scene (RUN/scene.ply)")
    ply = Path(run_root) / "scene.ply"
    if not ply.is_file():
        raise file_error(
            ply, "not found: prompts are lifted with the rendered depth of the trained scene; run the rgb stage first"
        )
    return read_ply(ply)


def table_cameras(ctx) -> Cameras:
    """The training cameras of ``ctx.views`` (a FeatureContext) at the table resolution
    (``ctx.width`` x ``ctx.height``)."""
    full = ctx.dataset.cameras("train")
    full = full[[full.index_of(v) for v in ctx.views]]
    return resized_cameras(full, ctx.width, ctx.height)


def run_surface_probe(ctx, scene: GaussianScene) -> SurfaceProbe:
    """Rendered depth of the frozen ``scene`` (a GaussianScene) in the views of ``ctx`` at the table
    resolution (what the trainer hands objectives as ``FeatureContext.surface``; lazy per view)."""
    return SurfaceProbe.from_scene(scene.to("cpu"), table_cameras(ctx))


def _photo_uint8(ds, view: str) -> np.ndarray:
    """[H,W,3] uint8 training photo of ``view`` (what SAM takes)."""
    return np.clip(np.rint(ds.image(view).numpy() * 255.0), 0, 255).astype(np.uint8)


def propagate_for_run(ctx, options: PromptOptions, scene: GaussianScene) -> RunPrompts:
    """Lift and propagate ``options``' prompts to every view of ``ctx`` (a FeatureContext) with the
    rendered depth of the frozen ``scene`` (a GaussianScene; the trainer's, see
    :func:`load_run_geometry`): what the trainer hands prompted objectives as ``ctx.prompts``.

    Clicks (in any view, train or test) are lifted at the dataset's image resolution; masks are built
    at the table resolution (``ctx.height`` x ``ctx.width``) from SAM (when a checkpoint is given) or
    ``ctx.masks(view)``.
    """
    spec = options.spec()
    scene = scene.to("cpu")
    ds = ctx.dataset
    probe = SurfaceProbe.from_scene(scene, table_cameras(ctx))
    lift_probe = SurfaceProbe.from_scene(scene, ds.cameras("all"), max_tables=2)  # clicks in any view
    sam, image_of = None, None
    if options.sam_checkpoint:
        from gsseg.masks.sources.sam_model import load_sam
        from gsseg.masks.sources.sam_prompts import SamPrompter

        device = "cuda" if torch.device(ctx.device).type == "cuda" else "cpu"
        sam = SamPrompter(load_sam(options.sam_checkpoint, options.sam_model_type, device=device))
        image_of = functools.partial(_photo_uint8, ds)

    elif ctx.store is None or not any(ctx.store.has(v) for v in ctx.views):
        raise GssegError(f"{ds.masks_dir}: prompted objectives need masks (run `gsseg masks DATA`) or --sam-checkpoint")
    points, objects, results = propagate(
        spec,
        probe,
        list(ctx.views),
        float(ds.scene_scale),
        options.propagation(),
        masks_of=ctx.masks,
        sam=sam,
        image_of=image_of,
        lift_probe=lift_probe,
    )
    labels = {r.view: r.labels for r in results if r.labels is not None}
    skipped = {r.view: r.reason for r in results if r.labels is None}
    if not labels:
        raise GssegError(
            "no training view sees enough of the prompts to build an object mask "
            f"({len(skipped)} views skipped); click on a visible object or lower --set min_visible"
        )
    return RunPrompts(spec, points, objects, labels, skipped)
