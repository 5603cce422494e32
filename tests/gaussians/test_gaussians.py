"""GaussianScene container and initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsseg.config.train import RGBConfig, TrainConfig
from gsseg.gaussians import FeatureInfo, GaussianScene, init_from_points, rgb_to_sh, sh_to_rgb
from gsseg.gaussians.init import init_from_dataset, knn_log_scales, random_points
from gsseg.run.schedule import view_order
from gsseg.train.rgb import make_optimizers, means_lr


def test_init_from_points_values():
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3], [5, 5, 5]], np.float32)
    cols = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    s = init_from_points(pts, cols, sh_degree=2, init_opacity=0.1)
    assert len(s) == 5 and s.sh_degree == 2 and s.shN.shape == (5, 8, 3)
    assert torch.allclose(s.opacities, torch.full((5,), 0.1))
    assert torch.equal(s.quats, torch.tensor([[1.0, 0, 0, 0]] * 5))
    assert torch.allclose(sh_to_rgb(s.sh0[:, 0]), torch.from_numpy(cols), atol=1e-6)
    # point 0: neighbours at distances 1, 2, 3 -> sqrt(mean(1, 4, 9))
    assert math.isclose(float(s.scales[0, 0]), math.sqrt(14 / 3), rel_tol=1e-5)
    assert torch.all(s.scales[:, 0] == s.scales[:, 2])


def test_knn_scales_handle_duplicates_and_tiny_inputs():
    assert torch.isfinite(knn_log_scales(np.zeros((4, 3), np.float32))).all()
    assert knn_log_scales(np.zeros((1, 3), np.float32)).shape == (1, 3)
    assert knn_log_scales(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_random_points_in_box():
    pts, cols = random_points(1000, np.array([1.0, 2.0, 3.0]), 0.5, seed=3)
    assert pts.shape == (1000, 3) and cols.shape == (1000, 3)
    assert np.all(np.abs(pts - [1, 2, 3]) <= 0.5) and np.all((cols >= 0) & (cols <= 1))


class _NoPointsDataset:
    """Minimal dataset stand-in: two cameras, no sparse points."""

    points = None
    scene_scale = 2.0

    def cameras(self, split):
        from gsseg.data.cameras import Cameras, intrinsics

        vm = torch.eye(4).repeat(2, 1, 1)
        vm[0, :3, 3] = torch.tensor([0.0, 0.0, 4.0])
        vm[1, :3, 3] = torch.tensor([0.0, 0.0, -4.0])
        return Cameras(vm, intrinsics(10, 10, 5, 5).repeat(2, 1, 1), [10, 10], [10, 10], ["a", "b"])


def test_init_random_when_no_points():
    scene, source = init_from_dataset(_NoPointsDataset(), sh_degree=1, random_count=300, seed=1)
    assert source == "random" and len(scene) == 300
    # camera centres are (0,0,-4) and (0,0,4): box centred at the origin, half-size = scene scale
    assert scene.means.abs().max() <= 2.0 + 1e-6


def test_param_dict_round_trip_and_optimizers():
    g = torch.Generator().manual_seed(0)
    n = 10
    scene = GaussianScene(
        torch.randn(n, 3, generator=g),
        torch.randn(n, 3, generator=g),
        torch.randn(n, 4, generator=g),
        torch.randn(n, generator=g),
        torch.randn(n, 1, 3, generator=g),
        torch.randn(n, 15, 3, generator=g),
    )
    params = scene.to_param_dict()
    assert list(params.keys()) == ["means", "scales", "quats", "opacities", "sh0", "shN"]
    assert torch.equal(params["scales"], scene.log_scales) and torch.equal(params["opacities"], scene.logit_opacities)
    back = GaussianScene.from_param_dict(params)
    assert torch.equal(back.shN, scene.shN) and back.sh_degree == 3
    opts = make_optimizers(params, RGBConfig(), scene_scale=2.0)
    assert set(opts) == set(params)
    for k, opt in opts.items():
        assert len(opt.param_groups) == 1 and opt.param_groups[0]["name"] == k
        assert opt.param_groups[0]["params"][0] is params[k]
    assert opts["means"].param_groups[0]["lr"] == pytest.approx(1.6e-4 * 2.0)
    from gsplat.strategy import DefaultStrategy

    DefaultStrategy().check_sanity(params, opts)


def test_scene_validation_and_helpers():
    s = GaussianScene.empty(sh_degree=1)
    assert len(s) == 0 and s.sh_degree == 1
    with pytest.raises(ValueError, match="shN"):
        GaussianScene(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            torch.zeros(2, 4),
            torch.zeros(2),
            torch.zeros(2, 1, 3),
            torch.zeros(2, 5, 3),
        )
    with pytest.raises(ValueError, match="feature_info"):
        GaussianScene(
            torch.zeros(2, 3),
            torch.zeros(2, 3),
            torch.zeros(2, 4),
            torch.zeros(2),
            torch.zeros(2, 1, 3),
            torch.zeros(2, 0, 3),
            features=torch.zeros(2, 4),
        )
    with pytest.raises(ValueError, match="kind"):
        FeatureInfo("colour", "x", 3)
    s = GaussianScene(
        torch.zeros(3, 3),
        torch.zeros(3, 3),
        torch.zeros(3, 4),
        torch.zeros(3),
        rgb_to_sh(torch.full((3, 1, 3), 0.5)),
        torch.ones(3, 3, 3),
        torch.zeros(3, 2),
        FeatureInfo("embedding", "contrastive", 2),
    )
    assert torch.allclose(s.sh0, torch.zeros(3, 1, 3))
    up = s.with_sh_degree(3)
    assert up.shN.shape == (3, 15, 3) and torch.equal(up.shN[:, :3], s.shN) and up.shN[:, 3:].abs().sum() == 0
    assert s.with_sh_degree(0).shN.shape == (3, 0, 3)
    s.means[1, 0] = float("inf")
    assert s.invalid_rows().tolist() == [False, True, False]
    assert len(s.subset(~s.invalid_rows())) == 2


def test_schedules_and_config_round_trip():
    cfg = RGBConfig(iters=1000)
    assert means_lr(cfg, 1.0, 0.0) == pytest.approx(1.6e-4)
    assert means_lr(cfg, 1.0, 1.0) == pytest.approx(1.6e-6)
    assert means_lr(cfg, 2.0, 0.5) == pytest.approx(3.2e-5)
    epoch0 = [view_order(7, s, seed=0) for s in range(7)]
    assert sorted(epoch0) == list(range(7))
    assert [view_order(7, s, seed=0) for s in range(7)] == epoch0  # stateless
    tc = TrainConfig(dataset="/x", rgb=RGBConfig(iters=5, background=(1.0, 1.0, 1.0)))
    d = tc.to_dict()
    d["later_stage"] = {"k": 1}  # a section this version does not know survives a round trip
    back = TrainConfig.from_dict(d)
    assert back.rgb == tc.rgb and back.extra == {"later_stage": {"k": 1}}
    assert back.to_dict()["later_stage"] == {"k": 1}


def test_colors_from_views_and_shell():
    from gsseg.data.cameras import Cameras, intrinsics
    from gsseg.gaussians.init import colors_from_views, fibonacci_sphere

    cams = Cameras(torch.eye(4)[None], intrinsics(10, 10, 5, 5)[None], [10], [10], ["a"])
    img = torch.zeros(10, 10, 3)
    img[:5, :, 0] = 1.0  # top half red
    img[5:, :, 2] = 1.0  # bottom half blue
    pts = np.array([[0, -1, 5], [0, 1, 5], [0, 0, -5], [100, 0, 5]], np.float32)  # up, down, behind, outside
    colors, seen = colors_from_views(pts, cams, lambda name: img)
    assert seen.tolist() == [True, True, False, False]
    assert colors[0].tolist() == [1, 0, 0] and colors[1].tolist() == [0, 0, 1]
    dirs = fibonacci_sphere(500)
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1) and np.abs(dirs.mean(0)).max() < 0.01
