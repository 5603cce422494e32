"""The features stage: per-Gaussian identity vectors trained by a named objective.

Frozen geometry (default): ``RUN/scene.ply`` is read once; each step picks one training view,
takes its contribution table from a bounded :class:`~gsseg.render.tables.TableCache`, lets the
objective sample pixels, renders their features with one gather (``render_features_from_table``),
computes the objective's loss and steps Adam on the features only.

Joint mode (``joint=True``): geometry and appearance are trainable too; every step renders the
whole view with ``gsseg.render.render(..., features=)``, adds an L1 RGB loss, and at the end
rewrites ``RUN/scene.ply`` so the features stay row-aligned with the Gaussians.

Checkpoints ``RUN/checkpoints/features_<step>.pt`` (features, optimiser and the objective's
:meth:`~gsseg.objectives.base.Objective.state_dict`) make the stage resumable exactly; the result is
``RUN/features.pt`` (a :class:`~gsseg.features.FeatureRecord`) plus ``RUN/features.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor

from gsseg.config.train import FeatureStageConfig, LearningRates
from gsseg.errors import GssegError, file_error
from gsseg.features.coverage import covered_pixels, mask_coverage
from gsseg.gaussians.scene import PARAM_KEYS, FeatureInfo, GaussianScene
from gsseg.objectives import FeatureContext, Objective, PixelBatch, make_objective
from gsseg.render.types import ContributionTable
from gsseg.run.checkpoint import load_checkpoint, save_checkpoint
from gsseg.run.run_dir import RunDir
from gsseg.run.schedule import step_generator, view_order
from gsseg.train.distributed import current_group
from gsseg.utils.lru import BoundedLRU
from gsseg.utils.memory import auto_budget_bytes, budget_bytes

if TYPE_CHECKING:
    from gsseg.prompts.lifting import SurfaceProbe
    from gsseg.prompts.run import RunPrompts

STAGE = "features"
MAX_EMPTY_PASSES = 2  # give up after this many passes over the views without a usable batch


@dataclass
class FeatureStepReport:
    """What callbacks see after each completed step."""

    step: int
    loss: float
    terms: dict[str, float]


@dataclass
class FeatureResult:
    features: Tensor  # [N,D]
    scene: GaussianScene  # the geometry the features belong to (changed only in joint mode)
    steps: int
    resumed_from: int | None
    seconds: float
    updates: int  # steps of this invocation that had a batch


def _adam(params: list[Tensor], lr: float) -> torch.optim.Adam:
    """Adam (eps 1e-15) with the fused kernel: several times faster than the default per step here."""
    return torch.optim.Adam(params, lr=lr, eps=1e-15, fused=True)


def scene_signature(means: Tensor, logit_opacities: Tensor) -> list[float]:
    """A cheap fingerprint of a geometry (count and float64 sums), to detect a changed scene."""
    return [float(means.shape[0]), float(means.detach().double().sum()), float(logit_opacities.detach().double().sum())]


def _same_signature(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6) for x, y in zip(a, b))


def camera_depths(means: Tensor, viewmat: Tensor) -> Tensor:
    """Camera-space z of every Gaussian centre: means [N,3], viewmat [4,4] -> [N]."""
    return means @ viewmat[2, :3].to(means) + viewmat[2, 3].to(means)


class FeatureTrainer:
    """Holds features (and, in joint mode, geometry), optimiser, tables and the objective.

    ds: SceneDataset; scene: the frozen (or initial joint) geometry; objective: an
    :class:`Objective`; callbacks: ``cb(FeatureStepReport)`` after each step.
    """

    def __init__(
        self,
        ds,
        scene: GaussianScene,
        cfg: FeatureStageConfig,
        run: RunDir,
        objective: Objective,
        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
        callbacks: list[Callable[[FeatureStepReport], None]] | None = None,
        show_progress: bool = True,
    ) -> None:
        from gsseg.masks.store import MaskStore
        from gsseg.render.tables import TableCache
        from gsseg.utils.device import resolve_device

        try:
            cfg.validate()
        except ValueError as e:
            raise GssegError(f"bad feature-stage option: {e}") from None
        if len(scene) == 0:
            raise GssegError(f"{run.scene_ply}: the scene has no Gaussians")
        self.ds, self.cfg, self.run, self.objective = ds, cfg, run, objective
        self.callbacks = list(callbacks or [])
        self.show_progress = show_progress
        self.device = resolve_device(cfg.device)
        cams = ds.cameras("train")
        if len(cams) == 0:
            raise GssegError(f"{ds.root}: the dataset has no training views")
        if len(set(cams.widths.tolist())) != 1 or len(set(cams.heights.tolist())) != 1:
            raise GssegError(f"{ds.root}: the features stage needs training views of one image size")
        budget = budget_bytes(cfg.table_memory_mb)
        self.table_scale = cfg.table_scale or auto_table_scale(scene, cams, budget, cfg.backend)
        self.cameras = cams.scaled(self.table_scale) if self.table_scale != 1.0 else cams
        self.width, self.height = int(self.cameras.widths[0]), int(self.cameras.heights[0])
        self.views = list(self.cameras.names)
        self.background = torch.tensor(background, dtype=torch.float32, device=self.device)

        self.scene = scene.to(self.device)
        self.sh_degree = self.scene.sh_degree
        self.signature = scene_signature(self.scene.means, self.scene.logit_opacities)
        self.params: torch.nn.ParameterDict | None = None
        self.geo_optimizers: dict[str, torch.optim.Adam] = {}
        if cfg.joint:
            self.params = self.scene.to_param_dict(requires_grad=True).to(self.device)
        geo = self.scene
        self.tables = TableCache(
            geo.means,
            geo.quats,
            geo.scales,
            geo.opacities,
            cams.to(self.device),
            max_tables=len(self.views),
            scale=self.table_scale,
            backend=cfg.backend,
            max_bytes=budget,
        )
        self.ctx = FeatureContext(
            dataset=ds,
            store=MaskStore(ds.masks_dir),
            views=self.views,
            height=self.height,
            width=self.width,
            device=self.device,
            generator=step_generator(cfg.seed, -1),
            joint=cfg.joint,
        )
        self.ctx.surface, self.ctx.prompts = objective_inputs(self.ctx, objective, scene)
        self.objective.prepare(self.ctx)
        # the features being trained and their Adam: made by start() or resume()
        self.features: torch.nn.Parameter
        self.optimizer: torch.optim.Adam
        self.step = 0
        self.resumed_from: int | None = None
        self.initial_signature = self.signature
        self._images: BoundedLRU[Tensor] = BoundedLRU(
            lambda t: t.numel() * t.element_size(), max_bytes=auto_budget_bytes() // 2
        )  # joint mode's photos
        self.group = current_group()
        self.show_progress = show_progress and self.group.is_main
        if self.group.distributed and cfg.joint:
            raise GssegError(
                "joint mode (--joint) trains the geometry too and runs in one process; start it without torchrun"
            )

    # ------------------------------------------------------------------ state
    def start(self) -> None:
        """Fresh features from the objective's initialisation."""
        init = self.objective.init_features(len(self.scene), step_generator(self.cfg.seed, -2))
        self._set_state(init.float())
        self.step = 0

    def _set_state(self, features: Tensor) -> None:
        self.features = torch.nn.Parameter(features.to(self.device))
        self.optimizer = _adam([self.features], self.cfg.lr)
        if self.params is not None:
            lr = LearningRates()
            scale = float(self.ds.scene_scale)
            lrs = {
                "means": lr.means * scale,
                "scales": lr.scales,
                "quats": lr.quats,
                "opacities": lr.opacities,
                "sh0": lr.sh0,
                "shN": lr.shN,
            }
            self.geo_optimizers = {k: _adam([self.params[k]], lrs[k]) for k in PARAM_KEYS}

    def resume(self) -> bool:
        """Load the newest features checkpoint, if any; True when resumed."""
        path = self.run.latest_checkpoint(STAGE)
        if path is None:
            return False
        ck = load_checkpoint(path, map_location=self.device)
        known = [ck.get("signature", []), ck.get("initial_signature", [])]
        if not any(_same_signature(self.signature, sig) for sig in known):
            raise file_error(
                path,
                "features checkpoint of another scene (RUN/scene.ply changed since); "
                "pass --restart to train the features again",
            )
        if (
            ck.get("objective") != self.objective.name
            or ck["features"].shape[0] != len(self.scene)
            or bool(ck.get("joint", False)) != self.cfg.joint
        ):
            raise file_error(
                path,
                f"checkpoint of objective {ck.get('objective')!r} "
                f"({ck['features'].shape[0]} Gaussians, joint={ck.get('joint', False)}) does not "
                f"match this run ({self.objective.name!r}, {len(self.scene)} Gaussians, "
                f"joint={self.cfg.joint}); pass --restart",
            )
        if self.params is not None:
            for k in PARAM_KEYS:
                self.params[k] = torch.nn.Parameter(ck["params"][k].to(self.device))
        self._set_state(ck["features"])
        self.optimizer.load_state_dict(ck["optimizer"])
        try:
            self.objective.load_state_dict(ck.get("objective_state", {}))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise file_error(
                path, f"the {self.objective.name} objective's state does not fit ({e}); pass --restart"
            ) from None
        for k, opt in self.geo_optimizers.items():
            opt.load_state_dict(ck["geo_optimizers"][k])
        self.initial_signature = list(ck.get("initial_signature", self.signature))
        self.step = int(ck["step"])
        self.resumed_from = self.step
        return True

    def checkpoint(self) -> None:
        if not self.group.is_main:  # rank 0 is the only writer; every rank holds the same state
            return
        payload = {
            "stage": STAGE,
            "step": self.step,
            "objective": self.objective.name,
            "joint": self.cfg.joint,
            "features": self.features.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
            "objective_state": self.objective.state_dict(),
            "initial_signature": self.initial_signature,
            "signature": self.signature
            if self.params is None
            else scene_signature(self.params["means"], self.params["opacities"]),
        }
        if self.params is not None:
            payload["params"] = {k: v.detach().cpu() for k, v in self.params.items()}
            payload["geo_optimizers"] = {k: o.state_dict() for k, o in self.geo_optimizers.items()}
        save_checkpoint(self.run.checkpoint_path(STAGE, self.step), payload)
        self.run.prune_checkpoints(STAGE, self.cfg.keep_checkpoints)

    def current_scene(self) -> GaussianScene:
        if self.params is None:
            return self.scene.to("cpu")
        return GaussianScene.from_param_dict({k: v.cpu() for k, v in self.params.items()})

    # ------------------------------------------------------------------ rendering
    def table(self, view: str) -> ContributionTable:
        """The contribution table of training view ``view`` at the table resolution (frozen
        geometry; built on first use, kept within the memory budget): a :data:`TableLookup`."""
        return self.tables.get(view)

    def _render_frozen(self, batch: PixelBatch) -> dict[str, Tensor]:
        from gsseg.render.sh import view_colors
        from gsseg.render.tables import render_features_from_table

        table = self.table(batch.view)
        ids = batch.pixel_ids.to(self.device)
        out = {"features": render_features_from_table(table, ids, self.objective.activate(self.features))}
        needs = self.objective.needs()
        if not needs:
            return out
        index = self.cameras.index_of(batch.view)
        viewmat = self.cameras.viewmats[index].to(self.device)
        sc = self.scene
        extra = [torch.ones(len(sc), 1, device=self.device), camera_depths(sc.means, viewmat)[:, None]]
        if "rgb" in needs:
            campos = torch.linalg.inv(viewmat)[None, :3, 3]
            extra.append(view_colors(sc.colors, self.sh_degree, sc.means, campos)[0])
        with torch.no_grad():
            vals = render_features_from_table(table, ids, torch.cat(extra, dim=1).float())
        alpha = vals[:, 0]
        out["alpha"] = alpha
        out["depth"] = torch.where(alpha > 0, vals[:, 1] / alpha.clamp_min(1e-10), torch.zeros_like(alpha))
        if "rgb" in needs:
            out["rgb"] = vals[:, 2:5] + (1.0 - alpha[:, None]) * self.background[None]
        return out

    def _render_joint(self, batch: PixelBatch, p: torch.nn.ParameterDict) -> tuple[dict[str, Tensor], Tensor]:
        """Full render of the batch's view with the geometry parameters ``p`` (joint mode); returns
        the gathered quantities and the RGB L1 loss."""
        from gsseg.render import render

        index = self.cameras.index_of(batch.view)
        cam = self.cameras[index].to(self.device)
        res = render(
            p["means"],
            p["quats"],
            torch.exp(p["scales"]),
            torch.sigmoid(p["opacities"]),
            torch.cat([p["sh0"], p["shN"]], dim=1),
            cam,
            features=self.objective.activate(self.features),
            sh_degree=self.sh_degree,
            backgrounds=self.background[None],
            backend=self.cfg.backend,
        )
        assert res.features is not None  # features were given to render()
        ids = batch.pixel_ids.to(self.device)
        d = self.features.shape[1]
        out = {
            "features": res.features.reshape(-1, d)[ids],
            "rgb": res.rgb.reshape(-1, 3)[ids],
            "depth": res.depth.reshape(-1)[ids],
            "alpha": res.alpha.reshape(-1)[ids],
        }
        gt = self._image(batch.view)
        return out, (res.rgb[0] - gt).abs().mean()

    def _image(self, view: str) -> Tensor:
        def load() -> Tensor:
            img = self.ds.image(view)
            if img.shape[:2] != (self.height, self.width):
                img = torch.nn.functional.interpolate(
                    img.permute(2, 0, 1)[None], size=(self.height, self.width), mode="area"
                )[0].permute(1, 2, 0)
            return img.to(self.device)

        return self._images.get(view, load)

    # ------------------------------------------------------------------ loop
    def _view_loss(self, slot: int) -> tuple[Tensor, dict[str, float], Any] | None:
        """Loss, its terms and the objective's observation of view slot ``slot`` (global index over
        all steps' views); None without a batch."""
        cfg = self.cfg
        view = self.views[view_order(len(self.views), slot, cfg.seed)]
        batch = self.objective.sample(view, self.ctx, step_generator(cfg.seed, slot))
        if batch is None:
            return None
        if self.params is None:
            rendered = self._render_frozen(batch)
            loss, terms = self.objective.loss(batch, rendered, self.features)
        else:
            rendered, rgb_l1 = self._render_joint(batch, self.params)
            loss, terms = self.objective.loss(batch, rendered, self.features)
            loss = loss + cfg.joint_rgb_weight * rgb_l1
            terms = {**terms, "rgb_l1": float(rgb_l1.detach())}
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite feature loss at step {self.step} (view {view}): {terms}")
        return loss, terms, self.objective.observe(batch, rendered)

    def train_step(self) -> tuple[float, dict[str, float]] | None:
        """One step over ``views_per_step`` views (this rank's share of them under torchrun); None
        when the objective had nothing to learn in any of them (the step still counts). The
        objective's observations of all views of the step update its state at the end, in slot
        order, on every rank."""
        cfg, step, group = self.cfg, self.step, self.group
        per_step = cfg.views_per_step
        self.objective.begin_step(step, cfg.iters)
        total, used = 0.0, 0
        terms: dict[str, float] = {}
        observations: list[tuple[int, Any]] = []
        for j in range(per_step):
            if not group.owns(j):
                continue
            out = self._view_loss(step * per_step + j)
            if out is None:
                continue
            loss, terms, seen = out
            (loss / per_step).backward()
            total, used = total + float(loss.detach()), used + 1
            if seen is not None:
                observations.append((j, seen))
        self.step += 1
        if group.distributed:
            if self.features.grad is None:
                self.features.grad = torch.zeros_like(self.features)
            group.sum_(self.features.grad)
            stats = group.sum_(torch.tensor([total, float(used)], dtype=torch.float64))
            total, used = float(stats[0]), int(stats[1])
            if self.objective.stateful:
                observations = group.gather_slots(observations)
        self.objective.update_state([seen for _, seen in observations])
        if used == 0:
            self.features.grad = None
            return None
        for opt in [self.optimizer, *self.geo_optimizers.values()]:
            opt.step()
            opt.zero_grad(set_to_none=True)
        return total / used, terms

    def train(self) -> FeatureResult:
        """Run from ``self.step`` to ``cfg.iters``; checkpoint periodically and at the end."""
        cfg = self.cfg
        previous_threads = torch.get_num_threads()
        if cfg.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        try:
            return self._train_loop()
        finally:
            torch.set_num_threads(previous_threads)

    def _train_loop(self) -> FeatureResult:
        from gsseg.utils.progress import NullProgress, progress_bar

        cfg = self.cfg
        t0 = time.perf_counter()
        updates, empty_run = 0, 0
        loss_ema = math.nan
        with progress_bar(transient=False) if self.show_progress else NullProgress() as progress:
            task = progress.add_task(
                f"features ({self.objective.name})", total=cfg.iters, completed=self.step, info="", unit="step"
            )
            while self.step < cfg.iters:
                result = self.train_step()
                terms: dict[str, float] = {}
                if result is None:
                    empty_run += 1
                    if empty_run >= MAX_EMPTY_PASSES * len(self.views):
                        raise GssegError(
                            f"{self.ds.masks_dir}: objective {self.objective.name!r} found nothing to "
                            "learn in any training view (are there masks? run `gsseg masks DATA`)"
                        )
                    loss = math.nan
                else:
                    empty_run, updates = 0, updates + 1
                    loss, terms = result
                    loss_ema = loss if math.isnan(loss_ema) else 0.95 * loss_ema + 0.05 * loss
                elapsed = time.perf_counter() - t0
                rate = updates / elapsed if elapsed > 0 else 0.0
                progress.update(task, completed=self.step, info=f"loss {loss_ema:.4f}  {rate:.1f} step/s")
                timed_out = cfg.time_limit_s > 0 and elapsed >= cfg.time_limit_s
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.iters or timed_out:
                    self.checkpoint()
                for cb in self.callbacks:
                    cb(FeatureStepReport(self.step, loss, terms))
                if timed_out:
                    break
        if self.run.latest_checkpoint(STAGE) is None:
            self.checkpoint()
        return FeatureResult(
            self.features.detach().cpu(),
            self.current_scene(),
            self.step,
            self.resumed_from,
            time.perf_counter() - t0,
            updates,
        )


