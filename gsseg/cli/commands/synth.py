"""``gsseg synth``: write a built-in synthetic dataset with ground-truth labels."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.cli.parsing import SEED, SIDE, Range
from gsseg.synth.writer import SceneOptions

# Kept in sync with gsseg.synth.recipes.SCENE_NAMES (a test checks); listed here so --help stays fast.
SCENES_HELP = "tabletop (default), livingroom, toys, random, kitchen"

# SceneOptions' fields are the options (defaults live there, and make_scene takes them from there).
OPTIONS = config_options(
    SceneOptions,
    flags={"n_points": "--points"},
    short={"scene": "-s"},
    helps={"scene": f"Recipe: {SCENES_HELP}."},
    ranges={
        "seed": SEED,
        "width": SIDE,
        "height": SIDE,
        "views": Range(ge=1, le=10_000),
        "test_views": Range(ge=0, le=10_000),
        "supersample": Range(ge=1, le=16),
        "n_points": Range(ge=1, le=10**8),
    },
)


@with_config_options(OPTIONS)
def synth(
    out: Annotated[
        Optional[Path],
        typer.Argument(metavar="OUT", help="Output dataset folder (created if missing).", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty folder that is not a previous synth output.")
    ] = False,
    list_scenes: Annotated[bool, typer.Option("--list", help="List the scene recipes and exit.")] = False,
    *,
    given: Given,
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
    opts = SceneOptions(**given.values)
    make_scene(out, force=force, **dataclasses.asdict(opts))
    n = opts.views + 2 * opts.test_views
    console.print(
        f"wrote {opts.scene} ({n} views, {opts.width}x{opts.height}) to {out} in {time.perf_counter() - start:.1f}s",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
