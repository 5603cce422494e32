"""``gsseg masks DATA --source NAME``: per-view multi-granular 2D masks into ``DATA/masks/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.parsing import SEED, UNIT, Range

SOURCE_HELP = (
    "sam: segment-anything automatic masks (needs --checkpoint); geometry: weight-free, colour + the "
    "rendered depth and normals of --run RUN (what `gsseg train` makes when DATA has no masks); watershed: "
    "weight-free higra hierarchical watershed of colour (default); labels: import DATA/label_masks/<stem>/*.png; "
    "simulated: SAM-like noise from DATA/gt/ (built-in scenes)."
)


def masks(
    data: Annotated[Path, typer.Argument(help="Dataset folder (transforms*.json or COLMAP).")],
    source: Annotated[str, typer.Option("--source", "-s", help=SOURCE_HELP)] = "watershed",
    force: Annotated[bool, typer.Option("--force", help="Recompute views that already have a mask file.")] = False,
    split: Annotated[str, typer.Option(help="Views to process: all, train or test.")] = "all",
    checkpoint: Annotated[Optional[Path], typer.Option(help="SAM: SAM checkpoint file (.pth).")] = None,
    model_type: Annotated[
        Optional[str],
        typer.Option(help="SAM: vit_h, vit_l or vit_b; inferred from the file name or weights when omitted."),
    ] = None,
    points_per_side: Annotated[int, typer.Option(help="SAM: Prompt grid points per image side.")] = 32,
    pred_iou: Annotated[float, typer.Option(help="SAM: Minimum predicted IoU of a kept mask.")] = 0.88,
    stability: Annotated[float, typer.Option(help="SAM: Minimum stability score of a kept mask."), UNIT] = 0.95,
    min_region_area: Annotated[
        int, typer.Option(help="SAM: Fill holes / drop islands smaller than this many pixels (0: off).")
    ] = 128,
    sam_max_size: Annotated[
        int,
        typer.Option(help="SAM: Downscale images whose long side exceeds this many pixels before running SAM."),
    ] = 1024,
    device: Annotated[str, typer.Option(help="SAM: cpu or cuda.")] = "cpu",
    run: Annotated[
        Optional[Path], typer.Option("--run", help="Geometry: a run of DATA whose RGB stage is done (RUN/scene.ply).")
    ] = None,
    levels: Annotated[
        str, typer.Option(help="Watershed: Comma-separated region counts of the hierarchy cuts.")
    ] = "4,8,16,32,64,128",
    attribute: Annotated[str, typer.Option(help="Watershed: Hierarchy ordering: area, volume or dynamics.")] = "volume",
    min_area: Annotated[
        float,
        typer.Option(help="Watershed: Drop regions smaller than this fraction of the image (0 <= F < 1)."),
        Range(ge=0, lt=1),
    ] = 0.002,
    noise: Annotated[str, typer.Option(help="Simulated: easy, medium or hard.")] = "medium",
    seed: Annotated[int, typer.Option(help="Simulated: Random seed (with the view name, fixes the masks)."), SEED] = 0,
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
) -> None:
    """Make 2D masks for every view of DATA with one source; re-running skips finished views."""
    from gsseg.cli.output import plain_console, styled
    from gsseg.data import load_dataset
    from gsseg.errors import GssegError
    from gsseg.masks.runner import SPLITS, SourceOptions, make_source, run_source
    from gsseg.masks.sources.sam_settings import SamSettings

    console = plain_console(stderr=True)
    if split not in SPLITS:
        raise GssegError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise GssegError(f"unknown device {device!r}; use cpu or cuda")
    try:
        region_counts = [int(v) for v in levels.split(",") if v.strip()]
    except ValueError as e:
        raise GssegError(f"--levels must be comma-separated integers, got {levels!r}") from e
    ds = load_dataset(data, downscale=downscale, max_size=max_size, strict=strict)
    options = SourceOptions(
        sam=SamSettings(
            checkpoint=checkpoint,
            model_type=model_type,
            points_per_side=points_per_side,
            pred_iou_thresh=pred_iou,
            stability_score_thresh=stability,
            min_mask_region_area=min_region_area,
            max_size=sam_max_size,
            device=device,
        ),
        region_counts=region_counts,
        watershed_attribute=attribute,
        min_area_fraction=min_area,
        noise=noise,
        seed=seed,
        run=run,
    )
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
