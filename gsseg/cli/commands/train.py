"""``gsseg train DATA --out RUN``: reconstruct the Gaussian scene (RGB stage), then train identity
features (features stage); resumable.

The options are generated from the configs (``gsseg/cli/config_options.py``): every field of
:class:`~gsseg.config.train.TrainConfig` (``--iters``, ``--rgb.lr.means``, ``--rgb.densify.*``,
``--features.*``, ``--field.*``) and of the chosen objective's settings dataclass
(``--feature-dim``, ``--preset``, ``--contrastive.level-decay``, ``--click``, ...), each with the
dataclass default. A resumed run merges them by the fields' resume rules
(:func:`gsseg.utils.config_fields.merge_resumed`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional, cast

import typer

from gsseg.cli.config_options import (
    ConfigOption,
    Given,
    config_options,
    default_flag,
    merge_same_flags,
    with_config_options,
)
from gsseg.cli.parsing import COUNT, NON_NEGATIVE, POSITIVE, SEED, UNIT, Range
from gsseg.utils.config_fields import leaves

STAGE_HELP = (
    "Stage to run: 'all' (rgb, then features when the dataset has masks or --objective is given), "
    "'rgb' (Gaussian geometry + colour) or 'features' (identity features on a run's frozen scene)."
)
STAGE_CHOICES = {"all": ["rgb", "features"], "rgb": ["rgb"], "features": ["features"]}

# TrainConfig fields under today's flag names; every other field is --<dotted path> (--rgb.lr.means).
FLAGS = {
    "rgb.iters": "--iters",
    "rgb.sh_degree": "--sh-degree",
    "rgb.init": "--init",
    "rgb.checkpoint_every": "--checkpoint-every",
    "rgb.time_limit_s": "--time-limit",
    "rgb.seed": "--seed",
    "rgb.backend": "--backend",
    "rgb.device": "--device",
    "features.objective": "--objective",
    "features.iters": "--feature-iters",
    "features.lr": "--feature-lr",
    "features.table_scale": "--table-scale",
    "features.joint": "--joint/--frozen",
    "features.time_limit_s": "--feature-time-limit",
    "features.views_per_step": "--views-per-step",
}
# One option, several fields (each keeps its own default and resume rule).
SHARE = {
    "rgb.iters": ["field.iters"],
    "rgb.seed": ["features.seed", "field.seed"],
    "rgb.backend": ["features.backend"],
    "rgb.device": ["features.device", "field.device"],
    "rgb.time_limit_s": ["field.time_limit_s"],
    "rgb.checkpoint_every": ["field.checkpoint_every"],
}
# Fields set by the hand-written options of train() below.
HAND_WRITTEN = [
    "dataset",  # DATA
    "stages",  # --stage
    "extra",
    "rgb.background_mode",  # --background
    "rgb.background",
    "features.table_memory_mb",  # --memory-budget
    "features.objective_settings",  # the objective's options
]
RANGES = {
    "downscale": Range(gt=0, le=1000),
    "rgb.iters": NON_NEGATIVE,
    "rgb.sh_degree": Range(ge=0, le=3),
    "rgb.checkpoint_every": COUNT,
    "rgb.time_limit_s": NON_NEGATIVE,
    "rgb.seed": SEED,
    "features.iters": NON_NEGATIVE,
    "features.lr": POSITIVE,
    "features.table_scale": UNIT,
    "features.time_limit_s": NON_NEGATIVE,
    "features.views_per_step": Range(ge=1, le=100_000),
}
HELPS = {
    "downscale": "Divide the native image size by this factor (not given: the --max-size cap decides); recorded "
    "in the run.",
    "init_ply": "Start from a pretrained INRIA-layout 3DGS PLY. Without --iters the RGB stage is skipped "
    "(the PLY becomes RUN/scene.ply as is).",
    "features.views_per_step": "Features stage: views per step, losses averaged. Under `torchrun --nproc-per-node N "
    "-m gsseg train ...` the N processes share each step's views.",
}
PANELS = {
    "": "Run",
    "rgb": "RGB stage",
    "rgb.lr": "RGB stage: learning rates",
    "rgb.densify": "RGB stage: densification",
    "features": "Features stage",
    "field": "NeRF backend (--representation nerf)",
}
# The objectives' settings under shared or today's flag names (relative paths in a settings dataclass).
OBJECTIVE_FLAGS = {
    "dim": "--feature-dim",
    "preset": "--preset",
    "labels_dir": "--vote-labels",
    "prompt.clicks": "--click",
    "prompt.negative_clicks": "--negative-click",
    "prompt.prompts": "--prompts",
    "prompt.sam_checkpoint": "--sam-checkpoint",
    "prompt.level": "--level",
}
OBJECTIVE_HELPS = {
    "preset": "Objective preset (contrastive: paper, omniseg3d-gs, omniseg3d-nerf; ultrametric: paper); options "
    "given beside it override it.",
    "dim": "Feature dimension D of the objective.",
    "labels_dir": "vote / clustering: folder of <stem>.png label maps whose ids are consistent across views "
    "(e.g. DATA/gt/object), instead of prompts or the mask store.",
    "prompt.clicks": "object-field / vote: a click STEM:X,Y on the object in a training view (pixel x, y), "
    "lifted to 3D with the rendered depth; repeatable; STEM:X,Y@K prompts object K.",
    "prompt.negative_clicks": "object-field / vote: a click STEM:X,Y on something that is not the object; repeatable.",
    "prompt.prompts": 'object-field / vote: prompt file {"objects": [{"name", "positive": [...], "negative": '
    '[...]}]} with 3D points (lists of x, y, z) or clicks "STEM:X,Y".',
    "prompt.sam_checkpoint": "object-field / vote: build each view's object mask with SAM point prompts from this "
    "checkpoint instead of choosing among the dataset's masks.",
}
OBJECTIVE_FILES = {"prompts": "file", "sam_checkpoint": "file", "labels_dir": "folder"}


def _objective_groups() -> dict[str, list[str]]:
    """Settings-dataclass group (its first objective's name) -> the objectives that use it."""
    from gsseg.objectives.registry import objective_names, settings_class

    groups: dict[type, list[str]] = {}
    for name in objective_names():
        groups.setdefault(settings_class(name), []).append(name)
    return {names[0]: names for names in groups.values()}


GROUPS = _objective_groups()
GROUP_OF = {name: group for group, names in GROUPS.items() for name in names}


def _options() -> list[ConfigOption]:
    """Every TrainConfig field and every objective setting as an option."""
    from gsseg.config.train import TrainConfig
    from gsseg.objectives.registry import objective_names, settings_class

    options = config_options(
        TrainConfig, flags=FLAGS, share=SHARE, skip=HAND_WRITTEN, panels=PANELS, ranges=RANGES, helps=HELPS
    )
    for o in options:
        if o.targets[0] == "features.objective":
            o.choices = tuple(objective_names())
        if o.targets[0] == "downscale":
            o.defaults = {"downscale": None}  # automatic (--max-size), not TrainConfig's 1.0
    objective_options = []
    for group, names in GROUPS.items():
        cls = settings_class(group)
        shared = {leaf.path: default_flag(leaf.path) for leaf in leaves(cls) if leaf.path.startswith("prompt.")}
        objective_options += config_options(
            cls,
            prefix=f"{group}.",
            label=group,
            flags={**shared, **OBJECTIVE_FLAGS},  # the rest: --<group>.<setting>
            panels={"": f"Objective settings ({' / '.join(names)})"},
            ranges={"dim": Range(ge=1, le=4096)},
            helps=OBJECTIVE_HELPS,
        )
        presets = getattr(sys.modules[cls.__module__], "PRESETS", None)
        for o in objective_options:
            if o.targets[0] == f"{group}.preset" and presets:
                o.choices = tuple(presets)
    return options + merge_same_flags(objective_options)


OPTIONS = _options()


@with_config_options(OPTIONS)
def train(
    data: Annotated[Path, typer.Argument(help="Dataset directory (transforms*.json or COLMAP).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory; an existing run is resumed.")],
    stage: Annotated[str, typer.Option(help=STAGE_HELP, rich_help_panel="Run")] = "all",
    max_size: Annotated[
        Optional[int],
        typer.Option(
            help="Cap the longest image side at this many pixels (0: no cap; default 480 when --downscale is not "
            "given either). The working resolution is recorded in the run; later verbs reuse it.",
            rich_help_panel="Run",
        ),
        Range(ge=0, le=1_000_000),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse frames whose image file is missing instead of skipping them.",
            rich_help_panel="Run",
        ),
    ] = False,
    background: Annotated[
        Optional[str],
        typer.Option(
            help="Background behind the Gaussians (rgb.background_mode, rgb.background): 'learned' (default: one "
            "optimised colour, starting at 0.5,0.5,0.5), 'random' (a new colour each step) or a fixed colour "
            "'R,G,B' with values in [0,1], e.g. '1,1,1'.",
            rich_help_panel="RGB stage",
        ),
    ] = None,
    memory_budget: Annotated[
        Optional[str],
        typer.Option(
            help="Features stage (features.table_memory_mb): RAM for cached contribution tables, e.g. 4G or 512M "
            "(default: 40% of the memory available when the stage starts); tables beyond it are evicted and "
            "rebuilt on demand.",
            rich_help_panel="Features stage",
        ),
    ] = None,
    objective_set: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="Deprecated: use the objective's options (--feature-dim, --contrastive.level-decay, ...). Objective "
            "setting KEY=VALUE (VALUE read as JSON, checked against the setting's type); repeatable.",
            rich_help_panel="Objective settings (contrastive / contrastive-flat)",
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Ignore existing checkpoints in RUN and start fresh; what depends on a restarted stage is deleted "
            "(rgb: features; either: RUN/segments, RUN/scores, RUN/renders).",
            rich_help_panel="Run",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel="Run")] = False,
    *,
    given: Given,
) -> None:
    """Train a Gaussian scene on DATA into RUN (resumes RUN's last checkpoint unless --restart)."""
    from gsseg.cli.output import plain_console, styled
    from gsseg.config.train import Stage, TrainConfig
    from gsseg.errors import GssegError, file_error
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, check_stages, run_training
    from gsseg.utils.config_fields import apply_given, merge_resumed

    console = plain_console(stderr=True)
    if stage not in STAGE_CHOICES:
        raise GssegError(f"unknown --stage {stage!r}; choose one of: {', '.join(STAGE_CHOICES)}")
    stages = check_stages(STAGE_CHOICES[stage])
    values = {p: v for p, v in given.values.items() if p.split(".", 1)[0] not in GROUPS}
    flags = dict(given.flags)
    typed, sets = _objective_options(given, objective_set or [])
    for path, value in _background_options(background).items():
        values[path], flags[path] = value, "--background"
    if memory_budget is not None:  # a resource limit, not a result-changing setting: applies on resume too
        from gsseg.utils.memory import parse_size

        values["features.table_memory_mb"] = parse_size(memory_budget) / 2**20
        flags["features.table_memory_mb"] = "--memory-budget"
    if not data.exists():
        raise file_error(data, "dataset directory not found")
    _check_representation(values, flags, background)
    if "init_ply" in values:
        values["init_ply"] = str(Path(values["init_ply"]).resolve())
    run = RunDir(out)
    resuming = run.has_config() and not restart
    recorded = run.read_config() if resuming else None
    objective = values.get("features.objective", recorded.features.objective if recorded else "contrastive")
    if typed or sets or "features.objective" in values:  # the given settings replace the recorded ones
        values["features.objective_settings"] = _objective_settings(objective, typed, given.flags, sets)
    if not resuming or "downscale" in values or max_size is not None:
        values["downscale"] = _working_downscale(data, values.get("downscale"), max_size, strict)
        flags["downscale"] = "--max-size" if max_size is not None else "--downscale"
    clear: list[str] = []  # stages whose earlier outputs are deleted, once everything has been checked

    if recorded is not None:
        if Path(recorded.dataset) != data.resolve():
            raise GssegError(
                f"{out}: this run was trained on {recorded.dataset}, not {data.resolve()}; "
                "use another --out or pass --restart"
            )
        merged = merge_resumed(recorded, values)
        cfg = merged.config
        if merged.ignored:
            ignored = ", ".join(dict.fromkeys(flags[p] for p in merged.ignored))
            console.print(
                f"resuming {out} with its recorded settings; ignoring {ignored} (pass --restart to change them)",
                style="yellow",
            )
        if merged.restart.get("features") and "features" in stages:
            console.print(f"features settings changed: the features stage of {out} starts fresh", style="yellow")
            clear.append("features")
        cfg.stages = cast("list[Stage]", list(stages))
    else:
        cfg = TrainConfig(dataset=str(data.resolve()), stages=cast("list[Stage]", list(stages)))
        apply_given(cfg, values)
        if cfg.init_ply is not None:
            from gsseg.gaussians.ply import read_ply

            pretrained = read_ply(cfg.init_ply, drop_invalid=cfg.drop_invalid)  # fail early with a clear message
            if "rgb.sh_degree" not in values:
                cfg.rgb.sh_degree = min(pretrained.sh_degree, 3)
            if "rgb.iters" not in values:
                cfg.rgb.iters = 0
        if restart:
            clear.extend(stages)
    try:
        cfg.rgb.validate()
        cfg.features.validate()
        cfg.field.validate()
    except ValueError as e:
        raise GssegError(f"bad option: {e}") from None
    if "features" in cfg.stages:
        from gsseg.objectives import make_objective

        make_objective(cfg.features.objective, **cfg.features.objective_settings)  # bad settings fail before training
    no_masks = stage == "all" and "features.objective" not in values and not _has_masks(data)
    auto_masks = no_masks and cfg.representation == "gaussians"  # geometry masks render the Gaussians
    if auto_masks:
        console.print(
            f"{data}: no masks: the rgb stage runs, then weight-free geometry masks from its depth and normals "
            "(`gsseg masks DATA --source geometry --run RUN`), then the features stage",
            style="yellow",
        )
    elif no_masks:
        console.print(
            f"{data}: no masks, so only the rgb stage runs (run `gsseg masks DATA`, then "
            "`gsseg train DATA --out RUN --stage features`)",
            style="yellow",
        )
        cfg.stages = ["rgb"]

    from gsseg.train.distributed import current_group

    opts = StageOptions(resume=not restart, show_progress=not quiet)
    if auto_masks:
        import dataclasses

        from gsseg.data import load_dataset
        from gsseg.masks.runner import SourceOptions, make_source, run_source

        summaries = run_training(dataclasses.replace(cfg, stages=["rgb"]), run, opts, clear=clear)
        if current_group().is_main:
            ds = load_dataset(cfg.dataset, downscale=cfg.downscale)
            run_source(ds, make_source("geometry", SourceOptions(run=run.root)), show_progress=not quiet)
        summaries += run_training(dataclasses.replace(cfg, stages=["features"]), run, opts)
    else:
        summaries = run_training(cfg, run, opts, clear=clear)
    if not current_group().is_main:  # under torchrun rank 0 reports
        return
    for s in summaries:
        resumed = f", resumed from step {s['resumed_from']}" if s.get("resumed_from") is not None else ""
        target = s["features"] if s["stage"] == "features" else s.get("scene_ply", s.get("field"))
        what = f"{s['objective']}, D={s['dim']}, " if s["stage"] == "features" else ""
        held_out = f", test PSNR {s['test_psnr']:.2f} dB" if s.get("test_psnr") is not None else ""
        console.print(
            styled(
                (s["stage"], "green"),
                f": {s['steps']} steps{resumed}, {what}{s['gaussians'] if 'gaussians' in s else 'radiance field'} "
                f"({s['seconds']:.1f} s){held_out} -> {target}",
            ),
            soft_wrap=True,
        )
        for warning in s.get("warnings", []):
            console.print(f"warning: {warning}", style="yellow", soft_wrap=True)


