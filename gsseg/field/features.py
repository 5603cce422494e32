"""The features stage of a radiance-field run: an identity-feature head trained by the same
:class:`~gsseg.objectives.base.Objective` code as the Gaussian backend, geometry frozen.

Per step the objective samples a :class:`PixelBatch` in one training view (full training
resolution); the batch's rays are marched through the frozen field (weights without gradients,
as the papers detach the geometry), the activated per-sample features are composited with those
weights and handed to ``objective.loss`` with the raw per-sample features as the per-primitive
vectors. Outputs: ``RUN/field_features.pt`` (the head, objective, dim) and ``RUN/features.json``;
checkpoints ``RUN/checkpoints/features_<step>.pt`` (resume bit-equal to an uninterrupted run).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gsseg.errors import GssegError, file_error
from gsseg.field.io import field_path, load_field
from gsseg.field.rays import camera_rays
from gsseg.field.render import render_image, render_rays
from gsseg.objectives.base import FeatureContext, Objective, PixelBatch
from gsseg.run.checkpoint import load_checkpoint, save_checkpoint
from gsseg.run.run_dir import RunDir

STAGE = "features"


def features_path(run_root: str | Path) -> Path:
    return Path(run_root) / "field_features.pt"


class FieldSurface:
    """The frozen field's depth probe for objectives that read rendered depth (``FeatureContext.surface``):
    ``depth_map(view)`` [H,W] float32 z-depth, ``intrinsics(view)`` [3,3] (cached per view)."""

    def __init__(self, field, grid, cameras) -> None:
        self.field, self.grid, self.cameras = field, grid, cameras
        self._depth: dict[str, np.ndarray] = {}

    def depth_map(self, view: str) -> np.ndarray:
        if view not in self._depth:
            i = self.cameras.index_of(view)
            self._depth[view] = render_image(self.field, self.grid, self.cameras, i)["depth"].cpu().numpy()
        return self._depth[view]

    def intrinsics(self, view: str) -> np.ndarray:
        return self.cameras.Ks[self.cameras.index_of(view)].cpu().numpy()


class FieldFeatureTrainer:
    """Feature head, optimiser and objective over a frozen radiance field."""

    def __init__(self, ds, cfg, run: RunDir, objective: Objective, callbacks=None, show_progress: bool = True) -> None:
        from gsseg.masks.store import MaskStore
        from gsseg.run.schedule import step_generator
        from gsseg.utils.device import resolve_device

        self.ds, self.cfg, self.run, self.objective = ds, cfg, run, objective
        self.callbacks = list(callbacks or [])
        self.show_progress = show_progress
        self.device = resolve_device(cfg.device)
        self.field, self.grid, self.background = load_field(field_path(run.root), self.device)
        self.field.requires_grad_(False)
        cams = ds.cameras("train")
        if len(cams) == 0:
            raise GssegError(f"{ds.root}: the dataset has no training views")
        if len(set(cams.widths.tolist())) != 1 or len(set(cams.heights.tolist())) != 1:
            raise GssegError(f"{ds.root}: the features stage needs training views of one image size")
        self.cameras = cams.to(self.device)
        self.views = list(cams.names)
        self.width, self.height = int(cams.widths[0]), int(cams.heights[0])
        self.ctx = FeatureContext(
            dataset=ds,
            store=MaskStore(ds.masks_dir),
            views=self.views,
            height=self.height,
            width=self.width,
            device=self.device,
            generator=step_generator(cfg.seed, -1),
            surface=FieldSurface(self.field, self.grid, self.cameras),
        )
        options = objective.prompt_options()
        if options is not None:  # prompts are lifted with the depth of the run's Gaussians (RUN/scene.ply)
            from gsseg.prompts.run import load_run_geometry, propagate_for_run

            self.ctx.prompts = propagate_for_run(self.ctx, options, load_run_geometry(run.root))
        objective.prepare(self.ctx)
        self.optimizer: torch.optim.Adam  # made by start() or resume()
        self.step = 0
        self.resumed_from: int | None = None

    def start(self) -> None:
        torch.manual_seed(self.cfg.seed)
        self.field.add_feature_head(self.objective.feature_dim())
        self._make_optimizer()
        self.step = 0

    def _head_parameters(self) -> list[torch.nn.Parameter]:
        return self.field.feature_parameters()

    def _make_optimizer(self) -> None:
        params = self._head_parameters()
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(params, lr=self.cfg.lr, eps=1e-15, foreach=True)

    def head_state(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu() for k, v in self.field.state_dict().items() if k.startswith("feature_")}

    def resume(self) -> bool:
        path = self.run.latest_checkpoint(STAGE)
        if path is None:
            return False
        ck = load_checkpoint(path, map_location="cpu")
        try:
            if ck.get("representation") != "nerf" or ck["objective"] != self.objective.name:
                raise ValueError("written by another representation or objective")
            self.field.add_feature_head(int(ck["dim"]))
            self.field.load_state_dict({**self.field.state_dict(), **ck["head"]})
            self._make_optimizer()
            self.optimizer.load_state_dict(ck["optimizer"])
            self.objective.load_state_dict(ck.get("objective_state", {}))
            self.step = int(ck["step"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise file_error(
                path, f"not a usable field features checkpoint ({type(e).__name__}: {e}); pass --restart"
            ) from None
        self.resumed_from = self.step
        return True

    def checkpoint(self) -> None:
        payload = {
            "stage": STAGE,
            "representation": "nerf",
            "objective": self.objective.name,
            "dim": self.field.feature_dim,
            "step": self.step,
            "head": self.head_state(),
            "optimizer": self.optimizer.state_dict(),
            "objective_state": self.objective.state_dict(),
        }
        save_checkpoint(self.run.checkpoint_path(STAGE, self.step), payload)
        self.run.prune_checkpoints(STAGE, self.cfg.keep_checkpoints)

    def render_batch(self, batch: PixelBatch) -> tuple[dict[str, Tensor], Tensor]:
        """Rendered quantities of the batch's pixels and the raw per-sample features [S,D]."""
        index = self.cameras.index_of(batch.view)
        origins, dirs = camera_rays(self.cameras, index, batch.pixel_ids.to(self.device))
        needs = self.objective.needs()
        bg = torch.tensor(self.background, dtype=torch.float32, device=self.device)
        out = render_rays(
            self.field,
            self.grid,
            origins,
            dirs,
            bg,
            rgb="rgb" in needs,
            features=True,
            frozen_geometry=True,
            feature_activation=self.objective.activate,
        )
        raw = out.pop("sample_features")
        return {k: v for k, v in out.items() if k in needs or k == "features"}, raw

    def train_step(self) -> tuple[float, dict[str, float]] | None:
        from gsseg.run.schedule import step_generator, view_order

        cfg = self.cfg
        self.objective.begin_step(self.step, cfg.iters)
        view = self.views[view_order(len(self.views), self.step, cfg.seed)]
        batch = self.objective.sample(view, self.ctx, step_generator(cfg.seed, self.step))
        self.step += 1
        if batch is None:
            return None
        rendered, raw = self.render_batch(batch)
        loss, terms = self.objective.loss(batch, rendered, raw)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite feature loss at step {self.step} (view {view}): {terms}")
        seen = self.objective.observe(batch, rendered)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.objective.update_state([] if seen is None else [seen])
        return float(loss.detach()), terms

    def train(self) -> dict:
        from gsseg.utils.progress import NullProgress, progress_bar

        cfg = self.cfg
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        if cfg.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        updates, loss_ema = 0, math.nan
        try:
            with progress_bar(transient=False) if self.show_progress else NullProgress() as progress:
                task = progress.add_task(
                    f"features ({self.objective.name}, nerf)",
                    total=cfg.iters,
                    completed=self.step,
                    info="",
                    unit="step",
                )
                while self.step < cfg.iters:
                    result = self.train_step()
                    if result is not None:
                        updates += 1
                        loss_ema = result[0] if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * result[0]
                    progress.update(task, completed=self.step, info=f"loss {loss_ema:.4f}")
                    timed_out = cfg.time_limit_s > 0 and time.perf_counter() - t0 >= cfg.time_limit_s
                    if self.step % cfg.checkpoint_every == 0 or self.step == cfg.iters or timed_out:
                        self.checkpoint()
                    for cb in self.callbacks:
                        cb(self.step)
                    if timed_out:
                        break
        finally:
            torch.set_num_threads(threads)
        if self.run.latest_checkpoint(STAGE) is None:
            self.checkpoint()
        return {"steps": self.step, "updates": updates, "seconds": time.perf_counter() - t0}