def objective_inputs(
    ctx: FeatureContext, objective: Objective, scene: GaussianScene
) -> tuple[SurfaceProbe, RunPrompts | None]:
    """What the trainer hands ``objective.prepare`` besides masks: (surface, prompts) — the frozen
    ``scene``'s rendered depth at the table resolution (lazy, per view) and, when the objective
    has prompts, the prompts propagated to the training views (None otherwise)."""
    from gsseg.prompts.run import propagate_for_run, run_surface_probe

    options = objective.prompt_options()
    prompts = None if options is None else propagate_for_run(ctx, options, scene)
    return run_surface_probe(ctx, scene), prompts


def auto_table_scale(scene: GaussianScene, cameras, budget: int, backend: str = "auto") -> float:
    """The table scale of ``--table-scale 0`` (the default): full resolution when the tables of
    all views fit in ``budget`` bytes, else the largest scale at which they do (so no table is
    rebuilt after eviction); measured on probe tables built on the CPU."""
    from gsseg.render.tables import auto_table_scale as fitting_scale

    geo = scene.to("cpu")
    return fitting_scale(
        geo.means,
        geo.quats,
        geo.scales,
        geo.opacities,
        cameras.to("cpu"),
        budget,
        backend="auto" if backend == "cuda" else backend,
    )


