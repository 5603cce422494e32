"""NeRF backend core (gsseg/field): volume-rendering weights, occupancy-grid skipping, a tiny
scene that trains, resume after a kill equal to an uninterrupted run, and the CLI dispatch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gsseg.data.cameras import Cameras
from gsseg.field.model import RadianceField
from gsseg.field.occupancy import OccupancyGrid
from gsseg.field.render import render_image
from gsseg.field.volume import render_weights
from gsseg.run.run_dir import RunDir
from tests.helpers.data_fixtures import look_at_w2c
from tests.helpers.field_fixtures import tiny_cfg


def literal_weights(sigmas: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """The NeRF quadrature written sample by sample: w_i = T_i (1 - exp(-sigma_i delta_i))."""
    out = []
    for r in range(sigmas.shape[0]):
        transmittance = torch.ones((), dtype=sigmas.dtype)
        row = []
        for i in range(sigmas.shape[1]):
            a = 1.0 - torch.exp(-sigmas[r, i] * deltas[r, i])
            row.append(transmittance * a)
            transmittance = transmittance * (1.0 - a)
        out.append(torch.stack(row))
    return torch.stack(out)


def test_weights_match_literal_loop_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    sigmas = (torch.rand(5, 12, generator=g, dtype=torch.float64) * 8.0).requires_grad_()
    deltas = torch.rand(5, 12, generator=g, dtype=torch.float64) * 0.3
    sigmas.data[1, :] = 0.0  # an empty ray
    sigmas.data[2, 3], deltas[2, 3] = 200.0, 0.2  # an opaque sample: everything behind it gets ~0
    values = torch.rand(5, 12, generator=g, dtype=torch.float64)

    w, t_final = render_weights(sigmas, deltas)
    ref = literal_weights(sigmas, deltas)
    assert torch.allclose(w, ref, atol=1e-12)
    assert torch.allclose(t_final, 1.0 - ref.sum(1), atol=1e-12)
    assert float(w[1].abs().max()) == 0.0 and float(w[2, 4:].detach().max()) < 1e-12

    (grad,) = torch.autograd.grad((w * values).sum(), sigmas)
    (grad_ref,) = torch.autograd.grad((ref * values).sum(), sigmas)
    assert torch.allclose(grad, grad_ref, atol=1e-10)
    assert float(grad.abs().max()) > 1e-3  # the gradients are not trivially zero


class BallField(RadianceField):
    """A field with an analytic density: a solid ball of radius 0.4 at the origin (sigma 60 inside),
    empty elsewhere; colour from the (random) MLP so the render is not constant."""

    def _sigma(self, x):
        return torch.where(x.norm(dim=1) < 0.4, torch.full_like(x[:, 0], 60.0), torch.zeros_like(x[:, 0]))

    def density(self, x):
        geo = torch.cat([x, x.norm(dim=1, keepdim=True)], dim=1)  # geo_dim 4
        return self._sigma(x), geo

    def density_contracted(self, y):
        n = (2.0 * y).norm(dim=1, keepdim=True).clamp_min(1e-9)  # invert the contraction (radius 1)
        r = torch.where(n <= 1.0, n, 1.0 / (2.0 - n).clamp_min(1e-6))
        return self._sigma(2.0 * y / n * r)


def one_camera(width=32, height=24, eye=(2.5, 0.3, 0.8)) -> Cameras:
    w2c = torch.tensor(look_at_w2c(eye, (0.0, 0.0, 0.0)), dtype=torch.float32)[None]
    K = torch.tensor([[[30.0, 0, width / 2], [0, 30.0, height / 2], [0, 0, 1]]])
    return Cameras(w2c, K, [width], [height], ["v"])


def test_occupancy_grid_skips_empty_space_without_changing_the_render():
    torch.manual_seed(0)
    cfg = tiny_cfg(grid_resolution=32, samples_inner=64, samples_outer=8)
    field = BallField(cfg, torch.zeros(3), 1.0)
    cam = one_camera()
    bg = torch.tensor([0.2, 0.4, 0.6])
    full = render_image(field, None, cam, 0, bg)
    grid = OccupancyGrid(cfg.grid_resolution, cfg.grid_alpha)
    assert grid.occupied_fraction == 1.0  # never updated: nothing is skipped
    grid.update(field.density_contracted, torch.Generator().manual_seed(0), fraction=1.0)
    assert grid.occupied_fraction < 0.05
    skipped = render_image(field, grid, cam, 0, bg)
    for k in ("rgb", "depth", "alpha"):
        assert torch.allclose(full[k], skipped[k], atol=1e-5), k
    assert float(full["alpha"].max()) > 0.99 and float(full["alpha"].min()) < 1e-6  # the ball and empty space
    hit = full["alpha"] > 0.99
    assert torch.allclose(full["rgb"][~hit], bg.expand_as(full["rgb"][~hit]))  # background where empty
    # the depth of the ball's silhouette centre is the distance to its front surface (z-depth 2.6 - 0.4)
    assert abs(float(full["depth"][12, 16]) - (np.linalg.norm([2.5, 0.3, 0.8]) - 0.4)) < 0.05

    from gsseg.field.rays import camera_rays
    from gsseg.field.render import render_rays

    o, d = camera_rays(cam, 0)
    n_full = int(render_rays(field, None, o, d, bg)["samples"])
    n_grid = int(render_rays(field, grid, o, d, bg)["samples"])
    assert n_grid < 0.2 * n_full


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from gsseg.data import load_dataset
    from gsseg.synth import make_scene

    out = tmp_path_factory.mktemp("data") / "tiny"
    make_scene(out, scene="tabletop", seed=0, width=32, height=24, views=6, test_views=1)
    return load_dataset(out)


def test_tiny_scene_trains_above_a_psnr_floor(tiny, tmp_path):
    from gsseg.field.rgb import FieldRGBTrainer, field_psnr_per_view

    torch.manual_seed(0)
    trainer = FieldRGBTrainer(
        tiny, tiny_cfg(iters=150, rays=512, lr=3e-2, lr_mlp=5e-3), RunDir(tmp_path), show_progress=False
    )
    trainer.start()
    before = field_psnr_per_view(trainer.field, trainer.grid, tiny, trainer.background(), "train")
    trainer.train()
    after = field_psnr_per_view(trainer.field, trainer.grid, tiny, trainer.background(), "train")
    mean_before, mean_after = np.mean(list(before.values())), np.mean(list(after.values()))
    assert mean_after > 19.0 and mean_after > mean_before + 3.0, (mean_before, mean_after)
    assert trainer.grid.occupied_fraction < 1.0  # the grid was refreshed and skips something


class Kill(Exception):
    pass


def test_resume_after_a_kill_equals_an_uninterrupted_run(tiny, tmp_path):
    from gsseg.field.rgb import FieldRGBTrainer

    cfg = tiny_cfg(iters=16, grid_warmup=4, grid_every=3, checkpoint_every=6)
    full = FieldRGBTrainer(tiny, cfg, RunDir(tmp_path / "full"), show_progress=False)
    full.start()
    full.train()

    def kill_at_8(report):
        if report.step == 8:
            raise Kill  # after the step-6 checkpoint, before the next: steps 7-8 are lost

    run = RunDir(tmp_path / "killed")
    first = FieldRGBTrainer(tiny, cfg, run, callbacks=[kill_at_8], show_progress=False)
    first.start()
    with pytest.raises(Kill):
        first.train()
    assert [s for s, _ in run.list_checkpoints("rgb")] == [6]
    second = FieldRGBTrainer(tiny, cfg, run, show_progress=False)
    assert second.resume() and second.step == 6
    second.train()
    a, b = full.field.state_dict(), second.field.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(full.grid.density, second.grid.density)
    assert full.background() == second.background()


def test_cli_trains_a_nerf_run_and_refuses_gaussian_options(tiny, tmp_path, capsys):
    from gsseg.field.io import load_field
    from tests.helpers.cli_fixtures import cli_exit_code

    data = tiny.root
    out = tmp_path / "run"
    code = cli_exit_code(
        ["train", str(data), "--out", str(out), "--representation", "nerf", "--iters", "3", "--stage", "rgb", "-q"]
    )
    assert code == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["representation"] == "nerf" and cfg["field"]["iters"] == 3
    summary = json.loads((out / "rgb.json").read_text())
    assert summary["representation"] == "nerf" and summary["steps"] == 3 and summary["test_psnr"] > 5.0
    field, grid, bg = load_field(out / "field.pt")
    assert field.feature_dim == 0 and len(bg) == 3
    code = cli_exit_code(
        ["train", str(data), "--out", str(tmp_path / "r2"), "--representation", "nerf", "--sh-degree", "1"]
    )
    text = capsys.readouterr().err
    assert code != 0 and "--sh-degree only applies to --representation gaussians" in text
    code = cli_exit_code(["train", str(data), "--out", str(tmp_path / "r3"), "--representation", "sdf2"])
    text = capsys.readouterr().err
    assert code != 0 and "unknown --representation 'sdf2'" in text
    assert not (tmp_path / "r3").exists()
