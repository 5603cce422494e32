"""``gsseg train DATA --out RUN``: reconstruct the Gaussian scene (RGB stage), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gsseg.cli.parsing import COUNT, NON_NEGATIVE, POSITIVE, SEED, UNIT, Range

STAGE_HELP = (
    "Stage to run: 'all' (rgb, then features when the dataset has masks or --objective is given), "
    "'rgb' (Gaussian geometry + colour) or 'features' (identity features on a run's frozen scene)."
)
STAGE_CHOICES = {"all": ["rgb", "features"], "rgb": ["rgb"], "features": ["features"]}


def train(
    data: Annotated[Path, typer.Argument(help="Dataset directory (transforms*.json or COLMAP).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory; an existing run is resumed.")],
    stage: Annotated[str, typer.Option(help=STAGE_HELP)] = "all",
    representation: Annotated[
        Optional[str],
        typer.Option(
            help="Scene representation: gaussians (3D Gaussian splatting, default) or nerf (a radiance field "
            "rendered by volume rendering; RUN/field.pt). Recorded in the run."
        ),
    ] = None,
    init_ply: Annotated[
        Optional[Path],
        typer.Option(
            help="Start from a pretrained INRIA-layout 3DGS PLY. Without --iters the RGB stage is skipped "
            "(the PLY becomes RUN/scene.ply as is)."
        ),
    ] = None,
    iters: Annotated[Optional[int], typer.Option(help="RGB optimisation steps (default 3000)."), NON_NEGATIVE] = None,
    downscale: Annotated[
        Optional[float],
        typer.Option(help="Divide the native image size by this factor (recorded in the run)."),
        Range(gt=0, le=1000),
    ] = None,
    max_size: Annotated[
        Optional[int],
        typer.Option(
            help="Cap the longest image side at this many pixels (0: no cap; default 480 when --downscale is not "
            "given either). The working resolution is recorded in the run; later verbs reuse it."
        ),
        Range(ge=0, le=1_000_000),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse frames whose image file is missing instead of skipping them.")
    ] = False,
    sh_degree: Annotated[
        Optional[int], typer.Option(help="Spherical-harmonics degree 0..3 (default 3)."), Range(ge=0, le=3)
    ] = None,
    init: Annotated[
        Optional[str],
        typer.Option(
            help="Initial Gaussians: auto (the dataset's sparse points; without them, points triangulated "
            "from the training photos with the known poses, cached; else random), points or random."
        ),
    ] = None,
    background: Annotated[
        Optional[str],
        typer.Option(
            help="Background behind the Gaussians: 'learned' (default: one optimised colour), 'random' "
            "(a new colour each step) or a fixed colour 'R,G,B' with values in [0,1], e.g. '1,1,1'."
        ),
    ] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Write a checkpoint every N steps."), COUNT] = None,
    time_limit: Annotated[
        Optional[float], typer.Option(help="Stop RGB training after this many seconds."), POSITIVE
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed."), SEED] = None,
    backend: Annotated[Optional[str], typer.Option(help="Renderer: auto, reference, cpu or cuda.")] = None,
    drop_invalid: Annotated[
        bool,
        typer.Option(
            "--drop-invalid", help="Drop Gaussians with NaN/Inf parameters from --init-ply instead of failing."
        ),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Ignore existing checkpoints in RUN and start fresh; what depends on a restarted stage is deleted "
            "(rgb: features; either: RUN/segments, RUN/scores, RUN/renders).",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    objective: Annotated[
        Optional[str],
        typer.Option(
            help="Identity objective of the features stage: contrastive (OmniSeg3D), contrastive-flat, "
            "ultrametric (Ultrametric Feature Fields), ... (default contrastive)."
        ),
    ] = None,
    feature_iters: Annotated[
        Optional[int], typer.Option(help="Features-stage steps (default 2000)."), NON_NEGATIVE
    ] = None,
    feature_lr: Annotated[
        Optional[float], typer.Option(help="Adam learning rate of the features (default 1e-2)."), POSITIVE
    ] = None,
    feature_dim: Annotated[
        Optional[int], typer.Option(help="Feature dimension D of the objective (default 16)."), Range(ge=1, le=4096)
    ] = None,
    preset: Annotated[
        Optional[str],
        typer.Option(
            help="Objective preset, e.g. contrastive: paper | omniseg3d-gs | omniseg3d-nerf; ultrametric: paper."
        ),
    ] = None,
    objective_set: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="Objective setting KEY=VALUE (VALUE parsed as JSON when possible); repeatable, "
            "e.g. --set level_decay=0.2 --set pixels=8192.",
        ),
    ] = None,
    table_scale: Annotated[
        Optional[float],
        typer.Option(
            help="Features stage: build contribution tables (and read masks) at this fraction of the image size "
            "(default: full size, or the largest fraction at which every view's table fits --memory-budget)."
        ),
        UNIT,
    ] = None,
    joint: Annotated[
        Optional[bool],
        typer.Option(
            "--joint/--frozen",
            help="Features stage: also train the geometry with full rendering (slow; rewrites "
            "RUN/scene.ply), or keep it frozen (default).",
        ),
    ] = None,
    feature_time_limit: Annotated[
        Optional[float], typer.Option(help="Stop the features stage after this many seconds."), POSITIVE
    ] = None,
    memory_budget: Annotated[
        Optional[str],
        typer.Option(
            help="Features stage: RAM for cached contribution tables, e.g. 4G or 512M (default: 40% of the memory "
            "available when the stage starts); tables beyond it are evicted and rebuilt on demand."
        ),
    ] = None,
    views_per_step: Annotated[
        Optional[int],
        typer.Option(
            help="Features stage: views per step, losses averaged (default 1). Under `torchrun --nproc-per-node N "
            "-m gsseg train ...` the N processes share each step's views."
        ),
        Range(ge=1, le=100_000),
    ] = None,
    click: Annotated[
        Optional[list[str]],
        typer.Option(
            "--click",
            help="object-field / vote: a click STEM:X,Y on the object in a training view (pixel x, y), "
            "lifted to 3D with the rendered depth; repeatable; STEM:X,Y@K prompts object K.",
        ),
    ] = None,
    negative_click: Annotated[
        Optional[list[str]],
        typer.Option(
            "--negative-click",
            help="object-field / vote: a click STEM:X,Y on something that is not the object; repeatable.",
        ),
    ] = None,
    prompts: Annotated[
        Optional[Path],
        typer.Option(
            "--prompts",
            help='object-field / vote: prompt file {"objects": [{"name", "positive": [...], "negative": [...]}]} '
            'with 3D points (lists of x, y, z) or clicks "STEM:X,Y".',
        ),
    ] = None,
    sam_checkpoint: Annotated[
        Optional[Path],
        typer.Option(
            "--sam-checkpoint",
            help="object-field / vote: build each view's object mask with SAM point prompts from "
            "this checkpoint instead of choosing among the dataset's masks.",
        ),
    ] = None,
    vote_labels: Annotated[
        Optional[Path],
        typer.Option(
            "--vote-labels",
            help="vote / clustering: folder of <stem>.png label maps whose ids are consistent across "
            "views (e.g. DATA/gt/object), instead of prompts or the mask store.",
        ),
    ] = None,
) -> None:
    """Train a Gaussian scene on DATA into RUN (resumes RUN's last checkpoint unless --restart)."""
    from gsseg.cli.output import plain_console, styled
    from gsseg.config.train import TrainConfig
    from gsseg.errors import GssegError, file_error
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, check_stages, run_training

    console = plain_console(stderr=True)
    if stage not in STAGE_CHOICES:
        raise GssegError(f"unknown --stage {stage!r}; choose one of: {', '.join(STAGE_CHOICES)}")
    stages = check_stages(STAGE_CHOICES[stage])
    feature_given = _feature_options(
        objective,
        feature_lr,
        feature_dim,
        preset,
        objective_set or [],
        table_scale,
        joint,
        feature_time_limit,
        seed,
        backend,
        views_per_step,
    )
    _prompt_options(feature_given, click or [], negative_click or [], prompts, sam_checkpoint, vote_labels)
    if not data.exists():
        raise file_error(data, "dataset directory not found")
    _check_representation(representation, sh_degree, init, background, backend, init_ply)
    run = RunDir(out)
    clear: list[str] = []  # stages whose earlier outputs are deleted, once everything has been checked
    given = {
        k: v
        for k, v in {
            "iters": iters,
            "sh_degree": sh_degree,
            "init": init,
            **_background_options(background),
            "checkpoint_every": checkpoint_every,
            "time_limit_s": time_limit,
            "seed": seed,
            "backend": backend,
        }.items()
        if v is not None
    }

    if run.has_config() and not restart:
        cfg = run.read_config()
        if Path(cfg.dataset) != data.resolve():
            raise GssegError(
                f"{out}: this run was trained on {cfg.dataset}, not {data.resolve()}; "
                "use another --out or pass --restart"
            )
        changed = [k for k, v in given.items() if k != "iters" and getattr(cfg.rgb, k) != v]
        if (downscale is not None or max_size is not None) and _working_downscale(
            data, downscale, max_size, strict
        ) != cfg.downscale:
            changed.append("downscale" if max_size is None else "max_size")
        if init_ply is not None and str(init_ply.resolve()) != cfg.init_ply:
            changed.append("init_ply")
        if representation is not None and representation != cfg.representation:
            changed.append("representation")
        if changed:
            flags = dict.fromkeys(_FLAG_NAMES.get(k, k.replace("_", "-")) for k in changed)
            console.print(
                f"resuming {out} with its recorded settings; ignoring --{', --'.join(flags)} "
                "(pass --restart to change them)",
                style="yellow",
            )
        if iters is not None:
            cfg.rgb.iters = cfg.field.iters = iters
        if _apply_feature_options(cfg.features, feature_given, resuming=True) and "features" in stages:
            console.print(f"features settings changed: the features stage of {out} starts fresh", style="yellow")
            clear.append("features")
        cfg.stages = stages
    else:
        cfg = TrainConfig(
            dataset=str(data.resolve()),
            downscale=_working_downscale(data, downscale, max_size, strict),
            stages=stages,
            init_ply=str(init_ply.resolve()) if init_ply else None,
            drop_invalid=drop_invalid,
            representation=representation or "gaussians",
        )
        for k, v in given.items():
            setattr(cfg.rgb, k, v)
        _field_options(cfg, given)
        _apply_feature_options(cfg.features, feature_given, resuming=False)
        if init_ply is not None:
            from gsseg.gaussians.ply import read_ply

            pretrained = read_ply(init_ply, drop_invalid=drop_invalid)  # fail early with a clear message
            if sh_degree is None:
                cfg.rgb.sh_degree = min(pretrained.sh_degree, 3)
            if iters is None:
                cfg.rgb.iters = 0
        if restart:
            clear.extend(stages)
    if feature_iters is not None:
        cfg.features.iters = feature_iters
    if memory_budget is not None:  # a resource limit, not a result-changing setting: applies on resume too
        from gsseg.utils.memory import parse_size

        cfg.features.table_memory_mb = parse_size(memory_budget) / 2**20
    try:
        cfg.rgb.validate()
        cfg.features.validate()
        cfg.field.validate()
    except ValueError as e:
        raise GssegError(f"bad option: {e}") from None
    if "features" in cfg.stages:
        from gsseg.objectives import make_objective

        make_objective(cfg.features.objective, **cfg.features.objective_settings)  # bad settings fail before training
    no_masks = stage == "all" and objective is None and not _has_masks(data)
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


_FLAG_NAMES = {"time_limit_s": "time-limit", "background_mode": "background", "init_ply": "init-ply"}


def _background_options(text: str | None) -> dict:
    """RGBConfig fields for a --background value."""
    from gsseg.errors import GssegError

    if text is None:
        return {}
    if text in ("learned", "random"):
        return {"background_mode": text}
    try:
        rgb = tuple(float(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 1.0 for v in rgb):
        raise GssegError(f"bad --background {text!r}: use 'learned', 'random' or 'R,G,B' with values in [0,1]")
    return {"background_mode": "fixed", "background": rgb}


def _feature_options(
    objective, lr, dim, preset, sets, table_scale, joint, time_limit, seed, backend, views_per_step=None
) -> dict:
    """FeatureStageConfig fields given on the command line (``objective_settings`` holds the objective's)."""
    from gsseg.cli.parsing import json_setting

    settings = {}
    for item in sets:
        key, value = json_setting(item)
        settings[key] = value
    if dim is not None:
        settings["dim"] = dim
    if preset is not None:
        settings["preset"] = preset
    given = {
        "objective": objective,
        "lr": lr,
        "table_scale": table_scale,
        "joint": joint,
        "time_limit_s": time_limit,
        "seed": seed,
        "backend": backend,
        "views_per_step": views_per_step,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if settings or objective is not None:
        given["objective_settings"] = settings
    return given


def _prompt_options(
    given: dict,
    clicks: list[str],
    negative_clicks: list[str],
    prompts: Path | None,
    sam_checkpoint: Path | None,
    vote_labels: Path | None,
) -> None:
    """Add prompt / label options to ``given["objective_settings"]`` (paths made absolute, files checked)."""
    from gsseg.errors import file_error
    from gsseg.prompts.spec import parse_click

    for c in clicks:
        parse_click(c)
    for c in negative_clicks:
        parse_click(c, positive=False)
    extra: dict = {}
    if clicks:
        extra["clicks"] = list(clicks)
    if negative_clicks:
        extra["negative_clicks"] = list(negative_clicks)
    for key, path, is_dir in (
        ("prompts", prompts, False),
        ("sam_checkpoint", sam_checkpoint, False),
        ("labels_dir", vote_labels, True),
    ):
        if path is None:
            continue
        if not (path.is_dir() if is_dir else path.is_file()):
            raise file_error(path, "folder not found" if is_dir else "file not found")
        extra[key] = str(path.resolve())
    if extra:
        given["objective_settings"] = {**given.get("objective_settings", {}), **extra}


def _apply_feature_options(fcfg, given: dict, resuming: bool) -> bool:
    """Set the given feature options; True when a setting that changes the result differs."""
    changed = False
    for k, v in given.items():
        if getattr(fcfg, k) != v:
            changed = changed or (resuming and k != "time_limit_s")
            setattr(fcfg, k, v)
    return changed


def _check_representation(representation, sh_degree, init, background, backend, init_ply) -> None:
    """GssegError for an unknown --representation or a Gaussian-only option given with nerf."""
    from gsseg.config.field import REPRESENTATIONS
    from gsseg.errors import GssegError

    if representation is None:
        return
    if representation not in REPRESENTATIONS:
        raise GssegError(f"unknown --representation {representation!r}; choose one of: {', '.join(REPRESENTATIONS)}")
    if representation != "gaussians":
        given = {"--sh-degree": sh_degree, "--init": init, "--background": background, "--backend": backend}
        given["--init-ply"] = init_ply
        bad = [k for k, v in given.items() if v is not None]
        if bad:
            raise GssegError(
                f"{', '.join(bad)} only appl{'ies' if len(bad) == 1 else 'y'} to --representation gaussians"
            )


def _field_options(cfg, given: dict) -> None:
    """Copy the RGB options that a radiance field shares (steps, time limit, seed, checkpoint period)."""
    for k in ("iters", "time_limit_s", "seed", "checkpoint_every"):
        if k in given:
            setattr(cfg.field, k, given[k])


def _has_masks(data: Path) -> bool:
    from gsseg.data.cache import derived_dir
    from gsseg.masks.store import MaskStore

    root = data if data.is_dir() else data.parent
    return bool(MaskStore(derived_dir(root, "masks")).views())  # the dataset's masks_dir


def register(app: typer.Typer) -> None:
    app.command("train")(train)
