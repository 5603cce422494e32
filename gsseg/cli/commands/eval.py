"""``gsseg eval RUN``: the papers' metrics of a run on its dataset's test views."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import MAX_CUTS, NON_NEGATIVE, SEED, UNIT, Range
from gsseg.eval.context import EvalSettings

HEADLINE = (
    "psnr",
    "nc_part",
    "nc_object",
    "nc_group",
    "nc_mean",
    "nc_fgbg",
    "nc_exclusive_mean",
    "nc_dense_mean",
    "si",
    "vc_part",
    "vc_object",
    "vc_group",
    "vc_fgbg",
    "vc",
    "vc_gt",
    "nc_mean_2d",
    "si_2d",
    "vc_2d",
    "hier_miou_l1",
    "hier_miou_l2",
    "hier_miou",
    "hier_miou_best",
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

# EvalSettings' fields are the protocol options (defaults live there).
OPTIONS = config_options(
    EvalSettings,
    flags={"pixel_cuts": "--pixel-cuts/--no-pixel-cuts"},
    helps={
        "pixel_cuts": "Also score UFF's 2D mode (per-view cuts of the rendered features).",
        "exact": "Replace each sampled protocol (NC, SI, VC) by its exact expectation (deterministic).",
    },
    ranges={
        "samples": Range(ge=1, le=10**7),
        "seed": SEED,
        "min_size": NON_NEGATIVE,
        "max_cuts": Range(ge=1, le=MAX_CUTS),
        "min_alpha": UNIT,
        "spatial_weight": UNIT,
        "hierarchy_k": Range(ge=1, le=1000),
    },
)


@with_config_options(OPTIONS)
def eval_run(
    run: Annotated[
        Optional[Path],
        typer.Argument(help="Run directory written by `gsseg train` (leave out with --labels).", show_default=False),
    ] = None,
    data: Annotated[Optional[Path], typer.Option(help="Dataset directory (default: the one the run recorded).")] = None,
    labels: Annotated[
        Optional[Path],
        typer.Option(
            help="Score another method's label maps instead of a run: DIR/<cut>/<view>.png (uint16, 0 = unassigned, "
            "the layout of RUN/segments) for the test views and their partners; needs --data."
        ),
    ] = None,
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
    save_renders: Annotated[
        bool,
        typer.Option(
            "--save-renders",
            help="Also write the test views' renders, depth, current labels and a contact sheet into RUN/renders "
            "(what `gsseg render RUN` writes).",
        ),
    ] = False,
    *,
    given: Given,
) -> None:
    """Evaluate RUN on its dataset's test views: PSNR, and whatever segmentation metrics apply
    (NC / SI / VC / point-query mIoU for embeddings, prompted-object mIoU for object fields,
    PQ^scene for clustering), beside the input 2D masks scored the same way."""
    from rich.table import Table

    from gsseg.cli.output import plain_console, styled
    from gsseg.errors import GssegError

    settings = EvalSettings(**given.values)
    if settings.protocol not in ("official", "gsseg"):
        raise GssegError(f"--protocol must be official or gsseg, got {settings.protocol!r}")
    if labels is not None:
        if run is not None:
            raise GssegError("give either RUN or --labels DIR, not both")
        if data is None:
            raise GssegError("--labels needs --data DATA (the dataset whose test views the label maps cover)")
        if settings.protocol != "official":
            raise GssegError("--labels scores the official protocols only (drop --protocol gsseg)")
        _eval_labels(data, labels, settings.exact, settings.samples, settings.seed, settings.min_size, as_json)
        return
    if run is None:
        raise GssegError("missing RUN (a run directory), or pass --labels DIR --data DATA to score label maps")
    from gsseg.eval.run_eval import evaluate_run

    result = evaluate_run(run, data, metrics=metric, backend=backend, show_progress=not as_json, settings=settings)
    if save_renders:
        from gsseg.report import render_run

        result["renders"] = render_run(run, backend=backend, show_progress=not as_json, data=data)["sheet"]
    if as_json:
        typer.echo(json.dumps(_finite(result)))
        return
    console = plain_console()
    if "psnr_per_view" in result:
        console.print(styled(("gsseg eval", "bold"), f" {run} on {result['dataset']}"))
        views = Table(title="test views")
        views.add_column("view")
        views.add_column("PSNR (dB)", justify="right")
        for name, value in result["psnr_per_view"].items():
            views.add_row(name, f"{value:.2f}")
        console.print(views)
    title = (
        "metrics (official protocols: the papers' evaluation code)"
        if settings.protocol == "official"
        else "metrics (gsseg's own variants: NOT the papers' protocols)"
    )
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in HEADLINE:
        if key in result and isinstance(result[key], (int, float)) and math.isfinite(result[key]):
            table.add_row(key, f"{result[key]:.2f}" if key == "psnr" else f"{result[key]:.4f}")
    console.print(table)
    extra = f", objective {result['objective']}" if "objective" in result else ""
    cut_info = f", {result['cuts']} cuts ({result['cuts_source']})" if "cuts" in result else ""
    console.print(f"{result['gaussians']} Gaussians{extra}{cut_info}")
    if "renders" in result:
        console.print(f"renders and contact sheet -> {result['renders']}")


def _finite(value):
    """``value`` with every NaN / infinity replaced by None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _eval_labels(data: Path, labels: Path, exact: bool, samples: int, seed: int, min_size: int, as_json: bool) -> None:
    """``gsseg eval --data DATA --labels DIR``: the official protocols on label maps, as a table or JSON."""
    from rich.table import Table

    from gsseg.cli.output import plain_console
    from gsseg.eval.official.labels import evaluate_labels
    from gsseg.utils.progress import progress_bar

    if as_json:
        result = evaluate_labels(data, labels, exact=exact, samples=samples, seed=seed, min_size=min_size)
        typer.echo(json.dumps(_finite(result)))
        return
    with progress_bar(transient=True) as progress:
        result = evaluate_labels(
            data, labels, exact=exact, samples=samples, seed=seed, min_size=min_size, progress=progress
        )
    console = plain_console()
    mode = "exact expectation" if exact else f"{samples} draws per segment, seed {seed}"
    console.print(f"gsseg eval --labels {labels} on {result['dataset']}: official protocols ({mode})")
    table = Table(title=f"{result['views']} views, {result['vc_pairs']} pairs, cuts {', '.join(result['cuts'])}")
    table.add_column("metric")
    for lv in result["levels"]:
        table.add_column(lv, justify="right")
    for metric in ("nc", "nc_dense", "si", "vc"):
        row = [f"{result[f'{metric}_{lv}']:.4f}" if f"{metric}_{lv}" in result else "-" for lv in result["levels"]]
        table.add_row(metric.upper().replace("_", " "), *row)
    console.print(table)
    for cut, pq in result.get("pq_scene_per_cut", {}).items():
        console.print(f"PQ^scene (object level) of cut {cut}: {pq['pq']:.4f} (SQ {pq['sq']:.4f}, RQ {pq['rq']:.4f})")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_run)
