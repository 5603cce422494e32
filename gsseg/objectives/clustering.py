"""ClusteringSDF on Gaussians (``clustering``): K identity channels without prompts.

Each Gaussian holds K logits; ``sigmoid`` gives its object-opacity vector in [0,1], composited
per pixel into O [R,K] (the official object opacity), with P = softmax(O) over channels. Labels
of one frame only group pixels, so the loss is invariant to renaming a frame's label ids:

- clustering = w_c·(w_reg·reg − w_diff·diff): reg = mean over labels of the mean per-ray
  (unbiased) variance of P across channels; diff = Σ_{c<c'} ‖μ_c − μ_c'‖ / (L(L−1)), μ_c the
  mean P of label c;
- onehot = MSE(O, onehot(argmax P)) on foreground rays (label ≠ 0), weight 0.5;
- fg/bg on channel 0: bg = mean_{label 0} |O₀ − 1|, non_bg = w_nb·mean_{fg} |O₀|, both × 0.2
  (semantic mode: bg = 0, non_bg over all rays);
- semantic (labels are class ids consistent across views): Σ_c ‖mean O_c − onehot(c)‖ · conf_c
  / #labels, background as its own class with confidence 0.1, weight 0.15;
- cross-view (only with cross-view-consistent labels): exp(−Σ_{c'≠c} ‖μ_c − ν_c'‖) with ν the
  label centres last seen in other views (detached memory).

Pixels are drawn label-comprehensively (every label gets its share of 512 rays, topped up, plus
512 uniform rays), and a frame with no foreground, or any frame with probability 0.2, is
replaced by one of the 50 frames with most labels (key frames). See reference/objectives.md §4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gsseg.errors import GssegError, file_error
from gsseg.objectives.base import FeatureContext, Objective, PixelBatch

Mode = Literal["instance", "semantic"]
MODES: tuple[str, ...] = get_args(Mode)
MODE_DEFAULTS = {  # clustering, diff and non-background weights of the official configs
    "instance": {"clustering_weight": 1.0, "diff_weight": 20.0, "non_bg_weight": 0.2},
    "semantic": {"clustering_weight": 1.5, "diff_weight": 15.0, "non_bg_weight": 0.33},
}
BACKGROUND_CONFIDENCE = 0.1


def _groups(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(unique labels [L], inverse [R], counts [L])."""
    return torch.unique(labels, return_inverse=True, return_counts=True)


def label_means(values: Tensor, inverse: Tensor, counts: Tensor) -> Tensor:
    """Mean of ``values [R,K]`` per label group: [L,K]."""
    sums = values.new_zeros(len(counts), values.shape[1]).index_add(0, inverse, values)
    return sums / counts[:, None].to(values)


def pair_distance_mean(centres: Tensor) -> Tensor:
    """Σ_{c<c'} ‖μ_c − μ_c'‖₂ / (L(L−1)) over centres [L,K]; 0 for L <= 1 (finite gradients)."""
    n = centres.shape[0]
    if n <= 1:
        return centres.sum() * 0.0
    d2 = (centres[:, None, :] - centres[None, :, :]).pow(2).sum(-1)
    iu = torch.triu_indices(n, n, 1, device=centres.device)
    return d2[iu[0], iu[1]].clamp_min(1e-20).sqrt().sum() / (n * (n - 1))


def reg_term(probs: Tensor, inverse: Tensor, counts: Tensor) -> Tensor:
    """mean over labels of mean_{r∈c} Var_k P[r,k] (unbiased)."""
    var = probs.var(dim=1, unbiased=True)[:, None]
    return label_means(var, inverse, counts).mean()


@dataclass
class ClusteringWeights:
    clustering: float
    reg: float
    diff: float
    onehot: float
    fgbg: float
    non_bg: float
    semantic: float
    cross_view: float