def _covered(ctx: FeatureContext, view: str):
    """[H*W] bool pixels of ``view`` some mask covers (table resolution), None without masks."""
    masks = ctx.masks(view)
    return None if masks is None else covered_pixels(masks)


def run_features_stage(ds, cfg, run: RunDir, opts) -> dict:
    """Pipeline entry (``stage_runners()["features"]``): train, then write ``RUN/features.pt``."""
    from gsseg.features import FeatureRecord, save_features
    from gsseg.gaussians.ply import read_ply, write_ply
    from gsseg.utils.atomic import write_json

    fcfg: FeatureStageConfig = cfg.features
    if not run.scene_ply.is_file():
        raise file_error(run.scene_ply, "not found: run the RGB stage first (`gsseg train DATA --out RUN --stage rgb`)")
    scene = read_ply(run.scene_ply)
    objective = make_objective(fcfg.objective, **fcfg.objective_settings)
    trainer = FeatureTrainer(
        ds,
        scene,
        fcfg,
        run,
        objective,
        background=run.render_background(),
        callbacks=opts.callbacks,
        show_progress=opts.show_progress,
    )
    if objective.training_free:
        t0 = time.perf_counter()
        solved = objective.solve(trainer.ctx, trainer.table, len(trainer.scene))
        if solved is None:
            raise RuntimeError(f"training-free objective {objective.name!r} returned no features from solve()")
        feats = solved.detach().cpu()
        result = FeatureResult(feats, trainer.current_scene(), 0, None, time.perf_counter() - t0, 0)
    else:
        if not (opts.resume and trainer.resume()):
            trainer.start()
        result = trainer.train()
    if not trainer.group.is_main:  # rank 0 writes the outputs; the features are the same on every rank
        return {"stage": STAGE, "objective": objective.name, "steps": result.steps, "rank": trainer.group.rank}
    if fcfg.joint:
        write_ply(run.scene_ply, result.scene)
    coverage = None
    if not fcfg.joint:  # in joint mode the geometry moved: its tables are not the trainer's
        from gsseg.utils.progress import NullProgress, progress_bar

        with progress_bar(transient=True) if opts.show_progress else NullProgress() as progress:
            coverage = mask_coverage(
                trainer.views, trainer.table, lambda v: _covered(trainer.ctx, v), len(trainer.scene), progress
            )
    info = FeatureInfo(kind=objective.kind, objective=objective.name, dim=objective.feature_dim())
    settings = {
        **objective.settings(),
        "stage": {
            "iters": fcfg.iters,
            "lr": fcfg.lr,
            "table_scale": trainer.table_scale,
            "joint": fcfg.joint,
            "seed": fcfg.seed,
        },
    }
    record = FeatureRecord(
        result.features, info, settings=settings, extras=objective.extras(), step=result.steps, coverage=coverage
    )
    save_features(run.features_pt, record)
    summary = {
        "stage": STAGE,
        "objective": objective.name,
        "steps": result.steps,
        "updates": result.updates,
        "resumed_from": result.resumed_from,
        "gaussians": int(result.features.shape[0]),
        "dim": int(result.features.shape[1]),
        "seconds": result.seconds,
        "joint": fcfg.joint,
        "processes": trainer.group.world_size,
        "views_per_step": fcfg.views_per_step,
        "table_scale": trainer.table_scale,
        "table_size": [trainer.width, trainer.height],
        "table_builds": trainer.tables.builds,
        "features": str(run.features_pt),
        "scene_ply": str(run.scene_ply),
    }
    write_json(run.root / "features.json", summary)
    return summary
