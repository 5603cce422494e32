"""``gsseg eval RUN``: the papers' metrics of a run on its dataset's test views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

HEADLINE = (
    "psnr",
    "nc_part",
    "nc_object",
    "nc_group",
    "nc_mean",
    "nc_exclusive_mean",
    "nc_dense_mean",
    "si",
    "vc",
    "vc_gt",
    "nc_mean_2d",
    "si_2d",
    "vc_2d",
    "hier_miou_l1",
    "hier_miou_l2",
    "hier_miou",
    "object_miou",
    "object_acc",
    "pq_scene",
    "rq_scene",
    "miou",
    "input_nc_part",
    "input_nc_object",
    "input_nc_group",
    "input_nc_mean",
    "input_hier_miou_l1",
    "input_hier_miou_l2",
    "oracle_nc_mean",
    "oracle_si",
    "oracle_vc",
    "oracle_object_miou",
    "oracle_pq_scene",
)


def eval_run(
    run: Annotated[Path, typer.Argument(help="Run directory written by `gsseg train`.")],
    data: Annotated[Optional[Path], typer.Option(help="Dataset directory (default: the one the run recorded).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
    ] = False,
    backend: Annotated[str, typer.Option(help="Renderer: auto, reference, cpu or cuda.")] = "auto",
    metric: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Only these metric families (repeatable): psnr, hierarchy, prompted, panoptic, input; "
            "'oracle' (GT-labelled Gaussians: the ceiling on this geometry) runs only when named."
        ),
    ] = None,
    samples: Annotated[int, typer.Option(help="Pixels sampled per ground-truth segment (NC, SI, VC).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sampled protocols.")] = 0,
    cuts: Annotated[
        str,
        typer.Option(
            help="Hierarchy cuts scored: computed (up to --max-cuts spread over the hierarchy; NC/SI/VC take the best, "
            "as in UFF), segments (those in RUN/segments) or auto (RUN/segments if present, else computed)."
        ),
    ] = "computed",
    max_cuts: Annotated[int, typer.Option(help="Cuts computed from the hierarchy (spread over its levels).")] = 32,
    min_size: Annotated[
        int, typer.Option(help="Ground-truth segments smaller than this many pixels are skipped.")
    ] = 20,
    pixel_cuts: Annotated[
        bool,
        typer.Option(
            "--pixel-cuts/--no-pixel-cuts", help="Also score UFF's 2D mode (per-view cuts of the rendered features)."
        ),
    ] = True,
) -> None:
    """Evaluate RUN on its dataset's test views: PSNR, and whatever segmentation metrics apply
    (NC / SI / VC / point-query mIoU for embeddings, prompted-object mIoU for object fields,
    PQ^scene for clustering), beside the input 2D masks scored the same way."""
    from rich.console import Console
    from rich.table import Table

    from gsseg.eval.context import EvalSettings
    from gsseg.eval.run_eval import evaluate_run

    settings = EvalSettings(
        samples=samples, seed=seed, cuts=cuts, max_cuts=max_cuts, min_size=min_size, pixel_cuts=pixel_cuts
    )
    result = evaluate_run(run, data, metrics=metric, backend=backend, show_progress=not as_json, settings=settings)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console()
    if "psnr_per_view" in result:
        console.print(f"[bold]gsseg eval[/] {run} on {result['dataset']}")
        views = Table(title="test views")
        views.add_column("view")
        views.add_column("PSNR (dB)", justify="right")
        for name, value in result["psnr_per_view"].items():
            views.add_row(name, f"{value:.2f}")
        console.print(views)
    table = Table(title="metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in HEADLINE:
        if key in result:
            table.add_row(key, f"{result[key]:.2f}" if key == "psnr" else f"{result[key]:.4f}")
    console.print(table)
    extra = f", objective {result['objective']}" if "objective" in result else ""
    cut_info = f", {result['cuts']} cuts ({result['cuts_source']})" if "cuts" in result else ""
    console.print(f"{result['gaussians']} Gaussians{extra}{cut_info}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_run)
