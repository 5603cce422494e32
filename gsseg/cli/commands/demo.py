"""``gsseg demo``: the whole pipeline on a built-in scene, with a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gsseg.cli.parsing import NON_NEGATIVE, POSITIVE, SEED, SIDE, Range

SHOWN_METRICS = (
    ("psnr", "test-view PSNR (dB)"),
    ("nc_mean", "normalized covering, mean of part/object/group"),
    ("input_nc_mean", "  the input 2D masks, same protocol"),
    ("si", "segmentation injectivity"),
    ("vc", "view consistency"),
    ("hier_miou_l1", "point query mIoU, level 1 (threshold transferred)"),
    ("hier_miou_l2", "point query mIoU, level 2 (threshold transferred)"),
)


def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the scene, run, segments and exported objects.")
    ] = Path("demo_out"),
    scene: Annotated[str, typer.Option(help="Built-in scene (see `gsseg synth --list`).")] = "tabletop",
    objective: Annotated[str, typer.Option(help="Identity objective: contrastive or ultrametric.")] = "contrastive",
    width: Annotated[int, typer.Option(help="Image width of the built-in scene."), SIDE] = 128,
    height: Annotated[int, typer.Option(help="Image height of the built-in scene."), SIDE] = 96,
    views: Annotated[int, typer.Option(help="Training views."), Range(ge=1, le=10_000)] = 32,
    rgb_iters: Annotated[
        int, typer.Option(help="RGB-stage steps (also bounded by --rgb-time-limit)."), NON_NEGATIVE
    ] = 3000,
    rgb_time_limit: Annotated[
        float, typer.Option(help="Stop the RGB stage after this many seconds."), POSITIVE
    ] = 100.0,
    feature_iters: Annotated[int, typer.Option(help="Feature-stage steps."), NON_NEGATIVE] = 1500,
    seed: Annotated[int, typer.Option(help="Random seed."), SEED] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run everything on a built-in scene: make it, mask it with the weight-free watershed source,
    reconstruct it, train identity features, cut the hierarchy automatically, export every object
    as a PLY and evaluate. Re-running resumes from what is already in OUT."""
    import time

    from rich.table import Table

    from gsseg.cli.output import plain_console, styled
    from gsseg.demo import DemoConfig, run_demo

    console = plain_console(stderr=True)
    cfg = DemoConfig(
        out=out,
        scene=scene,
        objective=objective,
        width=width,
        height=height,
        views=views,
        rgb_iters=rgb_iters,
        rgb_time_limit_s=rgb_time_limit,
        feature_iters=feature_iters,
        seed=seed,
        show_progress=not quiet,
    )
    t0 = time.perf_counter()
    result = run_demo(cfg, console)
    total = time.perf_counter() - t0

    protocol = result.metrics.get("protocol", "official")  # which metric protocols the numbers follow
    table = Table(title=f"gsseg demo: '{scene}' with the {objective} objective ({total:.0f} s; {protocol} metrics)")
    table.add_column("result")
    table.add_column("value", justify="right")
    for key, label in SHOWN_METRICS:
        if key in result.metrics:
            table.add_row(label, f"{result.metrics[key]:.3f}")
    table.add_row("objects exported", str(result.objects))
    for stage, seconds in result.seconds.items():
        table.add_row(f"time: {stage.split(':')[0]}", f"{seconds:.1f} s")
    plain_console().print(table)
    console.print(f"scene PLY       {result.paths['scene_ply']}")
    console.print(f"segments        {result.paths['segments']}")
    console.print(f"object PLYs     {result.paths['objects']}")
    console.print(styled("look at it:     ", (f"gsseg view {result.paths['run']}", "bold")))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
