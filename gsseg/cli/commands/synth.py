"""``gsseg synth``: write a built-in synthetic dataset with ground-truth labels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.parsing import SEED, SIDE, Range

# Kept in sync with gsseg.synth.recipes.SCENE_NAMES (a test checks); listed here so --help stays fast.
SCENES_HELP = "tabletop (default), livingroom, toys, random"


def synth(
    out: Annotated[
        Optional[Path],
        typer.Argument(metavar="OUT", help="Output dataset folder (created if missing).", show_default=False),
    ] = None,
    scene: Annotated[str, typer.Option("--scene", "-s", help=f"Recipe: {SCENES_HELP}.")] = "tabletop",
    seed: Annotated[
        int, typer.Option(help="Random seed (sun direction, camera jitter; layout for 'random')."), SEED
    ] = 0,
    width: Annotated[int, typer.Option(help="Image width in pixels."), SIDE] = 128,
    height: Annotated[int, typer.Option(help="Image height in pixels."), SIDE] = 96,
    views: Annotated[int, typer.Option(help="Number of training views."), Range(ge=1, le=10_000)] = 32,
    test_views: Annotated[
        int,
        typer.Option("--test-views", help="Number of test views (each also gets a partner rotated 10°)."),
        Range(ge=0, le=10_000),
    ] = 8,
    supersample: Annotated[
        int,
        typer.Option(help="Anti-aliasing: RGB averages NxN rays per pixel (labels and depth use the centre ray)."),
        Range(ge=1, le=16),
    ] = 2,
    points: Annotated[
        int, typer.Option(help="Number of sparse init points written to points3d.ply."), Range(ge=1, le=10**8)
    ] = 4000,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty folder that is not a previous synth output.")
    ] = False,
    list_scenes: Annotated[bool, typer.Option("--list", help="List the scene recipes and exit.")] = False,
) -> None:
    """Render a synthetic scene (images, depth, part/object/group labels, cameras, init points)."""
    from gsseg.cli.output import plain_console, styled
    from gsseg.errors import GssegError
    from gsseg.synth import SCENE_NAMES, make_scene
    from gsseg.synth.recipes import RECIPES

    console = plain_console()
    if list_scenes:
        for name in SCENE_NAMES:
            doc = (RECIPES[name].__doc__ or "").strip().splitlines()[0]
            console.print(styled((name, "bold"), f"  {doc}"))
        return
    if out is None:
        raise GssegError("missing OUT folder (usage: gsseg synth OUT [--scene NAME])")
    start = time.perf_counter()
    make_scene(
        out,
        scene=scene,
        seed=seed,
        width=width,
        height=height,
        views=views,
        test_views=test_views,
        force=force,
        supersample=supersample,
        n_points=points,
    )
    n = views + 2 * test_views
    console.print(
        f"wrote {scene} ({n} views, {width}x{height}) to {out} in {time.perf_counter() - start:.1f}s", highlight=False
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
