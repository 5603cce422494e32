"""Feature-stage speed: N steps of each objective on a built-in scene (frozen geometry).

The geometry is not trained here (the RGB stage has its own benchmark): Gaussians are splatted
from the scene's depth maps (every ``--splat-every``-th training view, every 2nd pixel), which
gives a realistic Gaussian count and coverage in seconds. Masks come from the ``simulated``
source (SAM-like noise from the ground truth). Timed: the whole stage of each objective,
including building every view's contribution table on first use.

Run: ``python benchmarks/bench_features.py --json`` (add ``--write`` to update RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN, END = "<!-- features:begin -->", "<!-- features:end -->"


def prepare(workdir: Path, args) -> tuple:
    """Dataset with simulated masks and a depth-splatted scene: (dataset, scene, seconds)."""
    from gsseg.data import load_dataset
    from gsseg.gaussians.init import init_from_depth
    from gsseg.masks.runner import SourceOptions, make_source, run_source
    from gsseg.synth import make_scene

    t0 = time.perf_counter()
    data = workdir / f"{args.scene}_{args.width}x{args.height}"
    if not (data / "transforms_train.json").is_file():
        make_scene(
            data,
            scene=args.scene,
            seed=args.seed,
            width=args.width,
            height=args.height,
            views=args.views,
            test_views=args.test_views,
            show_progress=False,
        )
    ds = load_dataset(data)
    run_source(
        ds,
        make_source("simulated", SourceOptions(noise=args.noise, seed=args.seed)),
        split="train",
        show_progress=False,
    )
    views = ds.names("train")[:: args.splat_every]
    scene, _ = init_from_depth(ds, views, stride=2, size=0.8)
    return ds, scene, time.perf_counter() - t0


def bench_objective(name: str, ds, scene, workdir: Path, args) -> dict:
    from gsseg.config.train import TrainConfig
    from gsseg.gaussians.ply import write_ply
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, run_training

    run = RunDir(workdir / f"run_{name}")
    shutil.rmtree(run.root, ignore_errors=True)  # a fresh run every time
    run.root.mkdir(parents=True)
    cfg = TrainConfig(dataset=str(ds.root), stages=["features"])
    cfg.features.objective, cfg.features.iters = name, args.iters
    cfg.features.checkpoint_every = args.iters  # one checkpoint at the end, like a normal run's last one
    write_ply(run.scene_ply, scene)
    cpu0 = time.process_time()
    summary = run_training(cfg, run, StageOptions(resume=False, show_progress=not args.json), ds=ds)[0]
    cpu_s = time.process_time() - cpu0
    return {
        "objective": name,
        "steps": summary["steps"],
        "updates": summary["updates"],
        "seconds": round(summary["seconds"], 2),
        "steps_per_s": round(summary["updates"] / summary["seconds"], 1),
        "cpu_seconds": round(cpu_s, 2),
        "target_s": 60.0,
        "meets_target": summary["seconds"] * 2000 / max(args.iters, 1) <= 60.0,
        "cpu_meets_target": cpu_s * 2000 / max(args.iters, 1) <= 60.0,
    }


def write_results(result: dict) -> None:
    rows = "\n".join(
        f"| {r['objective']} | {r['steps']} | {r['seconds']:.1f} | {r['steps_per_s']:.1f} | "
        f"{'yes' if r['meets_target'] else 'no'} | {r['cpu_seconds']:.1f} | "
        f"{'yes' if r['cpu_meets_target'] else 'no'} |"
        for r in result["objectives"]
    )
    text = (
        f"{BEGIN}\n## Feature stage (`benchmarks/bench_features.py`)\n\n"
        f"Scene {result['scene']} {result['size']}, {result['gaussians']} Gaussians (depth-splatted), "
        f"{result['train_views']} training views, simulated masks ({result['noise']}); CPU, "
        f"{result['threads']} torch thread(s); load average {result['load_before']:.1f} before / "
        f"{result['load_after']:.1f} after on a {result['cpus']}-core machine shared with other jobs.\n\n"
        "Wall seconds depend on the load; CPU seconds (process time of the stage, one thread) are what "
        "the stage costs on an idle core.\n\n"
        "| objective | steps | wall s | steps/s | wall ≤ 60 s / 2000 steps | CPU s | CPU ≤ 60 s |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n{END}"
    )
    old = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    from gsseg.utils.atomic import atomic_open

    with atomic_open(RESULTS, "w") as f:
        f.write(new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--write", action="store_true", help="update the feature section of benchmarks/RESULTS.md")
    p.add_argument("--objectives", default="contrastive,ultrametric")
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--scene", default="tabletop")
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--views", type=int, default=32)
    p.add_argument("--test-views", type=int, default=8)
    p.add_argument("--splat-every", type=int, default=4, help="splat Gaussians from every k-th training view")
    p.add_argument("--noise", default="medium")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep the dataset and runs here (default: a temp dir)")
    args = p.parse_args(argv)

    import torch

    from gsseg.config.train import FeatureStageConfig

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()[0]
        ds, scene, prep_s = prepare(workdir, args)
        results = [bench_objective(name, ds, scene, workdir, args) for name in args.objectives.split(",")]
        result = {
            "scene": args.scene,
            "size": f"{args.width}x{args.height}",
            "gaussians": len(scene),
            "train_views": len(ds.names("train")),
            "noise": args.noise,
            "prepare_s": round(prep_s, 1),
            "threads": FeatureStageConfig().threads or torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "machine": platform.machine(),
            "objectives": results,
        }
    if args.write:
        write_results(result)
    if args.json:
        print(json.dumps(result))
    else:
        for r in results:
            print(f"{r['objective']:>12}: {r['steps']} steps in {r['seconds']:.1f} s ({r['steps_per_s']:.1f} steps/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