def clustering_loss(
    opacity: Tensor,
    labels: Tensor,
    w: ClusteringWeights,
    mode: str = "instance",
    fgbg: bool = True,
    memory: dict[int, Tensor] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The ClusteringSDF loss of one frame's rays.

    opacity: [R,K] composited object opacities O in [0,1]; labels: [R] int64 (0 = background;
    in semantic mode class ids, background class = channel K−1); memory: label -> centre [K] seen
    in other views (cross-view term; None = off).
    """
    k = opacity.shape[1]
    probs = torch.softmax(opacity, dim=1)
    uniq, inverse, counts = _groups(labels)
    reg = reg_term(probs, inverse, counts)
    centres = label_means(probs, inverse, counts)
    diff = pair_distance_mean(centres)
    total = w.clustering * (w.reg * reg - w.diff * diff)
    terms = {"reg": float(reg.detach()), "diff": float(diff.detach())}
    fg = labels != 0
    if w.onehot > 0 and bool(fg.any()):
        target = F.one_hot(probs[fg].argmax(1), k).to(opacity)
        onehot = F.mse_loss(opacity[fg], target)
        total = total + w.onehot * onehot
        terms["onehot"] = float(onehot.detach())
    if fgbg and w.fgbg > 0:
        if mode == "instance":
            bg = (opacity[~fg, 0] - 1).abs().mean() if bool((~fg).any()) else opacity.sum() * 0.0
            non_bg = w.non_bg * opacity[fg, 0].abs().mean() if bool(fg.any()) else opacity.sum() * 0.0
        else:
            bg = opacity.sum() * 0.0
            non_bg = w.non_bg * opacity[:, 0].abs().mean()
        total = total + w.fgbg * (bg + non_bg)
        terms["bg"], terms["non_bg"] = float(bg.detach()), float(non_bg.detach())
    if mode == "semantic" and w.semantic > 0:
        cls = torch.where(labels == 0, torch.full_like(labels, k - 1), labels)
        conf = torch.where(labels == 0, BACKGROUND_CONFIDENCE, 1.0).to(opacity)
        c_uniq, c_inv, c_counts = _groups(cls)
        mean_o = label_means(opacity, c_inv, c_counts)
        mean_conf = label_means(conf[:, None], c_inv, c_counts)[:, 0]
        sem = ((mean_o - F.one_hot(c_uniq, k).to(opacity)).norm(dim=1) * mean_conf).sum() / len(c_uniq)
        total = total + w.semantic * sem
        terms["semantic"] = float(sem.detach())
    if memory and w.cross_view > 0:
        cross = []
        for i, c in enumerate(uniq.tolist()):
            others = [v for key, v in memory.items() if key != c]
            if others:
                dist = (centres[i][None] - torch.stack(others).to(centres)).norm(dim=1).sum()
                cross.append(torch.exp(-dist))
        if cross:
            cv = torch.stack(cross).mean()
            total = total + w.cross_view * cv
            terms["cross_view"] = float(cv.detach())
    return total, terms


def comprehensive_pixels(labels: Tensor, per_label: int, uniform: int, generator: torch.Generator) -> Tensor:
    """Label-comprehensive sample of pixel ids [>= per_label + uniform] from a flat label map [HW].

    Every label c gets ceil(count_c / HW · per_label) of its pixels (without replacement), the
    union is topped up with unsampled random pixels to ``per_label``, then ``uniform`` uniformly
    drawn pixels are appended (duplicates possible).
    """
    n = labels.numel()
    chosen = []
    for c in torch.unique(labels).tolist():
        pix = torch.nonzero(labels == c).squeeze(1)
        take = min(len(pix), math.ceil(len(pix) / n * per_label))
        chosen.append(pix[torch.randperm(len(pix), generator=generator)[:take]])
    ids = torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.int64)
    if len(ids) < per_label:
        free = torch.ones(n, dtype=torch.bool)
        free[ids] = False
        rest = torch.nonzero(free).squeeze(1)
        ids = torch.cat([ids, rest[torch.randperm(len(rest), generator=generator)[: per_label - len(ids)]]])
    return torch.cat([ids, torch.randint(0, n, (uniform,), generator=generator)])


@dataclass
class ClusteringSettings:
    """dim: K channels; mode: instance | semantic; granularity of the mask-store label map
    ("objects": per view the largest masks whose surface is one connected piece, see
    :func:`gsseg.masks.click_object.object_label_map`; or "finest", "coarsest", a tree
    level); labels_dir: ``<stem>.png`` label maps consistent
    across views (semantic classes, or consistent instance ids) instead of the mask store;
    None weights take the official value of the mode."""

    dim: int = 32
    """K channels."""
    mode: Mode = "instance"
    """Instance ids or semantic classes."""
    granularity: str | int = "objects"
    """Mask-store label map: objects (per view the largest masks whose surface is one connected piece),
    finest, coarsest or a tree level."""
    labels_dir: str | None = None
    """<stem>.png label maps consistent across views, instead of the mask store."""
    label_pixels: int = 512
    """Rays per step drawn so that every label of the frame is sampled."""
    random_pixels: int = 512
    """Uniformly drawn rays per step on top."""
    keyframes: int = 50
    """Views with the most labels, drawn instead of empty frames and with probability keyframe_prob."""
    keyframe_prob: float = 0.2
    """Chance that a step's frame is replaced by a key frame."""
    fgbg: bool = True
    """Background terms (channel 0 is background)."""
    clustering_weight: float | None = None
    """Weight of the clustering term (none: the mode's official value)."""
    reg_weight: float = 1e4
    """Within-label variance weight inside the clustering term."""
    diff_weight: float | None = None
    """Between-label distance weight inside the clustering term (none: the mode's official value)."""
    onehot_weight: float = 0.5
    """Weight pulling labelled rays towards one-hot opacities."""
    fgbg_weight: float = 0.2
    """Weight of the background terms."""
    non_bg_weight: float | None = None
    """Weight of 'no background opacity on labelled rays' (none: the mode's official value)."""
    semantic_weight: float = 0.15
    """Semantic mode: weight pulling each class's mean opacity to its one-hot channel."""
    cross_view_weight: float = 0.1
    """Weight of the cross-view term (only with labels_dir: ids consistent across views)."""
    init_std: float = 0.5
    """Standard deviation of the initial logits."""


class ClusteringObjective(Objective):
    """ClusteringSDF identity channels; per-Gaussian logits [N,K], O = composited sigmoid."""

    name: ClassVar[str] = "clustering"
    kind: ClassVar[str] = "logits"
    stateful: ClassVar[bool] = True  # the cross-view label memory

    def __init__(self, **settings: Any) -> None:
        self.cfg = ClusteringSettings(**settings)
        c = self.cfg
        if c.mode not in MODES:
            raise GssegError(f"clustering: mode must be one of {', '.join(MODES)}, got {c.mode!r}")
        if c.dim < 2:
            raise GssegError(f"clustering: need at least 2 channels, got dim={c.dim}")
        if c.mode == "semantic" and not c.labels_dir:
            raise GssegError("clustering: semantic mode needs class label maps consistent across views (labels_dir)")
        defaults = MODE_DEFAULTS[c.mode]
        self.weights = ClusteringWeights(
            clustering=defaults["clustering_weight"] if c.clustering_weight is None else c.clustering_weight,
            reg=c.reg_weight,
            diff=defaults["diff_weight"] if c.diff_weight is None else c.diff_weight,
            onehot=c.onehot_weight,
            fgbg=c.fgbg_weight,
            non_bg=defaults["non_bg_weight"] if c.non_bg_weight is None else c.non_bg_weight,
            semantic=c.semantic_weight,
            cross_view=c.cross_view_weight if c.labels_dir else 0.0,  # only with consistent labels
        )
        self.keyframes: list[str] = []
        self.label_counts: dict[str, int] = {}
        self.memory: dict[int, Tensor] = {}
        self.memory_view: dict[int, str] = {}
        self._ctx: FeatureContext | None = None
        self._objects: dict[str, np.ndarray] = {}  # view -> object-level labels ("objects" granularity)

    def feature_dim(self) -> int:
        return self.cfg.dim

    def init_features(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.cfg.dim, generator=generator) * self.cfg.init_std

    def activate(self, features: Tensor) -> Tensor:
        """Per-Gaussian object opacities in [0,1] (what gets composited): sigmoid(features)."""
        return torch.sigmoid(features)

    def extras(self) -> dict[str, Any]:
        return {
            "composited": "sigmoid",
            "keyframes": list(self.keyframes),
            "max_labels_per_frame": max(self.label_counts.values(), default=0),
            "cross_view": self.weights.cross_view > 0,
        }

    # ------------------------------------------------------------------ labels
    def frame_labels(self, view: str, ctx: FeatureContext) -> np.ndarray | None:
        """Labels of one frame [H,W] int64 at the table resolution (0 = background), or None."""
        from gsseg.objectives.vote import read_label_dir

        if self.cfg.labels_dir:
            return read_label_dir(Path(self.cfg.labels_dir), view, ctx.height, ctx.width)
        vm = ctx.masks(view)
        if vm is None:
            return None
        gran = self.cfg.granularity
        gran = int(gran) if isinstance(gran, str) and gran.isdigit() else gran
        if gran != "objects":
            return vm.label_map(gran).astype(np.int64)
        if view not in self._objects:
            from gsseg.masks.click_object import object_label_map

            if ctx.surface is None:
                raise GssegError(
                    "clustering: the 'objects' granularity needs the rendered depth of the trained scene; "
                    "choose another --set granularity=... here"
                )
            probe = ctx.surface
            self._objects[view] = object_label_map(vm, probe.depth_map(view), probe.intrinsics(view))
        return self._objects[view]

    def prepare(self, ctx: FeatureContext) -> None:
        """Count labels per frame, refuse K too small, pick key frames."""
        if self.cfg.labels_dir and not Path(self.cfg.labels_dir).is_dir():
            raise file_error(Path(self.cfg.labels_dir), "label folder not found (expected <stem>.png label maps)")
        k = self.cfg.dim
        for view in ctx.views:
            lab = self.frame_labels(view, ctx)
            if lab is None:
                continue
            ids = np.unique(lab)
            fg = ids[ids != 0]
            self.label_counts[view] = len(fg)
            if self.cfg.mode == "instance" and len(fg) >= k:
                raise GssegError(
                    f"clustering: view {view} has {len(fg)} labels but only {k} channels "
                    f"(channel 0 is background); use more channels (--feature-dim > {len(fg)}) "
                    "or a coarser --set granularity=..."
                )
            if self.cfg.mode == "semantic" and len(fg) and (fg.min() < 0 or fg.max() > k - 2):
                raise GssegError(
                    f"clustering: view {view} has class ids up to {int(fg.max())} but semantic mode "
                    f"needs ids in 1..{k - 2} with {k} channels (channel {k - 1} is background); "
                    "use more channels"
                )
        if not self.label_counts:
            raise GssegError(
                f"{ctx.dataset.masks_dir}: clustering found no labels for any training view "
                "(run `gsseg masks DATA` or give labels_dir)"
            )
        ranked = sorted(self.label_counts, key=lambda v: (-self.label_counts[v], v))
        self.keyframes = [v for v in ranked[: self.cfg.keyframes] if self.label_counts[v] > 0]
        self._ctx = ctx

    # ------------------------------------------------------------------ sampling / loss
    def sample(self, view: str, ctx: FeatureContext, generator: torch.Generator) -> PixelBatch | None:
        """One frame's label-comprehensive rays; empty frames (and 20 % of the rest) are replaced
        by a random key frame."""
        empty = self.label_counts.get(view, 0) == 0
        coin = float(torch.rand(1, generator=generator)) < self.cfg.keyframe_prob
        if self.keyframes and (empty or coin):
            view = self.keyframes[int(torch.randint(0, len(self.keyframes), (1,), generator=generator))]
        lab = self.frame_labels(view, ctx)
        if lab is None:
            return None
        flat = torch.from_numpy(lab.reshape(-1))
        ids = comprehensive_pixels(flat, self.cfg.label_pixels, self.cfg.random_pixels, generator)
        return PixelBatch(view=view, pixel_ids=ids, targets={"labels": flat[ids]})

    def loss(self, batch: PixelBatch, rendered: dict[str, Tensor], features: Tensor) -> tuple[Tensor, dict[str, float]]:
        opacity = rendered["features"]
        labels = batch.targets["labels"].to(opacity.device)
        memory = None
        if self.weights.cross_view > 0:
            memory = {c: v for c, v in self.memory.items() if self.memory_view.get(c) != batch.view}
        return clustering_loss(opacity, labels, self.weights, self.cfg.mode, self.cfg.fgbg, memory)

    # ------------------------------------------------------------------ state
    # The cross-view memory: label -> the mean P [K] of its rays where it was last seen, and that view.
    def observe(self, batch: PixelBatch, rendered: dict[str, Tensor]) -> dict[str, Any] | None:
        """The batch's label centres (cross-view term only): view, labels [L], centres [L,K]."""
        if self.weights.cross_view <= 0:
            return None
        with torch.no_grad():
            opacity = rendered["features"].detach()
            uniq, inverse, counts = _groups(batch.targets["labels"].to(opacity.device))
            centres = label_means(torch.softmax(opacity, 1), inverse, counts)
        return {"view": batch.view, "labels": uniq, "centres": centres}

    def update_state(self, observations: list[Any]) -> None:
        """Remember every observed label centre (later slots overwrite earlier ones)."""
        device = self._ctx.device if self._ctx is not None else None
        for obs in observations:
            for c, centre in zip(obs["labels"].tolist(), obs["centres"]):
                self.memory[c] = centre if device is None else centre.to(device)
                self.memory_view[c] = obs["view"]

    def state_dict(self) -> dict[str, Any]:
        """labels [L] int64, centres [L,K], views: L view names (the memory, in insertion order)."""
        labels = list(self.memory)
        k = self.cfg.dim
        return {
            "labels": torch.tensor(labels, dtype=torch.int64),
            "centres": torch.stack([self.memory[c].cpu() for c in labels]) if labels else torch.zeros(0, k),
            "views": [self.memory_view[c] for c in labels],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        unknown = set(state) - {"labels", "centres", "views"}
        if unknown:
            raise ValueError(f"clustering state has unknown entries {', '.join(sorted(unknown))}")
        labels, centres, views = state["labels"].tolist(), state["centres"], list(state["views"])
        if len(centres) != len(labels) or len(views) != len(labels):
            raise ValueError("clustering state: labels, centres and views differ in length")
        device = self._ctx.device if self._ctx is not None else centres.device
        self.memory = {c: centres[i].to(device) for i, c in enumerate(labels)}
        self.memory_view = dict(zip(labels, views))
