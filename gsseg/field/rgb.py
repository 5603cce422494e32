"""The RGB stage of a radiance-field run: fit density and colour to the training photos.

Each step renders ``rays`` random training pixels (drawn from a generator seeded by the step, so a
resumed run repeats the same batches), loss = MSE against the photo; Adam on the tri-plane (``lr``)
and the MLPs (``lr_mlp``) with exponential decay to ``lr_final_factor``; a learned background
colour; the occupancy grid is refreshed every ``grid_every`` steps after ``grid_warmup``; atomic
checkpoints every ``checkpoint_every`` steps (``RUN/checkpoints/rgb_<step>.pt``) and at the end
``RUN/field.pt`` plus ``RUN/rgb.json`` with the test-view PSNR.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from gsseg.config.field import FieldConfig
from gsseg.errors import file_error
from gsseg.eval.psnr import mse_to_psnr, psnr
from gsseg.field.io import field_from_payload, field_path, field_payload, save_field
from gsseg.field.model import RadianceField, scene_normalisation
from gsseg.field.occupancy import OccupancyGrid
from gsseg.field.rays import batch_rays
from gsseg.field.render import render_image, render_rays
from gsseg.run.checkpoint import load_checkpoint, save_checkpoint
from gsseg.run.run_dir import RunDir
from gsseg.utils.device import resolve_device

STAGE = "rgb"
GRID_FRACTION = 0.25  # share of the cells a periodic occupancy refresh re-evaluates


@dataclass
class FieldStepReport:
    """What callbacks see after each completed step (``step`` = number of completed steps)."""

    step: int
    loss: float
    psnr: float
    occupied: float


def step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """CPU generator for one step (stateless: a resumed run draws the same batches)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 7 + salt)


