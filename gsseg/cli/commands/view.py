"""``gsseg view RUN``: browser viewer with click selection of objects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import Range
from gsseg.viewer.server import ViewerConfig

# ViewerConfig's settings are options (defaults live there); --export-dir and --allow-origin are hand-written.
OPTIONS = config_options(
    ViewerConfig,
    skip=["export_dir", "allow_origins"],
    ranges={"port": Range(ge=0, le=65535)},
    helps={
        "max_display": "Draw at most this many Gaussians in the browser, the most visible (0 = all); clicks, the "
        "selection and exports still use every Gaussian."
    },
)


@with_config_options(OPTIONS)
def view(
    run: Annotated[
        Path, typer.Argument(help="Run directory (with scene.ply; features.pt and segments/ when present).")
    ],
    export_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder that 'Export selection' writes under (default: RUN/exports); the page only names a "
            "sub-folder of it."
        ),
    ] = None,
    allow_origin: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-origin",
            help="Also accept the websocket of pages at this origin (e.g. https://my.site:443) when embedding the "
            "viewer; by default only the viewer's own page may connect. Repeatable.",
        ),
    ] = None,
    *,
    given: Given,
) -> None:
    """Open the run in the browser: splats drawn client-side, click an object to select it (shift+click: negative),
    slide the threshold, colour by hierarchy cut, isolate / hide, export the selection as PLYs."""
    from rich.text import Text

    from gsseg.cli.output import plain_console
    from gsseg.errors import GssegError
    from gsseg.viewer.origin import is_loopback, network_urls
    from gsseg.viewer.server import serve

    cfg = ViewerConfig(export_dir=export_dir, **given.values)
    if not (0 <= cfg.port <= 65535):
        raise GssegError(f"--port {cfg.port}: must be between 0 and 65535")
    if cfg.max_display < 0:
        raise GssegError(f"--max-display {cfg.max_display}: must be >= 0 (0 = draw all)")
    if not (0.0 < cfg.min_weight <= 1.0):
        raise GssegError(f"--min-weight {cfg.min_weight}: must be in (0, 1]")
    console = plain_console(stderr=True)
    origins = tuple(allow_origin or [])
    for o in origins:
        if not re.fullmatch(r"https?://[^/\s]+", o.strip().rstrip("/")):
            raise GssegError(f"--allow-origin {o!r}: give an origin such as https://example.org or http://host:8000")
    cfg.allow_origins = origins
    host = cfg.host

    def ready(app) -> None:
        if app.dropped:
            console.print(Text.assemble(("warning", "bold yellow"), f": {app.dropped_note()}"), soft_wrap=True)
        port_ = app.server.get_port()
        drawn = f" ({len(app.shown)} drawn)" if app.shown is not None else ""
        if is_loopback(host):
            urls = [f"http://localhost:{port_}"]
        else:
            urls = network_urls(host, port_)
            console.print(
                Text.assemble(
                    ("warning", "bold yellow"),
                    f": listening on {host}, so anyone who can reach this machine on port {port_} can open the "
                    "scene and export from it (use the default --host 127.0.0.1 to keep it local). Open it at "
                    + (" or ".join(urls) or f"http://<this machine's address>:{port_}")
                    + " (another name needs --allow-origin http://NAME:PORT).",
                ),
                soft_wrap=True,
            )
        console.print(
            Text.assemble(
                ("gsseg view", "bold green"),
                f": {app.n} Gaussians{drawn}" + ("" if app.has_features else " (no identity features: view only)"),
                " at ",
                (urls[0] if urls else f"http://{host}:{port_}", "bold"),
                " (Ctrl+C to stop)",
            ),
            soft_wrap=True,
        )

    try:
        serve(run, cfg, ready=ready)
    except KeyboardInterrupt:
        console.print("viewer stopped")


def register(app: typer.Typer) -> None:
    app.command("view")(view)
