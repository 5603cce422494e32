"""Run the training stages of a run directory in order (``rgb`` now; later stages plug in here).

Each stage is a function ``(ds, cfg, run, options) -> dict`` registered in ``stage_runners()``;
it resumes from its own checkpoints and writes its outputs into the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from gsseg.errors import GssegError
from gsseg.train.config import STAGES, TrainConfig
from gsseg.train.run_dir import RunDir
from gsseg.utils.atomic import write_json


@dataclass
class StageOptions:
    """Per-invocation options that are not part of the recorded config."""

    resume: bool = True
    show_progress: bool = True
    callbacks: list[Callable] = field(default_factory=list)


def run_rgb_stage(ds, cfg: TrainConfig, run: RunDir, opts: StageOptions) -> dict:
    """RGB stage: resume or initialise, train, write ``RUN/scene.ply``. Returns a summary dict."""
    from gsseg.gaussians.init import init_from_dataset, init_from_ply
    from gsseg.gaussians.ply import write_ply
    from gsseg.train.rgb import RGBTrainer

    trainer = RGBTrainer(ds, cfg.rgb, run, callbacks=opts.callbacks, show_progress=opts.show_progress)
    resumed = opts.resume and trainer.resume()
    source = "checkpoint" if resumed else None
    if not resumed:
        if cfg.init_ply:
            scene, source = init_from_ply(cfg.init_ply, drop_invalid=cfg.drop_invalid), "ply"
        else:
            scene, source = init_from_dataset(
                ds, sh_degree=cfg.rgb.sh_degree, init_opacity=cfg.rgb.init_opacity, init_scale=cfg.rgb.init_scale,
                random_count=cfg.rgb.init_random_count, random_extent=cfg.rgb.init_random_extent,
                seed=cfg.rgb.seed, force_random=cfg.rgb.init == "random",
                shell_points=cfg.rgb.init_shell_points, shell_radius=cfg.rgb.init_shell_radius)
            if cfg.rgb.init == "points" and not source.startswith("points"):
                raise GssegError(f"{ds.root}: init 'points' requested but the dataset has no sparse points")
        trainer.start(scene)
    result = trainer.train()
    write_ply(run.scene_ply, result.scene)
    summary = {"stage": "rgb", "init": source, "steps": result.steps, "resumed_from": result.resumed_from,
               "gaussians": len(result.scene), "background": list(result.background),
               "seconds": result.seconds, "scene_ply": str(run.scene_ply),
               "views": _views(ds)}
    write_json(run.rgb_summary, summary)
    return summary


def run_features_stage(ds, cfg: TrainConfig, run: RunDir, opts: StageOptions) -> dict:
    """Features stage (``gsseg/train/features.py``): identity features on the frozen scene."""
    from gsseg.train.features import run_features_stage as run_stage

    return run_stage(ds, cfg, run, opts)


def _views(ds) -> dict:
    """The views a stage trained on: train/test stems and the (width, height) of the first training view."""
    train = ds.names("train")
    return {"train": list(train), "test": list(ds.names("test")),
            "size": [int(v) for v in ds.size(train[0])] if train else None}


def stage_runners() -> dict[str, Callable[..., dict]]:
    return {"rgb": run_rgb_stage, "features": run_features_stage}


def check_stages(stages: list[str]) -> list[str]:
    """Validate stage names; GssegError naming the available ones otherwise."""
    for s in stages:
        if s not in STAGES:
            raise GssegError(f"stage {s!r} is not available in this version; available stages: {', '.join(STAGES)}")
    return stages


def run_training(cfg: TrainConfig, run: RunDir, opts: StageOptions | None = None, ds=None) -> list[dict]:
    """Record the config, load the dataset (unless given) and run ``cfg.stages`` in order."""
    from gsseg.data import load_dataset

    opts = opts or StageOptions()
    check_stages(cfg.stages)
    run.root.mkdir(parents=True, exist_ok=True)
    run.write_config(cfg)
    if ds is None:
        ds = load_dataset(cfg.dataset, downscale=cfg.downscale)
    runners = stage_runners()
    return [runners[s](ds, cfg, run, opts) for s in cfg.stages]


def clear_stage_outputs(run: RunDir, stages: list[str]) -> None:
    """Delete what ``stages`` wrote before (checkpoints, scene PLY) so a restart begins fresh."""
    for stage in stages:
        for _, p in run.list_checkpoints(stage):
            p.unlink(missing_ok=True)
        if stage == "rgb":
            run.scene_ply.unlink(missing_ok=True)
            run.rgb_summary.unlink(missing_ok=True)
        if stage == "features":
            run.features_pt.unlink(missing_ok=True)
            (run.root / "features.json").unlink(missing_ok=True)
