"""Training configuration dataclasses (recorded in ``RUN/config.json``).

Defaults are tuned for short CPU runs on small scenes (a few thousand steps at ~128×96):
the densification schedule of gsplat's ``DefaultStrategy`` is compressed accordingly.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from gsseg.config.field import REPRESENTATIONS, FieldConfig, field_config_from_dict
from gsseg.utils.config_fields import APPLY, RESTART, resume

Stage = Literal["rgb", "features"]
BackgroundMode = Literal["learned", "fixed", "random"]
InitMode = Literal["auto", "points", "random"]
Backend = Literal["auto", "reference", "cpu", "cuda"]
Representation = Literal["gaussians", "nerf"]
STAGES: tuple[str, ...] = get_args(Stage)
BACKGROUND_MODES: tuple[str, ...] = get_args(BackgroundMode)


@dataclass
class LearningRates:
    """Per-parameter Adam learning rates (gsplat's; ``means`` is multiplied by the scene scale)."""

    means: float = 1.6e-4
    """Positions, in units of the scene scale."""
    means_final_factor: float = 0.01
    """The positions' rate decays exponentially to this fraction at the last step."""
    scales: float = 5e-3
    """Log-scales."""
    quats: float = 1e-3
    """Rotations (quaternions)."""
    opacities: float = 5e-2
    """Opacity logits."""
    sh0: float = 2.5e-3
    """Base colour (SH degree 0)."""
    shN: float = 2.5e-3 / 20
    """Higher SH coefficients."""


@dataclass
class DensifyConfig:
    """Densification / pruning with gsplat's ``DefaultStrategy`` (steps are optimisation steps)."""

    enabled: bool = True
    """Grow and prune Gaussians (off: the initial Gaussians only move)."""
    refine_start: int = 100
    """First step that grows or prunes."""
    refine_stop: int = 2000
    """No growing or pruning after this step."""
    refine_every: int = 100
    """Steps between two refinements."""
    reset_every: int = 1000
    """Opacity reset period in steps (0 = never)."""
    pause_after_reset: int = 0
    """Steps without refinement after an opacity reset."""
    grow_grad2d: float = 8e-4
    """Image-space gradient above which a Gaussian is split or cloned (gsplat: 2e-4; at 128×96 that grew
    tabletop to 39k Gaussians in 120 s (24.9 dB), 8e-4 to 9k (25.3 dB))."""
    grow_scale3d: float = 0.01
    """Gaussians larger than this fraction of the scene scale are split, smaller ones cloned."""
    prune_opa: float = 0.005
    """Gaussians below this opacity are pruned."""
    prune_scale3d: float = 1.0
    """Gaussians larger than this fraction of the scene scale are pruned (gsplat: 0.1; larger so the
    background shell survives)."""


def check_finite(section: Any, name: str) -> None:
    """ValueError naming the setting when a float of ``section`` (a config dataclass), or a number
    nested in one of its dict/list settings, is NaN or infinite (e.g. a hand-edited config.json)."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value}")
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, where)

    for f in dataclasses.fields(section):
        walk(getattr(section, f.name), f"{name}.{f.name}")


@dataclass
class RGBConfig:
    """The RGB (geometry + appearance) stage."""

    iters: int = field(default=3000, metadata=resume(APPLY))
    """RGB optimisation steps (a resumed run trains up to the new count)."""
    sh_degree: int = 3
    """Spherical-harmonics degree 0..3."""
    sh_degree_every: int = 500
    """The active SH degree rises by one every this many steps."""
    ssim_lambda: float = 0.2
    """Weight of the D-SSIM term of the RGB loss (the L1 term gets 1 minus it)."""
    coarse_until: float = 0.3
    """Render at coarse_factor × the resolution until this fraction of the schedule."""
    coarse_factor: float = 0.5
    """Resolution factor of the coarse phase."""
    lr: LearningRates = field(default_factory=LearningRates)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    background_mode: BackgroundMode = "learned"
    """Background behind the Gaussians: one optimised colour, a fixed colour or a random colour per step."""
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """The fixed colour, or the learned one's start (R,G,B in [0,1])."""
    lr_background: float = 5e-2
    """Learning rate of the learned background colour (decays like the positions' rate)."""
    init: InitMode = "auto"
    """Initial Gaussians: auto (the dataset's sparse points; without them, points triangulated from the
    training photos with the known poses, cached; else random), points or random."""
    init_random_count: int = 20_000
    """Random initial Gaussians (init random)."""
    init_random_extent: float = 1.0
    """Half-size of the random box, in units of the scene scale."""
    init_opacity: float = 0.1
    """Opacity of the initial Gaussians."""
    init_scale: float = 1.0
    """Initial size, times the mean distance to the 3 nearest points."""
    init_shell_points: int = 2000
    """Points of the background shell (sky / distant ground) coloured from the photos; 0 = none."""
    init_shell_radius: float = 5.0
    """Shell radius in units of the scene scale."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk (older ones are deleted)."""
    time_limit_s: float = 0.0
    """Training-time budget in seconds: the schedule compresses to fit it and the stage stops there; 0 = none."""
    seed: int = 0
    """Random seed."""
    backend: Backend = "auto"
    """Renderer."""
    device: str = "auto"
    """Torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, ..."""

    def validate(self) -> None:
        check_finite(self, "rgb")
        if self.iters < 0:
            raise ValueError("iters must be >= 0")
        if not 0 <= self.sh_degree <= 3:
            raise ValueError("sh_degree must be in 0..3")
        if self.init not in ("auto", "points", "random"):
            raise ValueError(f"init must be auto, points or random, got {self.init!r}")
        if self.background_mode not in BACKGROUND_MODES:
            raise ValueError(
                f"background mode must be one of {', '.join(BACKGROUND_MODES)}, got {self.background_mode!r}"
            )
        if len(self.background) != 3 or not all(0.0 <= float(v) <= 1.0 for v in self.background):
            raise ValueError(f"background must be three values in [0,1], got {self.background}")
        if self.checkpoint_every < 1 or self.sh_degree_every < 1:
            raise ValueError("checkpoint_every and sh_degree_every must be >= 1")


@dataclass
class FeatureStageConfig:
    """The features stage: per-Gaussian identity vectors trained by a named objective.

    ``objective_settings`` are passed to the objective (e.g. ``{"preset": "omniseg3d-gs"}``).
    ``table_scale`` < 1 builds contribution tables (and samples masks) at a reduced resolution
    (0: full resolution unless the tables of all views would exceed ``table_memory_mb``, then the
    largest scale that fits);
    ``table_memory_mb`` bounds the memory of cached tables (0: 40% of the RAM available when the
    stage starts; ``--memory-budget``). ``joint`` also trains the geometry
    with full rendering (RGB loss ``joint_rgb_weight``) and rewrites ``RUN/scene.ply``.
    ``views_per_step`` views make one step (their losses averaged); under torchrun the ranks
    share them (``gsseg/train/distributed.py``).
    """

    objective: str = field(default="contrastive", metadata=resume(RESTART))
    """Identity objective (gsseg/objectives): contrastive (OmniSeg3D), contrastive-flat, ultrametric
    (Ultrametric Feature Fields), object-field (SANeRF-HQ), clustering (ClusteringSDF) or vote."""
    objective_settings: dict[str, Any] = field(default_factory=dict, metadata=resume(RESTART))
    """The objective's settings given for the run (a field of its settings dataclass each)."""
    iters: int = field(default=2000, metadata=resume(APPLY))
    """Features-stage steps."""
    lr: float = field(default=1e-2, metadata=resume(RESTART))
    """Adam learning rate of the features."""
    table_scale: float = field(default=0.0, metadata=resume(RESTART))
    """Build contribution tables (and read masks) at this fraction of the image size (0: full size, or the
    largest fraction at which every view's table fits the memory budget)."""
    table_memory_mb: float = field(default=0.0, metadata=resume(APPLY))
    """RAM for cached contribution tables in MiB (0: 40% of the memory available when the stage starts)."""
    joint: bool = field(default=False, metadata=resume(RESTART))
    """Also train the geometry with full rendering (slow; rewrites RUN/scene.ply), or keep it frozen."""
    joint_rgb_weight: float = field(default=1.0, metadata=resume(RESTART))
    """Weight of the RGB loss in joint mode."""
    checkpoint_every: int = field(default=500, metadata=resume(APPLY))
    """Write a checkpoint every this many steps."""
    keep_checkpoints: int = field(default=2, metadata=resume(APPLY))
    """Checkpoints kept on disk."""
    time_limit_s: float = field(default=0.0, metadata=resume(APPLY))
    """Stop the features stage after this many seconds (0 = no limit)."""
    seed: int = field(default=0, metadata=resume(RESTART))
    """Random seed of the features stage."""
    backend: Backend = field(default="auto", metadata=resume(RESTART))
    """Renderer of the features stage."""
    device: str = field(default="auto", metadata=resume(APPLY))
    """Torch device of the features stage."""
    threads: int = field(default=1, metadata=resume(APPLY))
    """CPU intra-op threads while the stage runs (0 = torch's default); steps are small."""
    views_per_step: int = field(default=1, metadata=resume(RESTART))
    """Views per step, losses averaged; under torchrun the processes share each step's views."""

    def validate(self) -> None:
        check_finite(self, "features")
        if self.views_per_step < 1:
            raise ValueError(f"views per step must be >= 1, got {self.views_per_step}")
        if self.iters < 0:
            raise ValueError("feature iters must be >= 0")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if self.lr <= 0:
            raise ValueError("feature lr must be > 0")
        if not 0 <= self.table_scale <= 1:
            raise ValueError(f"table scale must lie in (0, 1] (0 = automatic), got {self.table_scale}")
        if self.table_memory_mb < 0 or self.checkpoint_every < 1:
            raise ValueError("table memory must be >= 0 (0 = automatic) and checkpoint_every >= 1")


@dataclass
class TrainConfig:
    """A run: dataset, stages to run and their settings.

    ``extra`` keeps config sections written by stages this version does not know, so
    rewriting ``config.json`` never loses them.
    """

    dataset: str
    """Dataset directory (absolute)."""
    downscale: float = 1.0
    """Divide the native image size by this factor (recorded in the run)."""
    stages: list[Stage] = field(default_factory=lambda: ["rgb"], metadata=resume(APPLY))
    """Stages this invocation runs."""
    init_ply: str | None = None
    """Start from a pretrained INRIA-layout 3DGS PLY (absolute path)."""
    drop_invalid: bool = False
    """Drop Gaussians with NaN/Inf parameters from the initial PLY instead of failing."""
    rgb: RGBConfig = field(default_factory=RGBConfig)
    features: FeatureStageConfig = field(default_factory=FeatureStageConfig)
    representation: Representation = "gaussians"
    """Scene representation: gaussians (3D Gaussian splatting) or nerf (a radiance field rendered by volume
    rendering; RUN/field.pt)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Config sections of stages this version does not know (kept when config.json is rewritten)."""
    field: FieldConfig = field(default_factory=FieldConfig)  # last: the name shadows dataclasses.field below it

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d["rgb"]["background"] = list(d["rgb"]["background"])
        d["field"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d["field"].items()}
        return {**extra, **d}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "TrainConfig":
        """Config from ``config.json`` data; ValueError naming the setting when a value has the wrong type."""
        if not isinstance(d, dict):
            raise ValueError(f"the top level must be a JSON object, got {type(d).__name__}")
        if "dataset" not in d:
            raise ValueError("missing setting 'dataset'")
        fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
        known = set(fields) - {"extra"}
        args = {k: v for k, v in d.items() if k in known}
        for k, v in args.items():
            _check_type(k, str(fields[k].type), v)
        if "rgb" in args:
            args["rgb"] = _build(RGBConfig, args["rgb"], "rgb")
        if "features" in args:
            args["features"] = _build(FeatureStageConfig, args["features"], "features")
        if "field" in args:
            types = {f.name: f.type for f in dataclasses.fields(FieldConfig)}
            for k, v in args["field"].items():
                if k in types:
                    _check_type(f"field.{k}", str(types[k]), v)
            args["field"] = field_config_from_dict(args["field"])
        if args.get("representation", "gaussians") not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {', '.join(REPRESENTATIONS)}, got {args['representation']!r}"
            )
        return TrainConfig(**args, extra={k: v for k, v in d.items() if k not in known})


