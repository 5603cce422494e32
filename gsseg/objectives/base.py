"""The objective interface: what an identity objective samples in a view and which loss it
returns from rendered per-pixel quantities.

An objective never renders. The trainer (``gsseg/train/features.py``) asks it for a
:class:`PixelBatch` of one view, renders the batch's pixels (frozen-geometry contribution
tables, or full rendering in joint mode) and hands the composited per-pixel features back to
:meth:`Objective.loss`. The same objectives can therefore drive any renderer that can produce
per-pixel features for given pixel ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from gsseg.data.dataset import SceneDataset
from gsseg.errors import GssegError
from gsseg.masks.store import MaskStore, ViewMasks

RENDERED_EXTRAS = frozenset({"rgb", "depth", "alpha"})


@dataclass
class PixelBatch:
    """Pixels sampled in ONE view.

    view: image stem; pixel_ids: [P] int64, y * W + x at the table resolution;
    targets: objective-specific data (patch ids, labels, pairs, ...).
    """

    view: str
    pixel_ids: Tensor
    targets: dict[str, Any] = field(default_factory=dict)


@dataclass
class FeatureContext:
    """Everything an objective may precompute from.

    dataset: the scene; store: its masks (None when the objective needs none);
    views: training views; height, width: table resolution (every view has the same size);
    device: where features live; generator: the run's random generator; run_root: RUN or None;
    joint: True when geometry is trained too (rendered depth then carries gradients);
    surface: the frozen geometry's depth probe at the table resolution (``depth_map(view)``,
    ``intrinsics(view)``) for objectives that read rendered depth, or None: they build one from
    ``RUN/scene.ply`` (the Gaussian backend); field runs pass their own;
    mask_cache: how many resized views :meth:`masks` keeps in memory.
    """

    dataset: SceneDataset
    store: MaskStore | None
    views: list[str]
    height: int
    width: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    generator: torch.Generator = field(default_factory=torch.Generator)
    run_root: Path | None = None
    joint: bool = False
    surface: Any = None
    mask_cache: int = 16
    _masks: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    def masks(self, view: str) -> ViewMasks | None:
        """The view's masks resized (nearest) to the table resolution; None without a mask file.

        A small LRU keeps the last ``mask_cache`` views, so a run never holds every view.
        """
        if self.store is None or not self.store.has(view):
            return None
        if view in self._masks:
            self._masks.move_to_end(view)
            return self._masks[view]
        vm = self.store.load(view)
        if (vm.height, vm.width) != (self.height, self.width):
            vm = vm.resized(self.height, self.width)
        self._masks[view] = vm
        while len(self._masks) > max(self.mask_cache, 1):
            self._masks.popitem(last=False)
        return vm


def require_masks(ctx: FeatureContext) -> None:
    """GssegError naming the mask folder when no training view has masks (mask-supervised objectives)."""
    if ctx.store is None or not any(ctx.store.has(v) for v in ctx.views):
        where = ctx.store.root if ctx.store is not None else ctx.dataset.masks_dir
        raise GssegError(f"{where}: no masks for the training views (run `gsseg masks DATA` first)")


class Objective(ABC):
    """An identity objective on composited per-Gaussian vectors.

    Subclasses set ``name`` and ``kind`` ("embedding" | "logits") and take their settings as
    keyword arguments (normally through a dataclass ``Settings``).
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    # Training-free objectives (e.g. ``vote``) compute their features in one pass:
    # ``solve(ctx, table_of, n_gaussians) -> [N,D]`` replaces the optimisation loop.
    training_free: ClassVar[bool] = False

    def activate(self, features: Tensor) -> Tensor:
        """Per-Gaussian vectors as composited, [N,D] -> [N,D] (default: as stored; e.g. sigmoid)."""
        return features

    @abstractmethod
    def feature_dim(self) -> int:
        """D, the per-Gaussian vector length."""

    def init_features(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Initial per-Gaussian vectors [N,D]: random unit vectors (override for logits)."""
        f = torch.randn(n, self.feature_dim(), generator=generator)
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def prepare(self, ctx: FeatureContext) -> None:
        """Per-run precomputation (default: nothing)."""

    def begin_step(self, step: int, total_steps: int) -> None:
        """Called before every step (for schedules; default: nothing)."""

    @abstractmethod
    def sample(self, view: str, ctx: FeatureContext, generator: torch.Generator) -> PixelBatch | None:
        """Pixels and targets to learn from in ``view``; None when the view has nothing to teach."""

    @abstractmethod
    def loss(self, batch: PixelBatch, rendered: dict[str, Tensor], features: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss and named float terms for logging.

        rendered["features"]: [P,D] composited features of ``batch.pixel_ids`` (differentiable);
        plus, for the names in :meth:`needs`, rendered["rgb"] [P,3], ["depth"] [P], ["alpha"] [P]
        (detached from the frozen scene; differentiable in joint mode).
        features: [N,D] the per-Gaussian vectors (for per-Gaussian regularisers).
        """

    def needs(self) -> set[str]:
        """Rendered quantities besides features that :meth:`loss` reads (subset of rgb/depth/alpha)."""
        return set()

    def settings(self) -> dict[str, Any]:
        """The objective's settings, recorded in the run (JSON-serialisable)."""
        s = getattr(self, "cfg", None)
        return asdict(s) if is_dataclass(s) and not isinstance(s, type) else {}

    def extras(self) -> dict[str, Any]:
        """Objective-specific data stored with the features (default: none)."""
        return {}


def settings_from_preset(cls: type, objective: str, presets: dict[str, dict[str, Any]], settings: dict[str, Any]):
    """``cls`` (a settings dataclass with a ``preset`` field) from a preset name (``settings["preset"]``,
    default "default") overridden by explicit values; GssegError naming an unknown preset or setting."""
    settings = dict(settings)
    preset = settings.pop("preset", "default")
    if preset not in presets:
        raise GssegError(f"unknown {objective} preset {preset!r}; choose one of: {', '.join(presets)}")
    unknown = sorted(set(settings) - {f.name for f in fields(cls)})
    if unknown:
        raise GssegError(f"unknown {objective} setting(s): {', '.join(unknown)}")
    return cls(**{**presets[preset], **settings, "preset": preset})
