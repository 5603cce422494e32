"""End-to-end demo: built-in scene → weight-free masks → RGB stage → identity features →
automatic hierarchy cuts → per-object PLYs → evaluation.

Every stage writes into ``OUT`` through the same library calls the CLI verbs use, and each is
skipped when its output already exists, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from gsseg.errors import GssegError


@dataclass
class DemoConfig:
    """Sizes and schedules of the demo (defaults: the full demo; tests shrink them)."""

    out: Path
    """Folder for the scene, run, segments and exported objects."""
    scene: str = "tabletop"
    """Built-in scene (see `gsseg synth --list`)."""
    seed: int = 0
    """Random seed."""
    width: int = 128
    """Image width of the built-in scene."""
    height: int = 96
    """Image height of the built-in scene."""
    views: int = 32
    """Training views."""
    test_views: int = 8
    """Test views (each also gets a partner rotated 10°)."""
    mask_source: str = "watershed"
    """2D mask source (`gsseg masks --source`): watershed or simulated need no weights."""
    rgb_iters: int = 3000
    """RGB-stage steps (also bounded by --rgb-time-limit)."""
    rgb_time_limit_s: float = 100.0
    """Stop the RGB stage after this many seconds."""
    objective: str = "contrastive"
    """Identity objective: contrastive or ultrametric."""
    feature_iters: int = 1500
    """Feature-stage steps."""
    auto_levels: int = 3
    """Automatic hierarchy cuts (`gsseg segment --auto`)."""
    show_progress: bool = True
    """Progress bars (--quiet turns them off)."""

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    @property
    def run_dir(self) -> Path:
        return self.out / "run"

    @property
    def export_dir(self) -> Path:
        return self.out / "objects"


@dataclass
class DemoResult:
    """What the demo produced: per-stage seconds, metrics and output paths."""

    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    objects: int = 0


def _stage(result: DemoResult, name: str, console: Console):
    """Context manager timing one stage and printing its name."""
    import contextlib

    @contextlib.contextmanager
    def timed():
        console.print(f"▶ {name}", style="bold cyan", markup=False, highlight=False)
        t0 = time.perf_counter()
        yield
        result.seconds[name] = time.perf_counter() - t0

    return timed()


def run_demo(cfg: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run every stage of the pipeline on a built-in scene into ``cfg.out``."""
    from gsseg.config.train import Stage, TrainConfig
    from gsseg.data import load_dataset
    from gsseg.eval.run_eval import evaluate_run
    from gsseg.export.run import export_run
    from gsseg.masks.runner import SourceOptions, make_source, run_source
    from gsseg.run.run_dir import RunDir
    from gsseg.segment.run import SegmentRequest, segment_run
    from gsseg.synth import make_scene
    from gsseg.train.pipeline import StageOptions, run_training

    console = console or Console(stderr=True)
    cfg.out.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    data, run = cfg.data_dir, RunDir(cfg.run_dir)

    with _stage(result, f"scene: built-in '{cfg.scene}' {cfg.width}x{cfg.height}, {cfg.views} views", console):
        if not (data / "scene.json").is_file() or not _scene_complete(data):
            make_scene(
                data,
                scene=cfg.scene,
                seed=cfg.seed,
                width=cfg.width,
                height=cfg.height,
                views=cfg.views,
                test_views=cfg.test_views,
                force=True,
                show_progress=cfg.show_progress,
            )
    ds = load_dataset(data)

    with _stage(result, f"masks: {cfg.mask_source} (weight-free)", console):
        run_source(
            ds,
            make_source(cfg.mask_source, SourceOptions(seed=cfg.seed)),
            split="train",
            show_progress=cfg.show_progress,
        )

    with _stage(result, f"train: RGB stage + '{cfg.objective}' identity features", console):
        if run.has_config():
            train_cfg = run.read_config()
        else:
            train_cfg = TrainConfig(dataset=str(data.resolve()), stages=["rgb", "features"])
            train_cfg.rgb.iters = cfg.rgb_iters
            train_cfg.rgb.time_limit_s = cfg.rgb_time_limit_s
            train_cfg.rgb.seed = cfg.seed
            train_cfg.features.objective = cfg.objective
            train_cfg.features.iters = cfg.feature_iters
            train_cfg.features.seed = cfg.seed
        # A finished stage is not re-entered: the RGB stage may have stopped at its time limit,
        # and continuing it would change the scene the features were trained on.
        finished: list[tuple[Stage, bool]] = [
            ("rgb", run.rgb_summary.is_file()),
            ("features", run.features_pt.is_file()),
        ]
        train_cfg.stages = [s for s, done in finished if not done]
        if train_cfg.stages:
            run_training(train_cfg, run, StageOptions(resume=True, show_progress=cfg.show_progress), ds=ds)

    with _stage(result, "segment: automatic hierarchy cuts", console):
        summary = segment_run(
            run.root,
            SegmentRequest(auto=True, auto_levels=cfg.auto_levels, views="test", show_progress=cfg.show_progress),
        )
    result.metrics["cuts"] = summary.get("cuts")

    with _stage(result, "export: one PLY per object", console):
        manifest = export_run(run.root, cfg.export_dir, show_progress=cfg.show_progress)
    result.objects = len(manifest.get("segments", []))

    with _stage(result, "evaluate: the papers' metrics on the test views", console):
        result.metrics.update(evaluate_run(run.root, show_progress=cfg.show_progress))

    result.paths = {
        "data": data,
        "run": run.root,
        "objects": cfg.export_dir,
        "segments": run.root / "segments",
        "scene_ply": run.scene_ply,
    }
    return result


def _scene_complete(data: Path) -> bool:
    import json

    try:
        return bool(json.loads((data / "scene.json").read_text()).get("complete", True))
    except (OSError, ValueError):
        raise GssegError(f"{data / 'scene.json'}: unreadable; delete {data} and run the demo again") from None
