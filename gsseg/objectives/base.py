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
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

from gsseg.data.dataset import SceneDataset
from gsseg.errors import GssegError
from gsseg.masks.store import MaskStore, ViewMasks

if TYPE_CHECKING:
    from gsseg.prompts.run import RunPrompts
    from gsseg.prompts.spec import PromptOptions
    from gsseg.render.types import ContributionTable

RENDERED_EXTRAS = frozenset({"rgb", "depth", "alpha"})


class DepthProbe(Protocol):
    """Rendered depth of the frozen geometry in the training views at the table resolution."""

    def depth_map(self, view: str) -> np.ndarray:
        """[H,W] float32 camera-space z (0 where nothing is rendered)."""
        ...

    def intrinsics(self, view: str) -> np.ndarray:
        """[3,3] pinhole intrinsics of ``view`` at the table resolution."""
        ...


TableLookup = Callable[[str], "ContributionTable"]
"""``table_of(view)`` -> that training view's contribution table at the table resolution."""


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
    """Everything an objective may precompute from, handed over by the trainer (an objective never
    reads the run directory itself).

    dataset: the scene; store: its masks (None when the objective needs none);
    views: training views; height, width: table resolution (every view has the same size);
    device: where features live; generator: the run's random generator;
    joint: True when geometry is trained too (rendered depth then carries gradients);
    surface: the frozen geometry's rendered depth at the table resolution, a
    :class:`DepthProbe` (``depth_map(view)`` [H,W], ``intrinsics(view)`` [3,3]), or None when the
    trainer has no geometry to render (objectives that need it say so);
    prompts: the prompts propagated to the training views (``gsseg.prompts.run.RunPrompts``:
    ``labels`` view -> [H,W] int64, ``spec``, ``summary()``) when :meth:`Objective.prompt_options`
    asked for them, else None;
    mask_cache: how many resized views :meth:`masks` keeps in memory.
    """

    dataset: SceneDataset
    store: MaskStore | None
    views: list[str]
    height: int
    width: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    generator: torch.Generator = field(default_factory=torch.Generator)
    joint: bool = False
    surface: DepthProbe | None = None
    prompts: RunPrompts | None = None
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

    One training step, as every trainer drives it::

        begin_step(step, total)
        for each view slot j of the step (on the rank that owns j):
            batch = sample(view, ctx, generator(seed, slot))   # reads state, never writes it
            loss, terms = loss(batch, rendered, features)      # reads state, never writes it
            observation_j = observe(batch, rendered)           # what the batch teaches the state
        update_state([observation_j in slot order])            # the same list on every rank

    So the state an objective carries from step to step (error maps, label-centre memories) changes
    only in :meth:`update_state`, at the end of a step, identically on every rank; it is saved in
    the features checkpoint through :meth:`state_dict` / :meth:`load_state_dict`. That is what makes
    a resumed run equal an uninterrupted one and N ranks equal one process.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    # Training-free objectives (e.g. ``vote``) compute their features in one pass with
    # :meth:`solve`, which replaces the optimisation loop.
    training_free: ClassVar[bool] = False
    # True when :meth:`observe` may return observations (the trainer then shares them between ranks).
    stateful: ClassVar[bool] = False

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

    def prompt_options(self) -> PromptOptions | None:
        """The prompts this objective learns from (the trainer propagates them to the training views
        and hands the result over as ``ctx.prompts``), or None (default: no prompts)."""
        return None

    def prepare(self, ctx: FeatureContext) -> None:
        """Per-run precomputation from what the trainer hands over (default: nothing)."""

    def solve(self, ctx: FeatureContext, table_of: TableLookup, n_gaussians: int) -> Tensor | None:
        """Training-free objectives: the per-Gaussian vectors [N,D] in one pass, from the training
        views' contribution tables (``table_of(view)``, at the table resolution), after
        :meth:`prepare`. Default: None, the objective is trained (the trainer calls this only when
        ``training_free`` is set)."""
        return None

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

    def observe(self, batch: PixelBatch, rendered: dict[str, Tensor]) -> Any | None:
        """What ``batch`` teaches the objective's state, computed from the same ``rendered``
        quantities :meth:`loss` saw (detached; tensors and plain values, so the trainer can gather
        them across ranks). None: nothing (the default, for stateless objectives)."""
        return None

    def update_state(self, observations: list[Any]) -> None:
        """Apply one step's observations (from :meth:`observe`, in view-slot order, the same list on
        every rank); the only place the state changes while training. Default: nothing."""

    def state_dict(self) -> dict[str, Any]:
        """The state :meth:`update_state` builds up, for the checkpoint (tensors, numbers, strings
        and lists/dicts of them). Default: empty (a stateless objective)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`prepare`). An empty dict (a checkpoint of a
        stateless objective or written before objectives had state) keeps the fresh state;
        ValueError for keys this objective does not know."""
        if state:
            raise ValueError(f"objective {self.name!r} has no state, got {', '.join(sorted(state))}")

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