def _build(cls, d: dict[str, Any], where: str):
    """Dataclass ``cls`` from the dict at ``where`` in config.json, recursing into nested dataclass
    fields; unknown keys and values of the wrong type rejected."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"unknown {where} settings: {', '.join(sorted(unknown))}")
    nested = {"lr": LearningRates, "densify": DensifyConfig}
    args = {}
    for k, v in d.items():
        _check_type(f"{where}.{k}", str(names[k].type), v)
        if k in nested and isinstance(v, dict):
            v = _build(nested[k], v, f"{where}.{k}")
        elif k == "background":
            v = tuple(float(x) for x in v)
        args[k] = v
    return cls(**args)


_JSON_TYPES = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
    "list": (list,),
    "tuple": (list, tuple),
    "dict": (dict,),
}


_LITERAL_ALIASES = dict.fromkeys(("Stage", "BackgroundMode", "InitMode", "Backend", "Representation"), "str")


def _check_type(name: str, annotation: object, value: Any) -> None:
    """ValueError unless ``value`` (read from JSON) fits the field annotation ``annotation`` (a string).

    Nested dataclasses (``RGBConfig``, ...) must be JSON objects; ``float`` accepts ints; ``bool`` is
    not an ``int`` here; numbers must be finite.
    """
    for option in (a.strip() for a in str(annotation).split("|")):
        base = option.split("[", 1)[0]
        allowed = _JSON_TYPES.get(_LITERAL_ALIASES.get(base, base), (dict,))  # anything else: a nested dataclass
        if isinstance(value, bool) and bool not in allowed:
            continue
        if isinstance(value, allowed):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            return
    wanted = " or ".join(
        a.strip() if a.strip().split("[")[0] in _JSON_TYPES else "a JSON object" for a in str(annotation).split("|")
    )
    raise ValueError(f"{name} must be {wanted}, got {json.dumps(value)[:40]}")