class TrainingPixels:
    """All training photos flattened: rgb [N,3], view id [N], pixel id [N] (y * W + x), on ``device``."""

    def __init__(self, ds, device: torch.device) -> None:
        cams = ds.cameras("train")
        rgb, views, pix = [], [], []
        for i, name in enumerate(cams.names):
            img = ds.image(name)
            h, w = img.shape[:2]
            rgb.append(img.reshape(-1, 3))
            views.append(torch.full((h * w,), i, dtype=torch.int64))
            pix.append(torch.arange(h * w, dtype=torch.int64))
        self.cameras = cams.to(device)
        self.rgb = torch.cat(rgb).to(device)
        self.view_ids = torch.cat(views).to(device)
        self.pixel_ids = torch.cat(pix).to(device)

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def batch(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """(origins [n,3], dirs [n,3], rgb [n,3]) of n random training pixels."""
        idx = torch.randint(len(self), (n,), generator=generator).to(self.rgb.device)
        c = self.cameras
        o, d = batch_rays(c.viewmats, c.Ks, c.widths, self.view_ids[idx], self.pixel_ids[idx])
        return o, d, self.rgb[idx]


class FieldRGBTrainer:
    """Holds the field, occupancy grid, background and optimiser; runs and checkpoints the loop.

    callbacks: called as ``cb(report: FieldStepReport)`` after each completed step; an exception
    raised by one aborts the run without a checkpoint (like a kill).
    """

    def __init__(
        self, ds, cfg: FieldConfig, run: RunDir, callbacks: list[Callable] | None = None, show_progress: bool = True
    ) -> None:
        cfg.validate()
        self.ds, self.cfg, self.run = ds, cfg, run
        self.callbacks = list(callbacks or [])
        self.show_progress = show_progress
        self.device = resolve_device(cfg.device)
        if len(ds.names("train")) == 0:
            raise ValueError("the dataset has no training views")
        self.pixels = TrainingPixels(ds, self.device)
        # the field, its occupancy grid, background and optimiser: made by start() or resume()
        self.field: RadianceField
        self.grid: OccupancyGrid
        self.bg_logit: torch.nn.Parameter
        self.optimizer: torch.optim.Adam
        self.step = 0
        self.resumed_from: int | None = None

    # ------------------------------------------------------------------ state
    def start(self) -> None:
        torch.manual_seed(self.cfg.seed)
        center, radius = scene_normalisation(self.ds.cameras("train"))
        self.field = RadianceField(self.cfg, center, radius).to(self.device)
        self.grid = OccupancyGrid(self.cfg.grid_resolution, self.cfg.grid_alpha, device=self.device)
        self.bg_logit = torch.nn.Parameter(torch.zeros(3, device=self.device))
        self._make_optimizer()
        self.step = 0

    def _make_optimizer(self) -> None:
        groups = self.field.rgb_parameters()
        self.optimizer = torch.optim.Adam(
            [
                {"params": groups["planes"], "lr": self.cfg.lr, "name": "planes"},
                {"params": groups["mlp"], "lr": self.cfg.lr_mlp, "name": "mlp"},
                {"params": [self.bg_logit], "lr": self.cfg.lr_background, "name": "background"},
            ],
            eps=1e-15,
            foreach=True,
        )
        self._base_lrs = [g["lr"] for g in self.optimizer.param_groups]

    def resume(self) -> bool:
        """Load the newest checkpoint of this stage, if any; True when resumed."""
        path = self.run.latest_checkpoint(STAGE)
        if path is None:
            return False
        ck = load_checkpoint(path, map_location="cpu")
        try:
            self.field, self.grid, _ = field_from_payload(ck["field"], self.device)
            self.bg_logit = torch.nn.Parameter(ck["background_logit"].to(self.device))
            self._make_optimizer()
            self.optimizer.load_state_dict(ck["optimizer"])
            self.step = int(ck["step"])
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise file_error(
                path, f"not a usable field checkpoint ({type(e).__name__}: {e}); delete it or pass --restart"
            ) from None
        self.resumed_from = self.step
        return True

    def checkpoint(self) -> None:
        payload = {
            "stage": STAGE,
            "representation": "nerf",
            "step": self.step,
            "field": field_payload(self.field, self.grid, self.background()),
            "background_logit": self.bg_logit.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
        }
        save_checkpoint(self.run.checkpoint_path(STAGE, self.step), payload)
        self.run.prune_checkpoints(STAGE, self.cfg.keep_checkpoints)

    def background(self) -> tuple[float, float, float]:
        b = torch.sigmoid(self.bg_logit.detach()).cpu()
        return (float(b[0]), float(b[1]), float(b[2]))

    # ------------------------------------------------------------------ loop
    def train_step(self) -> tuple[float, float]:
        """One optimisation step on ``rays`` random training pixels; returns (loss, psnr)."""
        cfg, step = self.cfg, self.step
        progress = min(step / max(cfg.iters, 1), 1.0)
        for g, base in zip(self.optimizer.param_groups, self._base_lrs):
            g["lr"] = base * cfg.lr_final_factor**progress
        gen = step_generator(cfg.seed, step)
        if step >= cfg.grid_warmup and (step - cfg.grid_warmup) % cfg.grid_every == 0:
            fraction = 1.0 if step == cfg.grid_warmup else GRID_FRACTION
            self.grid.update(self.field.density_contracted, step_generator(cfg.seed, step, 1), fraction)
        origins, dirs, gt = self.pixels.batch(cfg.rays, gen)
        out = render_rays(
            self.field,
            self.grid,
            origins,
            dirs,
            torch.sigmoid(self.bg_logit),
            generator=step_generator(cfg.seed, step, 2),
        )
        loss = torch.mean((out["rgb"] - gt) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.item()), mse_to_psnr(float(loss.item()))

    def train(self) -> dict:
        """Run from ``self.step`` to ``cfg.iters``; checkpoint periodically and at the end."""
        from gsseg.utils.progress import NullProgress, progress_bar

        cfg = self.cfg
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        if cfg.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        try:
            self._loop(t0, progress_bar, NullProgress)
        finally:
            torch.set_num_threads(threads)
        if self.run.latest_checkpoint(STAGE) is None:
            self.checkpoint()
        return {"steps": self.step, "seconds": time.perf_counter() - t0}

    def _loop(self, t0: float, progress_bar, NullProgress) -> None:
        cfg = self.cfg
        psnr_ema = math.nan
        with progress_bar(transient=False) if self.show_progress else NullProgress() as progress:
            task = progress.add_task("rgb (nerf)", total=cfg.iters, completed=self.step, info="", unit="step")
            while self.step < cfg.iters:
                loss, p = self.train_step()
                psnr_ema = p if math.isnan(psnr_ema) else 0.9 * psnr_ema + 0.1 * p
                occ = self.grid.occupied_fraction
                progress.update(
                    task, completed=self.step, info=f"loss {loss:.4f}  psnr {psnr_ema:5.2f}  occupied {100 * occ:.1f}%"
                )
                timed_out = cfg.time_limit_s > 0 and time.perf_counter() - t0 >= cfg.time_limit_s
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.iters or timed_out:
                    self.checkpoint()
                report = FieldStepReport(self.step, loss, p, occ)
                for cb in self.callbacks:
                    cb(report)
                if timed_out:
                    break


@torch.no_grad()
def field_psnr_per_view(field, grid, ds, background, split: str = "test", progress=None) -> dict[str, float]:
    """{view stem: PSNR in dB} of the field's renders over the views of ``split``."""
    cams = ds.cameras(split).to(field.center.device)
    bg = torch.tensor(background, dtype=torch.float32, device=field.center.device)
    result = {}
    task = progress.add_task("psnr", total=len(cams), info="", unit="view") if progress is not None else None
    for i, name in enumerate(cams.names):
        img = render_image(field, grid, cams, i, bg)["rgb"].clamp(0.0, 1.0)
        result[name] = psnr(img, ds.image(name).to(img.device))
        if progress is not None:
            progress.update(task, advance=1, info=f"{name} {result[name]:.2f} dB")
    return result


def run_field_rgb_stage(ds, cfg, run: RunDir, opts) -> dict:
    """RGB stage of a ``--representation nerf`` run: resume or start, train, write ``RUN/field.pt``
    and ``RUN/rgb.json`` (steps, seconds, background, test PSNR, warnings)."""
    from gsseg.run.schedule import schedule_warning
    from gsseg.utils.atomic import write_json
    from gsseg.utils.progress import NullProgress, progress_bar

    fcfg = cfg.field
    trainer = FieldRGBTrainer(ds, fcfg, run, callbacks=opts.callbacks, show_progress=opts.show_progress)
    if not (opts.resume and trainer.resume()):
        trainer.start()
    result = trainer.train()
    out = save_field(field_path(run.root), trainer.field, trainer.grid, trainer.background())
    held_out: dict[str, float] = {}
    if ds.names("test"):
        with progress_bar(transient=True) if opts.show_progress else NullProgress() as progress:
            held_out = field_psnr_per_view(trainer.field, trainer.grid, ds, trainer.background(), "test", progress)
    warning = schedule_warning(result["steps"], fcfg.iters, fcfg.time_limit_s)
    train = ds.names("train")
    summary = {
        "stage": "rgb",
        "representation": "nerf",
        "steps": result["steps"],
        "resumed_from": trainer.resumed_from,
        "background": list(trainer.background()),
        "seconds": result["seconds"],
        "field": str(out),
        "occupied": trainer.grid.occupied_fraction,
        "views": {"train": list(train), "test": list(ds.names("test")), "size": [int(v) for v in ds.size(train[0])]},
        "iters": fcfg.iters,
        "time_limit_s": fcfg.time_limit_s,
        "test_psnr": sum(held_out.values()) / len(held_out) if held_out else None,
        "test_psnr_per_view": held_out,
        "warnings": [warning] if warning else [],
    }
    write_json(run.rgb_summary, summary)
    return summary
