"""``gsseg masks DATA --source NAME``: per-view multi-granular 2D masks into ``DATA/masks/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import SEED, UNIT, Range
from gsseg.masks.runner import SourceOptions

SOURCE_HELP = (
    "sam: segment-anything automatic masks (needs --checkpoint); geometry: weight-free, colour + the "
    "rendered depth and normals of --run RUN (what `gsseg train` makes when DATA has no masks); watershed: "
    "weight-free higra hierarchical watershed of colour (default); labels: import DATA/label_masks/<stem>/*.png; "
    "simulated: SAM-like noise from DATA/gt/ (built-in scenes)."
)

# SourceOptions' fields (and SamSettings') are the sources' options; defaults live there.
OPTIONS = config_options(
    SourceOptions,
    flags={
        "sam.checkpoint": "--checkpoint",
        "sam.model_type": "--model-type",
        "sam.points_per_side": "--points-per-side",
        "sam.pred_iou_thresh": "--pred-iou",
        "sam.stability_score_thresh": "--stability",
        "sam.min_mask_region_area": "--min-region-area",
        "sam.max_size": "--sam-max-size",
        "sam.device": "--device",
        "region_counts": "--levels",
        "watershed_attribute": "--attribute",
        "min_area_fraction": "--min-area",
    },
    ranges={"sam.stability_score_thresh": UNIT, "min_area_fraction": Range(ge=0, lt=1), "seed": SEED},
)


@with_config_options(OPTIONS)
def masks(
    data: Annotated[Path, typer.Argument(help="Dataset folder (transforms*.json or COLMAP).")],
    source: Annotated[str, typer.Option("--source", "-s", help=SOURCE_HELP)] = "watershed",
    force: Annotated[bool, typer.Option("--force", help="Recompute views that already have a mask file.")] = False,
    split: Annotated[str, typer.Option(help="Views to process: all, train or test.")] = "all",
    downscale: Annotated[
        Optional[float], typer.Option(help="Work at the native image size divided by this factor.")
    ] = None,
    max_size: Annotated[
        Optional[int],
        typer.Option(
            help="Work with the longest image side capped at this many pixels (0: no cap; default 480 when "
            "--downscale is not given either). Train with the same option so masks and views match."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse frames whose image file is missing instead of skipping them.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    *,
    given: Given,
) -> None:
    """Make 2D masks for every view of DATA with one source; re-running skips finished views."""
    from gsseg.cli.output import plain_console, styled
    from gsseg.data import load_dataset
    from gsseg.errors import GssegError
    from gsseg.masks.runner import SPLITS, make_source, run_source
    from gsseg.utils.config_fields import apply_given

    console = plain_console(stderr=True)
    if split not in SPLITS:
        raise GssegError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    options = SourceOptions()
    apply_given(options, given.values)
    device = options.sam.device
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise GssegError(f"unknown device {device!r}; use cpu or cuda")
    ds = load_dataset(data, downscale=downscale, max_size=max_size, strict=strict)
    mask_source = make_source(source, options)
    note = getattr(mask_source, "note", None)
    if note:
        console.print(styled(("note:", "yellow"), f" {note}"))
    report = run_source(ds, mask_source, split=split, force=force, show_progress=not quiet)
    summary = {"dataset": str(ds.root), "source": source, "masks_dir": str(ds.masks_dir), **report.as_dict()}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"{report.as_dict()['written']} views written ({report.masks_written} masks), "
        f"{len(report.existing)} already done"
        + ("" if not report.existing or force else " (use --force to redo)")
        + (f", {len(report.no_input)} without input" if report.no_input else "")
        + (f", {len(report.empty)} with no mask (not written)" if report.empty else "")
        + f" -> {ds.masks_dir}",
        highlight=False,
    )
    for name, reason in list(report.no_input.items())[:5]:
        console.print(styled("  ", ("skipped", "yellow"), f" {name}: {reason}"))


def register(app: typer.Typer) -> None:
    app.command("masks")(masks)