def run_field_features_stage(ds, cfg, run: RunDir, opts) -> dict:
    """Features stage of a ``--representation nerf`` run: train the head, write ``RUN/field_features.pt``
    and ``RUN/features.json``."""
    from gsseg.objectives import make_objective
    from gsseg.utils.atomic import write_json

    fcfg = cfg.features
    if not field_path(run.root).is_file():
        raise file_error(
            field_path(run.root), "not found: run the RGB stage first (`gsseg train DATA --out RUN --stage rgb`)"
        )
    objective = make_objective(fcfg.objective, **fcfg.objective_settings)
    if objective.training_free:
        raise GssegError(
            f"objective {objective.name!r} is training-free and needs Gaussians; use --representation gaussians"
        )
    trainer = FieldFeatureTrainer(ds, fcfg, run, objective, callbacks=opts.callbacks, show_progress=opts.show_progress)
    if not (opts.resume and trainer.resume()):
        trainer.start()
    result = trainer.train()
    save_checkpoint(
        features_path(run.root),
        {
            "format": "gsseg-field-features",
            "objective": objective.name,
            "kind": objective.kind,
            "dim": trainer.field.feature_dim,
            "settings": objective.settings(),
            "head": trainer.head_state(),
            "step": result["steps"],
        },
    )
    summary = {
        "stage": STAGE,
        "representation": "nerf",
        "objective": objective.name,
        "steps": result["steps"],
        "updates": result["updates"],
        "resumed_from": trainer.resumed_from,
        "dim": trainer.field.feature_dim,
        "seconds": result["seconds"],
        "features": str(features_path(run.root)),
        "field": str(field_path(run.root)),
    }
    write_json(run.root / "features.json", summary)
    return summary
