"""Evaluate a run directory on its dataset's test views.

Metrics (each returns {} when it does not apply to the run):
- ``psnr``: test-view PSNR of the RGB stage (always);
- ``hierarchy``: embedding features: NC per ground-truth level over the hierarchy's cuts, SI,
  VC on the rotated test-view pairs, OmniSeg3D's two-level point query;
- ``prompted``: object-field / vote records: SANeRF-HQ prompted-object mIoU and accuracy;
- ``panoptic``: flat logits (clustering): PQ^scene, RQ, SQ, mIoU;
- ``input``: the input 2D masks scored with the NC and point-query protocols (training views);
- ``oracle`` (on request): the same protocols on Gaussians labelled with the ground truth, the
  ceiling any lifting method reaches on the run's geometry (scored with gsseg's own variants);
- ``oracle_tree`` (on request): the hierarchy, cuts and label maps of the segmentation stage fed
  with features made from those ground-truth labels (what that stage alone loses).

``settings.protocol`` picks how NC / SI / VC, the point query, PQ^scene and the prompted-object
IoU are computed: "official" (default; ``gsseg.eval.official``, the papers' evaluation code,
tested against ``shared/parity``) or "gsseg" (gsseg's own variants, kept for comparison with
older results: first-pixel VC, best threshold per view, exclusive NC). ``result["protocol"]``
says which.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from gsseg.errors import GssegError, file_error
from gsseg.eval.context import EvalContext, EvalSettings
from gsseg.run.run_dir import RunDir


def _psnr_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.psnr import psnr_per_view

    ds = ctx.ds
    if len(ds.cameras("test")) == 0:
        raise GssegError(f"{ds.root}: the dataset has no test views to evaluate")
    per_view = psnr_per_view(ctx.scene, ds, "test", ctx.run.render_background(), ctx.backend, ctx.progress)
    return {"psnr": sum(per_view.values()) / len(per_view), "psnr_per_view": per_view}


def _hierarchy_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.lifted import hierarchy_metrics

    return hierarchy_metrics(ctx)


def _prompted_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.lifted import prompted_metrics

    return prompted_metrics(ctx)


def _panoptic_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.lifted import panoptic_metrics

    return panoptic_metrics(ctx)


def _input_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.input_masks import input_mask_metrics

    return input_mask_metrics(ctx)


def _oracle_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.oracle import oracle_metrics

    return oracle_metrics(ctx)


def _oracle_tree_metric(ctx: EvalContext) -> dict:
    from gsseg.eval.oracle import oracle_tree_metrics

    return oracle_tree_metrics(ctx)


DEFAULT_METRICS = ("psnr", "hierarchy", "prompted", "panoptic", "input")


def metric_functions() -> dict[str, Callable[[EvalContext], dict]]:
    """Metric name -> fn(ctx) returning a dict of results ({} when it does not apply).

    ``oracle`` and ``oracle_tree`` (the ground-truth-labelled Gaussians of the run's geometry, for
    datasets with ``gt/`` and ``hierarchy.json``) run only when asked for; the others are the default."""
    return {
        "psnr": _psnr_metric,
        "hierarchy": _hierarchy_metric,
        "prompted": _prompted_metric,
        "panoptic": _panoptic_metric,
        "input": _input_metric,
        "oracle": _oracle_metric,
        "oracle_tree": _oracle_tree_metric,
    }


def check_views(run: RunDir, ds) -> None:
    """GssegError when the run was trained on other views (names or image size) than ``ds`` has."""
    import json

    if not run.rgb_summary.is_file():
        return
    try:
        summary = json.loads(run.rgb_summary.read_text())
    except ValueError:
        raise file_error(run.rgb_summary, "malformed RGB stage summary (delete it and re-run `gsseg train`)") from None
    views = summary.get("views") if isinstance(summary, dict) else None
    if not isinstance(views, dict):
        return
    for split in ("train", "test"):
        recorded = views.get(split)
        if not isinstance(recorded, list):
            continue
        have = ds.names(split)
        if set(recorded) != set(have):
            missing = sorted(set(recorded) - set(have))
            extra = sorted(set(have) - set(recorded))
            detail = "; ".join(
                s
                for s in (
                    f"run views missing from the dataset: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
                    if missing
                    else "",
                    f"dataset views the run never saw: {', '.join(extra[:4])}{' ...' if len(extra) > 4 else ''}"
                    if extra
                    else "",
                )
                if s
            )
            raise GssegError(
                f"{run.root}: its {split} views do not match the dataset {ds.root} ({detail}); "
                "pass the dataset the run was trained on with --data"
            )
    size = views.get("size")
    if isinstance(size, list) and len(size) == 2 and ds.names("train"):
        have_size = list(ds.size(ds.names("train")[0]))
        if have_size != [int(v) for v in size]:
            raise GssegError(
                f"{run.root}: trained on {size[0]}x{size[1]} images but {ds.root} gives "
                f"{have_size[0]}x{have_size[1]} at downscale {ds.downscale:g}"
            )


def evaluate_run(
    run_path: str | Path,
    data: str | Path | None = None,
    metrics: list[str] | None = None,
    backend: str = "auto",
    show_progress: bool = True,
    settings: EvalSettings | None = None,
) -> dict:
    """One flat dict of results (keys as listed in the module doc; ``psnr_per_view`` per view,
    ``timings`` in seconds per metric)."""
    from gsseg.data import load_dataset
    from gsseg.features import load_run_scene
    from gsseg.utils.progress import progress_bar

    settings = settings or EvalSettings()
    settings.validate()
    run = RunDir(run_path)
    cfg = run.read_config()
    if not run.scene_ply.is_file():
        raise file_error(run.scene_ply, "not found: the RGB stage has not finished (run `gsseg train`)")
    data_path = Path(data) if data is not None else Path(cfg.dataset)
    if not data_path.exists():
        raise file_error(data_path, "dataset directory not found (pass --data to point to its new location)")
    ds = load_dataset(data_path, downscale=cfg.downscale)
    check_views(run, ds)
    scene, record = load_run_scene(run.root, require_features=False)
    fns = metric_functions()
    names = metrics or list(DEFAULT_METRICS)
    unknown = [m for m in names if m not in fns]
    if unknown:
        raise GssegError(f"unknown metric(s) {', '.join(unknown)}; available: {', '.join(fns)}")
    result: dict = {
        "run": str(run.root.resolve()),
        "dataset": str(data_path.resolve()),
        "gaussians": len(scene),
        "protocol": settings.protocol,
    }
    if settings.protocol == "official":
        result["protocol_mode"] = "exact" if settings.exact else "sampled"
    if record is not None:
        result["objective"] = record.info.objective
        result["feature_kind"] = record.info.kind

    def _run_all(progress) -> None:
        ctx = EvalContext(ds, run, scene, record, settings, backend, progress)
        for m in names:
            t0 = time.perf_counter()
            result.update(fns[m](ctx))
            ctx.timings[f"{m}_s"] = time.perf_counter() - t0
        result["timings"] = ctx.timings

    if show_progress:
        with progress_bar(transient=True) as progress:
            _run_all(progress)
    else:
        _run_all(None)
    return result
