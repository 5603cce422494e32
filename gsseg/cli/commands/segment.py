"""``gsseg segment RUN``: click selections and hierarchy cuts -> ``RUN/segments/``, label maps, score maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import NON_NEGATIVE, UNIT, Range
from gsseg.segment.run import SegmentRequest

# SegmentRequest's settings are options (defaults live there); clicks, cuts and --quiet are hand-written.
OPTIONS = config_options(
    SegmentRequest,
    skip=["clicks", "click_threshold", "thresholds", "regions", "auto", "show_progress"],
    flags={"views": "--split", "argmax": "--argmax"},
    ranges={
        "auto_levels": Range(ge=1, le=64),
        "k": Range(ge=1, le=1000),
        "spatial_weight": UNIT,
        "min_size": NON_NEGATIVE,
        "min_alpha": UNIT,
    },
)


@with_config_options(OPTIONS)
def segment(
    run: Annotated[Path, typer.Argument(help="Run directory with scene.ply and features.pt.")],
    click: Annotated[
        Optional[list[str]],
        typer.Option(
            "--click",
            help="Positive click: STEM:X,Y (pixel X,Y of view STEM) or X,Y,Z (3D point). Repeatable; "
            "several clicks are a union. Writes cut 'click' and RUN/scores/<stem>.npy.",
        ),
    ] = None,
    negative_click: Annotated[
        Optional[list[str]],
        typer.Option(
            "--negative-click", help="Negative click (same forms); removes what resembles it more than the positives."
        ),
    ] = None,
    click_threshold: Annotated[
        Optional[float],
        typer.Option(
            help="Score in [0,1] a Gaussian needs to be selected by the clicks "
            "(default: embeddings, chosen from the click's score distribution by Otsu; logits 0.5)."
        ),
        UNIT,
    ] = None,
    threshold: Annotated[
        Optional[list[float]],
        typer.Option(
            "--threshold", "-t", help="Hierarchy cut at this feature distance in [0,1] (cut 't0.300'). Repeatable."
        ),
        UNIT,
    ] = None,
    thresholds: Annotated[
        Optional[str], typer.Option(help="Hierarchy cuts at A, A+STEP, ..., B, written A:B:STEP.")
    ] = None,
    regions: Annotated[
        Optional[list[int]],
        typer.Option("--regions", "-n", help="Hierarchy cut with about this many segments (cut 'n016'). Repeatable."),
        Range(ge=1, le=1_000_000),
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="Cuts at the most stable levels of the hierarchy (cuts 'auto0' coarsest, 'auto1', ...). "
            "The default when nothing else is asked.",
        ),
    ] = False,
    views: Annotated[Optional[str], typer.Option("--views", hidden=True, help="Old spelling of --split.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    *,
    given: Given,
) -> None:
    """Segment a run's Gaussians from their identity features; the same labels give every view's map."""
    from rich.table import Table

    from gsseg.cli.output import plain_console
    from gsseg.cli.parsing import MAX_CUTS, threshold_range
    from gsseg.errors import GssegError
    from gsseg.segment.clicks import parse_clicks
    from gsseg.segment.run import segment_run

    ts = list(threshold or [])
    if thresholds:
        ts += threshold_range(thresholds)
    if len(ts) + len(regions or []) > MAX_CUTS:
        raise GssegError(f"{len(ts) + len(regions or [])} cuts asked for; at most {MAX_CUTS} per run")
    req = SegmentRequest(
        clicks=parse_clicks(click, negative_click),
        click_threshold=click_threshold,
        thresholds=ts,
        regions=list(regions or []),
        auto=auto,
        show_progress=not quiet,
        **(given.values | ({"views": views} if views is not None else {})),  # --views: the old spelling of --split
    )
    summary = segment_run(run, req, device=device)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    table = Table("cut", "kind", "value", "threshold", "segments", "nested in")
    for c in summary["cuts"]:
        thr = "-" if c["threshold"] is None else f"{c['threshold']:.4f}"
        table.add_row(c["name"], c["kind"], f"{c['value']:g}", thr, str(c["segments"]), c["parent"] or "-")
    console = plain_console()
    console.print(table)
    extra = f"; {summary['selected']} Gaussians selected, score maps in {run / 'scores'}" if summary["selected"] else ""
    console.print(
        f"{summary['gaussians']:,} Gaussians, label maps for {summary['views']} views -> {run / 'segments'}{extra}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
