"""``gsseg demo``: the whole pipeline on a built-in scene, with a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import COUNT, NON_NEGATIVE, POSITIVE, SEED, SIDE, Range
from gsseg.demo.pipeline import DemoConfig

SHOWN_METRICS = (
    ("psnr", "test-view PSNR (dB)"),
    ("nc_mean", "normalized covering, mean of part/object/group"),
    ("input_nc_mean", "  the input 2D masks, same protocol"),
    ("si", "segmentation injectivity"),
    ("vc", "view consistency"),
    ("hier_miou_l1", "point query mIoU, level 1 (threshold transferred)"),
    ("hier_miou_l2", "point query mIoU, level 2 (threshold transferred)"),
)


# DemoConfig's fields are the options (defaults live there); `out` and `show_progress` are hand-written.
OPTIONS = config_options(
    DemoConfig,
    skip=["out", "show_progress"],
    flags={"rgb_time_limit_s": "--rgb-time-limit"},
    ranges={
        "width": SIDE,
        "height": SIDE,
        "views": Range(ge=1, le=10_000),
        "test_views": Range(ge=0, le=10_000),
        "rgb_iters": NON_NEGATIVE,
        "rgb_time_limit_s": POSITIVE,
        "feature_iters": NON_NEGATIVE,
        "auto_levels": COUNT,
        "seed": SEED,
    },
)


@with_config_options(OPTIONS)
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the scene, run, segments and exported objects.")
    ] = Path("demo_out"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    *,
    given: Given,
) -> None:
    """Run everything on a built-in scene: make it, mask it with the weight-free watershed source,
    reconstruct it, train identity features, cut the hierarchy automatically, export every object
    as a PLY and evaluate. Re-running resumes from what is already in OUT."""
    import time

    from rich.table import Table

    from gsseg.cli.output import plain_console, styled
    from gsseg.demo import run_demo

    console = plain_console(stderr=True)
    cfg = DemoConfig(out=out, show_progress=not quiet, **given.values)
    t0 = time.perf_counter()
    result = run_demo(cfg, console)
    total = time.perf_counter() - t0

    protocol = result.metrics.get("protocol", "official")  # which metric protocols the numbers follow
    table = Table(
        title=f"gsseg demo: '{cfg.scene}' with the {cfg.objective} objective ({total:.0f} s; {protocol} metrics)"
    )
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