def _working_downscale(data: Path, downscale: float | None, max_size: int | None, strict: bool) -> float:
    """The native-size divisor of the working resolution (``--downscale`` / ``--max-size`` / automatic)."""
    from gsseg.data import load_dataset

    return load_dataset(data, downscale=downscale, max_size=max_size, strict=strict, check_images=False).downscale


def _background_options(text: str | None) -> dict[str, Any]:
    """RGBConfig fields (dotted paths) for a --background value."""
    from gsseg.errors import GssegError

    if text is None:
        return {}
    if text in ("learned", "random"):
        return {"rgb.background_mode": text}
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise GssegError(f"bad --background {text!r}: use 'learned', 'random' or 'R,G,B' with values in [0,1]")
    return {"rgb.background_mode": "fixed", "rgb.background": rgb}


def _objective_options(given: Given, set_items: list[str]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The objective settings typed on the command line (``"<group>.<setting>"`` -> value; clicks parsed,
    files checked and made absolute) and the deprecated ``--set KEY=VALUE`` pairs."""
    from gsseg.cli.parsing import json_setting
    from gsseg.errors import file_error
    from gsseg.prompts.spec import parse_click

    sets = [json_setting(item) for item in set_items]
    typed: dict[str, Any] = {}
    for path, value in given.values.items():
        group, _, rel = path.partition(".")
        if group not in GROUPS:
            continue
        key = rel.rsplit(".", 1)[-1]
        if key in ("clicks", "negative_clicks"):
            for c in value:
                parse_click(c, positive=key == "clicks")
        elif key in OBJECTIVE_FILES and value is not None:
            where = Path(value)
            if not (where.is_dir() if OBJECTIVE_FILES[key] == "folder" else where.is_file()):
                raise file_error(where, f"{OBJECTIVE_FILES[key]} not found")
            value = str(where.resolve())
        typed[path] = value
    return typed, sets


def _objective_settings(
    objective: str, typed: dict[str, Any], flags: dict[str, str], sets: list[tuple[str, Any]]
) -> dict[str, Any]:
    """``features.objective_settings`` of ``objective`` from its typed options and ``--set`` pairs;
    GssegError for an option of another objective, an unknown setting or a value of the wrong type."""
    from gsseg.errors import GssegError
    from gsseg.objectives.registry import settings_class
    from gsseg.utils.config_fields import value_problem

    group = GROUP_OF.get(objective)
    if group is None:
        raise GssegError(f"unknown objective {objective!r}; choose one of: {', '.join(GROUP_OF)}")
    own = {p: v for p, v in typed.items() if p.startswith(f"{group}.")}
    wrong = sorted({flags[p] for p in typed} - {flags[p] for p in own})
    if wrong:
        raise GssegError(f"{', '.join(wrong)}: not a setting of --objective {objective}")
    settings = {p.rsplit(".", 1)[-1]: v for p, v in own.items()}
    by_name = {leaf.name: leaf for leaf in leaves(settings_class(objective))}
    for key, value in sets:
        if key not in by_name:
            raise GssegError(f"--set {key}: unknown {objective} setting; it has {', '.join(by_name)}")
        if (why := value_problem(by_name[key].type, value)) is not None:
            raise GssegError(f"--set {key}: {why}")
        settings[key] = value
    return settings


def _check_representation(values: dict[str, Any], flags: dict[str, str], background: str | None) -> None:
    """GssegError for a Gaussian-only option given with ``--representation nerf``."""
    from gsseg.errors import GssegError

    if values.get("representation", "gaussians") == "gaussians":
        return
    bad = [flags[p] for p in ("rgb.sh_degree", "rgb.init") if p in values]
    bad += ["--background"] if background is not None else []
    bad += [flags[p] for p in ("rgb.backend", "init_ply") if p in values]
    if bad:
        raise GssegError(f"{', '.join(bad)} only appl{'ies' if len(bad) == 1 else 'y'} to --representation gaussians")


def _has_masks(data: Path) -> bool:
    from gsseg.data.cache import derived_dir
    from gsseg.masks.store import MaskStore

    root = data if data.is_dir() else data.parent
    return bool(MaskStore(derived_dir(root, "masks")).views())  # the dataset's masks_dir


def register(app: typer.Typer) -> None:
    app.command("train")(train)
