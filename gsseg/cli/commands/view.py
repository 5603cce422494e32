"""``gsseg view RUN``: browser viewer with click selection of objects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.parsing import Range
from gsseg.viewer.splats import DEFAULT_MAX_DISPLAY


def view(
    run: Annotated[
        Path, typer.Argument(help="Run directory (with scene.ply; features.pt and segments/ when present).")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port)."), Range(ge=0, le=65535)] = 8080,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 127.0.0.1 keeps the viewer local, 0.0.0.0 opens it to the network."),
    ] = "127.0.0.1",
    start_view: Annotated[
        Optional[str],
        typer.Option(
            "--view", help="Dataset view (image stem) the camera starts from; default: the first training view."
        ),
    ] = None,
    min_weight: Annotated[
        float, typer.Option(help="Blending weight T·alpha a Gaussian needs along the click ray to be picked.")
    ] = 0.1,
    export_dir: Annotated[
        Optional[Path],
        typer.Option(
            help="Folder that 'Export selection' writes under (default: RUN/exports); the page only names a "
            "sub-folder of it."
        ),
    ] = None,
    max_display: Annotated[
        int,
        typer.Option(
            help="Draw at most this many Gaussians in the browser, the most visible (0 = all); clicks, the "
            "selection and exports still use every Gaussian."
        ),
    ] = DEFAULT_MAX_DISPLAY,
    allow_origin: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-origin",
            help="Also accept the websocket of pages at this origin (e.g. https://my.site:443) when embedding the "
            "viewer; by default only the viewer's own page may connect. Repeatable.",
        ),
    ] = None,
) -> None:
    """Open the run in the browser: splats drawn client-side, click an object to select it (shift+click: negative),
    slide the threshold, colour by hierarchy cut, isolate / hide, export the selection as PLYs."""
    from rich.text import Text

    from gsseg.cli.output import plain_console
    from gsseg.errors import GssegError
    from gsseg.viewer.origin import is_loopback, network_urls
    from gsseg.viewer.server import ViewerConfig, serve

    if not (0 <= port <= 65535):
        raise GssegError(f"--port {port}: must be between 0 and 65535")
    if max_display < 0:
        raise GssegError(f"--max-display {max_display}: must be >= 0 (0 = draw all)")
    if not (0.0 < min_weight <= 1.0):
        raise GssegError(f"--min-weight {min_weight}: must be in (0, 1]")
    console = plain_console(stderr=True)
    origins = tuple(allow_origin or [])
    for o in origins:
        if not re.fullmatch(r"https?://[^/\s]+", o.strip().rstrip("/")):
            raise GssegError(f"--allow-origin {o!r}: give an origin such as https://example.org or http://host:8000")
    cfg = ViewerConfig(
        host=host,
        port=port,
        view=start_view,
        min_weight=min_weight,
        export_dir=export_dir,
        max_display=max_display,
        allow_origins=origins,
    )

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
