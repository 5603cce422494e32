"""SANeRF-HQ on Gaussians (``object-field``): logits of K prompted objects + background.

Prompts (clicks lifted to 3D, or 3D points) are propagated to every training view
(the prompts stage, :mod:`gsseg.prompts`), giving per-view labels (-1 ignore, 0 background, k object).
Per-Gaussian logits [N,K+1] are composited per pixel and trained with softmax cross-entropy on
uniformly drawn rays. After a warm-up fraction of the schedule (0.75, the official 150 of 200
iterations), the ray-pair RGB loss acts on local patches drawn from per-view EMA error maps:
rays whose rendered colour is close to a confident reference ray are pulled towards its label
(exp-cosine distance), as in the official code (see reference/objectives.md §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gsseg.errors import GssegError
from gsseg.objectives.base import FeatureContext, Objective, PixelBatch
from gsseg.prompts.spec import PromptOptions, split_prompt_settings

PROB_EPS = 1e-6


def class_probs(logits: Tensor) -> Tensor:
    """Softmax over classes clamped to [1e-6, 1 − 1e-6]: logits [...,C] -> [...,C]."""
    return torch.softmax(logits, dim=-1).clamp(PROB_EPS, 1.0 - PROB_EPS)


def ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean −log p[label] over rays with label >= 0 (ignored rays excluded); 0 if none.

    logits: [P,C] composited; labels: [P] int64.
    """
    keep = labels >= 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    p = class_probs(logits[keep])
    return -torch.log(p.gather(1, labels[keep, None])).mean()


def exp_cos_distance(probs: Tensor, target: Tensor, sharpness: float = 10.0) -> Tensor:
    """exp(−sharpness · cos(p, t) − 1e-6): probs [...,C], target [...,C] -> [...]."""
    return torch.exp(-sharpness * F.cosine_similarity(probs, target, dim=-1, eps=1e-12) - 1e-6)


def ray_error(logits: Tensor, labels: Tensor, sharpness: float = 10.0) -> Tensor:
    """Per-ray error exp(−10·cos(p, onehot(label)) − 1e-6): [P] (labels must be >= 0)."""
    p = class_probs(logits)
    return exp_cos_distance(p, F.one_hot(labels, p.shape[-1]).to(p), sharpness)


def ray_pair_loss(
    logits: Tensor, rgb: Tensor, refs: list[Tensor], threshold: float, sharpness: float = 10.0, soft: bool = False
) -> Tensor:
    """Ray-pair RGB loss over local patches.

    logits: [B,S,C] composited logits of B patches of S rays; rgb: [B,S,3] rendered colours;
    refs: B index tensors [R_b] of reference rays in each patch. For patch b and reference j:
    S_ij = 1[‖c_i − c_j‖₂ < threshold], target t_j = onehot(argmax p_j) (or p_j if ``soft``),
    detached; term_j = Σ_i S_ij · exp(−10·cos(p_i, t_j) − 1e-6) / Σ_i S_ij. Mean over (b, j).
    """
    p = class_probs(logits)
    terms = []
    for b, ref in enumerate(refs):
        pr = p[b, ref].detach()
        target = pr if soft else F.one_hot(pr.argmax(-1), p.shape[-1]).to(p)
        close = (torch.cdist(rgb[b, ref].float(), rgb[b].float()) < threshold).to(p)  # [R,S]
        dist = exp_cos_distance(p[b][None, :, :], target[:, None, :], sharpness)  # [R,S]
        terms.append((close * dist).sum(1) / close.sum(1).clamp_min(1.0))
    if not terms:
        return logits.sum() * 0.0
    return torch.cat(terms).mean()


