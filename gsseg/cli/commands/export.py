"""``gsseg export RUN --out DIR``: per-object splat files, the rest of the scene, labels, manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def export(
    run: Annotated[Path, typer.Argument(help="Run directory segmented with `gsseg segment`.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: new or empty, or an earlier export holding only the files it wrote (listed in its "
            ".gsseg-export), which is replaced whole; anything else is refused.",
        ),
    ],
    cut: Annotated[
        Optional[str],
        typer.Option(
            help="Cut to export (e.g. auto0, t0.300, n016); default: the coarsest auto cut of the latest segmentation."
        ),
    ] = None,
    objects: Annotated[
        Optional[str], typer.Option(help="Comma-separated segment ids to export as objects (default: every segment).")
    ] = None,
    click: Annotated[
        Optional[list[str]],
        typer.Option(
            "--click",
            help="Select by click, STEM:X,Y or X,Y,Z. With --cut: the cut's segments under the clicks; "
            "without: the Gaussians the click query selects (object 1). Repeatable.",
        ),
    ] = None,
    negative_click: Annotated[Optional[list[str]], typer.Option("--negative-click", help="Negative click.")] = None,
    click_threshold: Annotated[
        Optional[float],
        typer.Option(
            help="Score a Gaussian needs for a click selection without --cut (default: embeddings, chosen from the "
            "click's score distribution by Otsu; logits 0.5)."
        ),
    ] = None,
    fmt: Annotated[
        Optional[list[str]],
        typer.Option(
            "--format",
            "-f",
            help="File format, repeatable: ply (INRIA layout), ply-compressed (PlayCanvas), spz, "
            "splat (no SH). Default: ply.",
        ),
    ] = None,
    with_labels: Annotated[
        bool,
        typer.Option(
            "--with-labels", help="Also write scene_with_labels.ply: the whole scene with an object_id property."
        ),
    ] = False,
    keep_outliers: Annotated[
        bool,
        typer.Option(
            "--keep-outliers",
            help="Export each object whole; by default Gaussians far from an object's bulk (floaters) go to "
            "scene_without_selected instead (counted in segments.json).",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (click queries).")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Export segmented objects as standard splat files (3DGS PLY, compressed PLY, SPZ, .splat) plus segments.json
    and a labels sidecar."""
    from gsseg.cli.output import plain_console
    from gsseg.export import export_run, parse_ids
    from gsseg.segment.clicks import parse_clicks

    clicks = parse_clicks(click, negative_click)
    manifest = export_run(
        run,
        out,
        cut=cut,
        objects=parse_ids(objects) if objects else None,
        clicks=clicks or None,
        click_threshold=click_threshold,
        device=device,
        show_progress=not quiet,
        formats=fmt,
        with_labels=with_labels,
        keep_outliers=keep_outliers,
    )
    if as_json:
        typer.echo(json.dumps(manifest))
        return
    console = plain_console()
    names = sorted(manifest["written"])
    shown = ", ".join(names[:6]) + (f", ... ({len(names)} files)" if len(names) > 6 else "")
    console.print(
        f"cut {manifest['cut']}: {len(manifest['selected'])} objects ({manifest['selected_gaussians']:,} of "
        f"{manifest['num_gaussians']:,} Gaussians) -> {out}/: {shown}, labels.npy, segments.json"
    )
    for note in manifest["notes"]:
        console.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
