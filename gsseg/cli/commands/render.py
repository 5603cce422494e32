"""``gsseg render RUN``: test-view renders, depth, current labels and one contact sheet PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def render(
    run: Annotated[Path, typer.Argument(help="Run directory written by `gsseg train`.")],
    split: Annotated[str, typer.Option("--split", help="Which views: test (held out), train or all.")] = "test",
    views: Annotated[Optional[str], typer.Option("--views", hidden=True, help="Old spelling of --split.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: RUN/renders).")] = None,
    cut: Annotated[
        Optional[str],
        typer.Option(help="Cut shown in the labels column (default: the one `gsseg export` takes)."),
    ] = None,
    max_rows: Annotated[int, typer.Option(help="Views on the contact sheet, spread evenly (all are rendered).")] = 12,
    backend: Annotated[str, typer.Option(help="Renderer: auto, reference, cpu or cuda.")] = "auto",
    data: Annotated[Optional[Path], typer.Option(help="Dataset directory (default: the one the run recorded).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print renders.json on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render RUN's views beside their photos: PNG renders, colour-mapped depth, the current segment labels
    and one contact sheet (photo | render | depth | labels per view)."""
    from rich.console import Console

    from gsseg.errors import GssegError
    from gsseg.report import render_run

    flag, views = ("--split", split) if views is None else ("--views", views)
    if views not in ("test", "train", "all"):
        raise GssegError(f"unknown {flag} {views!r}; use test, train or all")
    summary = render_run(
        run, views=views, out=out, cut=cut, max_rows=max_rows, backend=backend, show_progress=not quiet, data=data
    )
    if as_json:
        typer.echo(json.dumps(summary))
        return
    psnr = f", mean PSNR {summary['psnr']:.2f} dB" if summary["psnr"] is not None else ""
    labels = f", labels of cut {summary['cut']}" if summary["cut"] else ", no segments yet"
    Console(highlight=False, soft_wrap=True, markup=False, emoji=False).print(
        f"{len(summary['files'])} {views} views rendered{psnr}{labels} -> {summary['sheet']}"
    )


def register(app: typer.Typer) -> None:
    app.command("render")(render)
