"""Training configuration dataclasses (recorded in ``RUN/config.json``).

Defaults are tuned for short CPU runs on small scenes (a few thousand steps at ~128×96):
the densification schedule of gsplat's ``DefaultStrategy`` is compressed accordingly.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from gsseg.config.field import REPRESENTATIONS, FieldConfig, field_config_from_dict

STAGES = ("rgb", "features")
BACKGROUND_MODES = ("learned", "fixed", "random")


@dataclass
class LearningRates:
    """Per-parameter Adam learning rates (gsplat's; ``means`` is multiplied by the scene scale)."""

    means: float = 1.6e-4
    means_final_factor: float = 0.01  # means lr decays exponentially to this fraction at the last step
    scales: float = 5e-3
    quats: float = 1e-3
    opacities: float = 5e-2
    sh0: float = 2.5e-3
    shN: float = 2.5e-3 / 20


@dataclass
class DensifyConfig:
    """Densification / pruning with gsplat's ``DefaultStrategy`` (steps are optimisation steps)."""

    enabled: bool = True
    refine_start: int = 100
    refine_stop: int = 2000
    refine_every: int = 100
    reset_every: int = 1000  # opacity reset period (0 = never)
    pause_after_reset: int = 0
    grow_grad2d: float = (
        8e-4  # gsplat: 2e-4; at 128×96 that grew tabletop to 39k Gaussians in 120 s (24.9 dB), 8e-4 to 9k (25.3 dB)
    )
    grow_scale3d: float = 0.01
    prune_opa: float = 0.005
    prune_scale3d: float = 1.0  # gsplat: 0.1; larger so the background shell (init_shell_points) survives


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

    iters: int = 3000
    sh_degree: int = 3
    sh_degree_every: int = 500  # the active SH degree rises by one every this many steps
    ssim_lambda: float = 0.2
    coarse_until: float = 0.3  # render at coarse_factor × resolution until this fraction of the schedule
    coarse_factor: float = 0.5
    lr: LearningRates = field(default_factory=LearningRates)
    densify: DensifyConfig = field(default_factory=DensifyConfig)
    background_mode: str = "learned"  # "learned" (one optimised RGB colour), "fixed" or "random" (per step)
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)  # the fixed colour, or the learned one's start
    lr_background: float = 5e-2  # decays like the means lr
    init: str = "auto"  # "auto" (the dataset's points, else triangulated ones, else random) | "points" | "random"
    init_random_count: int = 20_000
    init_random_extent: float = 1.0  # half-size of the random box, in units of the scene scale
    init_opacity: float = 0.1
    init_scale: float = 1.0
    init_shell_points: int = 2000  # background shell (sky / distant ground) coloured from the photos; 0 = none
    init_shell_radius: float = 5.0  # shell radius in units of the scene scale
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    time_limit_s: float = (
        0.0  # training-time budget: the schedule compresses to fit it and the run stops there; 0 = none
    )
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"  # "auto" = cuda when available, else cpu

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

    objective: str = "contrastive"
    objective_settings: dict[str, Any] = field(default_factory=dict)
    iters: int = 2000
    lr: float = 1e-2
    table_scale: float = 0.0
    table_memory_mb: float = 0.0
    joint: bool = False
    joint_rgb_weight: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    time_limit_s: float = 0.0
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    threads: int = 1  # CPU intra-op threads while the stage runs (0 = torch's default); steps are small
    views_per_step: int = 1

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
    downscale: float = 1.0
    stages: list[str] = field(default_factory=lambda: ["rgb"])
    init_ply: str | None = None
    drop_invalid: bool = False
    rgb: RGBConfig = field(default_factory=RGBConfig)
    features: FeatureStageConfig = field(default_factory=FeatureStageConfig)
    representation: str = "gaussians"  # "gaussians" (3DGS) or "nerf" (gsseg/field: radiance field)
    extra: dict[str, Any] = field(default_factory=dict)
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
            _check_type(k, fields[k].type, v)
        if "rgb" in args:
            args["rgb"] = _build(RGBConfig, args["rgb"], "rgb")
        if "features" in args:
            args["features"] = _build(FeatureStageConfig, args["features"], "features")
        if "field" in args:
            types = {f.name: f.type for f in dataclasses.fields(FieldConfig)}
            for k, v in args["field"].items():
                if k in types:
                    _check_type(f"field.{k}", types[k], v)
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
        _check_type(f"{where}.{k}", names[k].type, v)
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


def _check_type(name: str, annotation: object, value: Any) -> None:
    """ValueError unless ``value`` (read from JSON) fits the field annotation ``annotation`` (a string).

    Nested dataclasses (``RGBConfig``, ...) must be JSON objects; ``float`` accepts ints; ``bool`` is
    not an ``int`` here; numbers must be finite.
    """
    for option in (a.strip() for a in str(annotation).split("|")):
        base = option.split("[", 1)[0]
        allowed = _JSON_TYPES.get(base, (dict,))  # anything else is a nested dataclass
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