@dataclass
class ObjectFieldSettings:
    """Official SANeRF-HQ values unless noted.

    rays: uniformly drawn rays per step; patches / patch_size: local patches of the pair loss;
    pair_weight, pair_start: weight and start (fraction of the schedule; official 150/200);
    rgb_threshold: colour distance of similar rays (official run 0.1, argparse default 0.3);
    references: reference rays per patch; ref_confidence: references need 1 − E > this;
    soft_reference: detached soft prediction instead of one-hot; error_cells: error-map cells
    per side (capped by the table size); error_keep: EMA weight of the old error value.
    """

    rays: int = 6000
    patches: int = 4
    patch_size: int = 8
    pair_weight: float = 1.0
    pair_start: float = 0.75
    rgb_threshold: float = 0.1
    references: int = 8
    ref_confidence: float = 0.8
    soft_reference: bool = False
    error_cells: int = 128
    error_keep: float = 0.1
    sharpness: float = 10.0
    init_std: float = 0.0
    prompt: PromptOptions = field(default_factory=PromptOptions)


class ObjectFieldObjective(Objective):
    """K prompted objects + background as per-Gaussian logits [N,K+1] (channel 0 = background)."""

    name: ClassVar[str] = "object-field"
    kind: ClassVar[str] = "logits"
    stateful: ClassVar[bool] = True  # the per-view error maps and which views were refreshed

    def __init__(self, **settings: Any) -> None:
        own, prompt = split_prompt_settings(settings)
        self.cfg = ObjectFieldSettings(**own, prompt=prompt)
        c = self.cfg
        if c.rays < 1 or c.patches < 0 or c.patch_size < 1 or c.references < 1 or c.error_cells < 1:
            raise GssegError("object-field: rays, patch_size, references and error_cells must be >= 1, patches >= 0")
        if not 0.0 <= c.pair_start <= 1.0 or not 0.0 <= c.error_keep <= 1.0:
            raise GssegError("object-field: pair_start and error_keep must lie in [0, 1]")
        if not c.prompt.given():
            raise GssegError("object-field needs prompts: --click STEM:X,Y (repeatable) or --prompts FILE")
        self.spec = c.prompt.spec()
        self.labels: dict[str, Tensor] = {}  # view -> [H*W] int64
        self.error_maps: dict[str, Tensor] = {}
        self.refreshed: set[str] = set()
        self.pair_active = False
        self.size = (0, 0)
        self._summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ interface
    def feature_dim(self) -> int:
        return self.spec.n_objects + 1

    def init_features(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if self.cfg.init_std > 0:
            return torch.randn(n, self.feature_dim(), generator=generator) * self.cfg.init_std
        return torch.zeros(n, self.feature_dim())

    def needs(self) -> set[str]:
        return {"rgb"} if self.cfg.pair_weight > 0 and self.cfg.patches > 0 else set()

    def settings(self) -> dict[str, Any]:
        d = asdict(self.cfg)
        prompt = d.pop("prompt")
        return {**d, **prompt}

    def extras(self) -> dict[str, Any]:
        return {"classes": ["background", *self.spec.object_names()], **self._summary}

    def prompt_options(self) -> PromptOptions:
        return self.cfg.prompt

    def prepare(self, ctx: FeatureContext) -> None:
        """Labels at the table resolution from the prompts the trainer propagated (``ctx.prompts``)."""
        if ctx.prompts is None:
            raise GssegError("object-field: the trainer handed over no propagated prompts (ctx.prompts)")
        self.set_labels(ctx.prompts.labels, ctx.height, ctx.width, ctx.device)
        self._summary = {"prompts": ctx.prompts.summary()}

    def set_labels(
        self, labels: dict[str, np.ndarray], height: int, width: int, device: torch.device | str = "cpu"
    ) -> None:
        """Per-view labels [H,W] (-1 ignore, 0 background, k object) and fresh error maps."""
        self.size = (height, width)
        self.labels = {
            v: torch.as_tensor(np.asarray(lab, dtype=np.int64).reshape(-1), device=device) for v, lab in labels.items()
        }
        ch, cw = min(self.cfg.error_cells, height), min(self.cfg.error_cells, width)
        self.error_maps = {v: torch.ones(ch, cw, device=device) for v in labels}
        self.refreshed = set()

    def begin_step(self, step: int, total_steps: int) -> None:
        c = self.cfg
        self.pair_active = c.pair_weight > 0 and c.patches > 0 and step >= c.pair_start * total_steps

    # ------------------------------------------------------------------ sampling
    def cell_of(self, pixel_ids: Tensor) -> Tensor:
        """Error-map cell [P] of pixel ids [P]."""
        h, w = self.size
        ch, cw = next(iter(self.error_maps.values())).shape
        y, x = pixel_ids // w, pixel_ids % w
        return (y * ch // h) * cw + (x * cw // w)

    def _patch(self, view: str, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """One local patch drawn from the view's error map: pixel ids [S] and reference indices [R]."""
        h, w = self.size
        c = self.cfg
        ps_y, ps_x = min(c.patch_size, h), min(c.patch_size, w)
        emap = self.error_maps[view]
        ch, cw = emap.shape
        cell = int(torch.multinomial(emap.reshape(-1).cpu().clamp_min(1e-12), 1, generator=generator))
        cy = int((cell // cw + 0.5) * h / ch)
        cx = int((cell % cw + 0.5) * w / cw)
        y0 = min(max(cy - ps_y // 2, 0), h - ps_y)
        x0 = min(max(cx - ps_x // 2, 0), w - ps_x)
        ys, xs = torch.meshgrid(torch.arange(y0, y0 + ps_y), torch.arange(x0, x0 + ps_x), indexing="ij")
        ids = (ys * w + xs).reshape(-1)
        conf = (1.0 - emap.reshape(-1).cpu()[self.cell_of(ids)]) > c.ref_confidence
        weights = conf.float() if bool(conf.any()) else torch.ones(len(ids))
        n_ref = min(c.references, int((weights > 0).sum()))
        refs = torch.multinomial(weights, n_ref, replacement=False, generator=generator)
        return ids, refs

    def sample(self, view: str, ctx: FeatureContext, generator: torch.Generator) -> PixelBatch | None:
        """Uniform rays with their labels; in the pair phase also local patches, and once per view
        the error-map cell centres (the official re-render that overwrites the error map)."""
        if view not in self.labels:
            return None
        h, w = self.size
        ids = [torch.randint(0, h * w, (self.cfg.rays,), generator=generator)]
        targets: dict[str, Any] = {"n_global": self.cfg.rays}
        if self.pair_active:
            if view not in self.refreshed:
                ch, cw = self.error_maps[view].shape
                cy = ((torch.arange(ch) + 0.5) * h / ch).long()
                cx = ((torch.arange(cw) + 0.5) * w / cw).long()
                centres = (cy[:, None] * w + cx[None, :]).reshape(-1)
                targets["refresh"] = (self.cfg.rays, self.cfg.rays + len(centres))
                ids.append(centres)
            start = sum(len(t) for t in ids)
            patches, refs = [], []
            for _ in range(self.cfg.patches):
                pid, ref = self._patch(view, generator)
                patches.append(pid)
                refs.append(ref)
            ids += patches
            targets["patches"] = (start, len(patches), len(patches[0]))
            targets["refs"] = refs
        pixel_ids = torch.cat(ids)
        targets["labels"] = self.labels[view].cpu()[pixel_ids]
        return PixelBatch(view=view, pixel_ids=pixel_ids, targets=targets)

    # ------------------------------------------------------------------ loss
    def loss(self, batch: PixelBatch, rendered: dict[str, Tensor], features: Tensor) -> tuple[Tensor, dict[str, float]]:
        logits = rendered["features"]
        labels = batch.targets["labels"].to(logits.device)
        n = batch.targets["n_global"]
        loss = ce_loss(logits[:n], labels[:n])
        terms = {"ce": float(loss.detach())}
        if "patches" in batch.targets:
            start, n_p, s = batch.targets["patches"]
            sl = slice(start, start + n_p * s)
            pair = ray_pair_loss(
                logits[sl].reshape(n_p, s, -1),
                rendered["rgb"][sl].reshape(n_p, s, 3),
                batch.targets["refs"],
                self.cfg.rgb_threshold,
                self.cfg.sharpness,
                self.cfg.soft_reference,
            )
            loss = loss + self.cfg.pair_weight * pair
            terms["pair"] = float(pair.detach())
        return loss, terms

    # ------------------------------------------------------------------ state
    def observe(self, batch: PixelBatch, rendered: dict[str, Tensor]) -> dict[str, Any]:
        """The batch's per-ray errors for the view's error map: the uniform rays' cells [R] and
        errors [R] (labelled rays only), and in a refresh batch the cell centres' cells and errors."""
        logits = rendered["features"].detach()
        labels = batch.targets["labels"].to(logits.device)
        ids = batch.pixel_ids.to(logits.device)
        n = batch.targets["n_global"]
        obs: dict[str, Any] = {"view": batch.view, "refreshed": "refresh" in batch.targets}
        with torch.no_grad():
            keep = labels[:n] >= 0
            obs["cells"] = self.cell_of(ids[:n][keep])
            obs["errors"] = ray_error(logits[:n][keep], labels[:n][keep], self.cfg.sharpness)
            if "refresh" in batch.targets:
                a, b = batch.targets["refresh"]
                keep = labels[a:b] >= 0
                obs["refresh_cells"] = self.cell_of(ids[a:b][keep])
                obs["refresh_errors"] = ray_error(logits[a:b][keep], labels[a:b][keep], self.cfg.sharpness)
        return obs

    def update_state(self, observations: list[Any]) -> None:
        """Per observation: the EMA of the mean ray error of every hit cell, then (refresh batches)
        the cell centres' errors overwrite their cells and the view counts as refreshed."""
        keep_old = self.cfg.error_keep
        for obs in observations:
            emap = self.error_maps[obs["view"]].reshape(-1)
            if len(obs["errors"]):
                e = obs["errors"].to(emap)
                cells = obs["cells"].to(emap.device)
                total = torch.zeros_like(emap).index_add_(0, cells, e)
                count = torch.zeros_like(emap).index_add_(0, cells, torch.ones_like(e))
                hit = count > 0  # rays sharing a cell contribute their mean error
                emap[hit] = keep_old * emap[hit] + (1.0 - keep_old) * total[hit] / count[hit]
            if obs["refreshed"]:
                if len(obs["refresh_errors"]):
                    emap[obs["refresh_cells"].to(emap.device)] = obs["refresh_errors"].to(emap)
                self.refreshed.add(obs["view"])

    def state_dict(self) -> dict[str, Any]:
        """error_maps: view -> [ch,cw] EMA ray errors; refreshed: the views whose map was refreshed."""
        return {
            "error_maps": {v: m.detach().cpu() for v, m in self.error_maps.items()},
            "refreshed": sorted(self.refreshed),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        unknown = set(state) - {"error_maps", "refreshed"}
        if unknown:
            raise ValueError(f"object-field state has unknown entries {', '.join(sorted(unknown))}")
        maps = state["error_maps"]
        if set(maps) != set(self.error_maps):
            raise ValueError("object-field state: its error maps are of other views than this run's labels")
        for v, m in maps.items():
            if tuple(m.shape) != tuple(self.error_maps[v].shape):
                raise ValueError(
                    f"object-field state: error map of {v} is {tuple(m.shape)}, expected "
                    f"{tuple(self.error_maps[v].shape)}"
                )
        self.error_maps = {v: maps[v].to(self.error_maps[v]) for v in self.error_maps}
        self.refreshed = set(state["refreshed"])
