"""Run the training stages of a run directory in order (``rgb`` now; later stages plug in here).

Each stage is a function ``(ds, cfg, run, options) -> dict`` registered in ``stage_runners()``;
it resumes from its own checkpoints and writes its outputs into the run directory.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from gsseg.config.train import STAGES, TrainConfig
from gsseg.errors import GssegError
from gsseg.run.run_dir import RunDir
from gsseg.train.distributed import init_process_group
from gsseg.utils.atomic import remove_stale_temporaries, write_json


@dataclass
class StageOptions:
    """Per-invocation options that are not part of the recorded config."""

    resume: bool = True
    show_progress: bool = True
    callbacks: list[Callable] = field(default_factory=list)


def run_rgb_stage(ds, cfg: TrainConfig, run: RunDir, opts: StageOptions) -> dict:
    """RGB stage: resume or initialise, train, write ``RUN/scene.ply``; the summary (also written to
    ``RUN/rgb.json``) has the test-view PSNR and a warning when the run stopped far short of its steps.
    A ``representation: nerf`` run trains a radiance field instead (``gsseg/field/rgb.py``, ``RUN/field.pt``)."""
    if cfg.representation == "nerf":
        from gsseg.field.rgb import run_field_rgb_stage

        return run_field_rgb_stage(ds, cfg, run, opts)
    from gsseg.gaussians.init import init_from_dataset, init_from_ply
    from gsseg.gaussians.ply import write_ply
    from gsseg.run.schedule import schedule_warning
    from gsseg.train.rgb import RGBTrainer, held_out_psnr
    from gsseg.utils.progress import NullProgress, progress_bar

    trainer = RGBTrainer(ds, cfg.rgb, run, callbacks=opts.callbacks, show_progress=opts.show_progress)
    resumed = opts.resume and trainer.resume()
    source = "checkpoint" if resumed else None
    if not resumed:
        if cfg.init_ply:
            scene, source = init_from_ply(cfg.init_ply, drop_invalid=cfg.drop_invalid), "ply"
        else:
            scene, source = init_from_dataset(
                ds,
                sh_degree=cfg.rgb.sh_degree,
                init_opacity=cfg.rgb.init_opacity,
                init_scale=cfg.rgb.init_scale,
                random_count=cfg.rgb.init_random_count,
                random_extent=cfg.rgb.init_random_extent,
                seed=cfg.rgb.seed,
                force_random=cfg.rgb.init == "random",
                shell_points=cfg.rgb.init_shell_points,
                shell_radius=cfg.rgb.init_shell_radius,
                triangulate=cfg.rgb.init == "auto",
            )
            if cfg.rgb.init == "points" and not source.startswith("points"):
                raise GssegError(f"{ds.root}: init 'points' requested but the dataset has no sparse points")
        trainer.start(scene)
    result = trainer.train()
    write_ply(run.scene_ply, result.scene)
    with progress_bar(transient=True) if opts.show_progress else NullProgress() as progress:
        backend = "auto" if cfg.rgb.backend == "cuda" else cfg.rgb.backend  # test cameras live on the CPU
        held_out = held_out_psnr(result.scene, ds, result.background, backend, progress)
    warning = schedule_warning(result.steps, cfg.rgb.iters, cfg.rgb.time_limit_s)
    summary = {
        "stage": "rgb",
        "init": source,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "gaussians": len(result.scene),
        "background": list(result.background),
        "seconds": result.seconds,
        "scene_ply": str(run.scene_ply),
        "views": _views(ds),
        "iters": cfg.rgb.iters,
        "time_limit_s": cfg.rgb.time_limit_s,
        "test_psnr": held_out["psnr"] if held_out else None,  # mean dB over the test views
        "test_psnr_per_view": held_out["per_view"] if held_out else {},
        "warnings": [warning] if warning else [],
    }
    write_json(run.rgb_summary, summary)
    return summary


def run_features_stage(ds, cfg: TrainConfig, run: RunDir, opts: StageOptions) -> dict:
    """Features stage (``gsseg/train/features.py``): identity features on the frozen scene
    (``gsseg/field/features.py`` for a ``representation: nerf`` run)."""
    if cfg.representation == "nerf":
        from gsseg.field.features import run_field_features_stage

        return run_field_features_stage(ds, cfg, run, opts)
    from gsseg.train.features import run_features_stage as run_stage

    return run_stage(ds, cfg, run, opts)


def _views(ds) -> dict:
    """The views a stage trained on: train/test stems and the (width, height) of the first training view."""
    train = ds.names("train")
    return {
        "train": list(train),
        "test": list(ds.names("test")),
        "size": [int(v) for v in ds.size(train[0])] if train else None,
    }


DISTRIBUTED_STAGES = frozenset({"features"})  # stages every torchrun rank runs (data-parallel over views)


def stage_runners() -> dict[str, Callable[..., dict]]:
    return {"rgb": run_rgb_stage, "features": run_features_stage}


StageNames = TypeVar("StageNames", bound=Sequence[str])


def check_stages(stages: StageNames) -> StageNames:
    """Validate stage names (returned as given); GssegError naming the available ones otherwise."""
    for s in stages:
        if s not in STAGES:
            raise GssegError(f"stage {s!r} is not available in this version; available stages: {', '.join(STAGES)}")
    return stages


def run_training(
    cfg: TrainConfig, run: RunDir, opts: StageOptions | None = None, ds=None, clear: list[str] | tuple[str, ...] = ()
) -> list[dict]:
    """Load the dataset (unless given), lock the run, delete what the stages in ``clear`` wrote
    before, record the config and run ``cfg.stages`` in order.

    The dataset (and its mask files, for the features stage) is read before anything in RUN
    changes, so a broken input leaves the run as it was; a second writer of the same run is
    refused (``RUN/.lock``). Under torchrun, rank 0 holds the lock, cleans up, records the config
    and runs the other stages alone; every rank runs the ``DISTRIBUTED_STAGES``.
    """
    from gsseg.data import load_dataset
    from gsseg.utils.device import resolve_device
    from gsseg.utils.run_lock import folder_lock

    opts = opts or StageOptions()
    check_stages(cfg.stages)
    group = init_process_group(resolve_device(cfg.features.device).type)
    if ds is None:
        ds = load_dataset(cfg.dataset, downscale=cfg.downscale)
    if "features" in cfg.stages:
        from gsseg.masks.store import MaskStore

        store = MaskStore(ds.masks_dir)
        for name in ds.names("train"):  # a broken mask file fails here, before RUN changes
            if store.has(name):
                store.header(name)
    runners = stage_runners()
    with folder_lock(run.root, "train") if group.is_main else contextlib.nullcontext():
        if group.is_main:
            for folder in (run.root, run.checkpoints):
                remove_stale_temporaries(folder)  # left by killed writers; no other rank writes yet
            clear_stage_outputs(run, list(clear))
            run.write_config(cfg)
        summaries = []
        for s in cfg.stages:
            if s in DISTRIBUTED_STAGES:
                group.barrier()  # the other ranks wait for rank 0's earlier stages
                summaries.append(runners[s](ds, cfg, run, opts))
            elif group.is_main:
                summaries.append(runners[s](ds, cfg, run, opts))
        return summaries


DEPENDENT_STAGES = {"rgb": ("features",)}  # stage -> later stages computed from its outputs
DERIVED_FOLDERS = ("segments", "scores", "renders")  # made by segment / render from the geometry and features


def clear_stage_outputs(run: RunDir, stages: list[str]) -> list[Path]:
    """Delete what ``stages`` wrote before (checkpoints, scene PLY, features) so a restart begins
    fresh, and everything computed from them: restarting ``rgb`` also deletes the features, and
    either stage deletes ``RUN/segments``, ``RUN/scores`` and ``RUN/renders`` (``RUN/exports``, the
    user's files, is kept). Returns the paths removed."""
    stages = list(dict.fromkeys(stages + [d for s in stages for d in DEPENDENT_STAGES.get(s, ())]))
    files = {
        "rgb": [run.scene_ply, run.rgb_summary, run.root / "field.pt"],
        "features": [run.features_pt, run.root / "features.json", run.root / "field_features.pt"],
    }
    removed: list[Path] = []
    for stage in stages:
        for path in [p for _, p in run.list_checkpoints(stage)] + files.get(stage, []):
            if path.exists():
                path.unlink()
                removed.append(path)
    if stages:
        for name in DERIVED_FOLDERS:
            folder = run.root / name
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder)
                removed.append(folder)
    return removed
