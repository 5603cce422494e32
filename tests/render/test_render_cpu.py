"""C++ CPU rasterizer against the pure-PyTorch reference: values and gradients of every input."""

from __future__ import annotations

import pytest
import torch

from gsseg.data.cameras import Cameras
from gsseg.gaussians.scene import GaussianScene
from gsseg.render import render
from gsseg.render.extensions import load_cpu_extension
from gsseg.render.testing import flat_colors, orbit_cameras, random_scene

pytestmark = pytest.mark.skipif(load_cpu_extension() is None, reason="C++ CPU extension could not be built")

F64 = torch.float64


def _render_and_grads(
    scene: GaussianScene,
    cams: Cameras,
    backend: str,
    sh_degree: int | None = 3,
    with_features: bool = True,
    backgrounds: torch.Tensor | None = None,
    seed: int = 1,
):
    means, quats, scales, opacities, colors, features = (
        t.detach().clone().requires_grad_(True)
        for t in (
            scene.means,
            scene.quats,
            scene.scales,
            scene.opacities,
            scene.colors if sh_degree is not None else flat_colors(scene),
            scene.features,
        )
    )
    out = render(
        means,
        quats,
        scales,
        opacities,
        colors,
        cams,
        features=features if with_features else None,
        sh_degree=sh_degree,
        backgrounds=backgrounds,
        backend=backend,
    )
    assert out.meta["backend"] == backend
    out.meta["means2d"].retain_grad()
    g = torch.Generator().manual_seed(seed)
    maps = [out.rgb, out.alpha, out.depth] + ([out.features] if with_features else [])
    loss = sum((m * torch.randn(m.shape, generator=g, dtype=m.dtype)).sum() for m in maps)
    params = [means, quats, scales, opacities, colors] + ([features] if with_features else [])
    grads = (
        torch.autograd.grad(loss, params + [out.meta["means2d"]], allow_unused=True)
        if loss.requires_grad
        else [None] * 7
    )
    return out, grads


def _assert_same(scene, cams, atol=1e-9, rtol=1e-7, **kw):
    ref, g_ref = _render_and_grads(scene, cams, "reference", **kw)
    cpu, g_cpu = _render_and_grads(scene, cams, "cpu", **kw)
    for name in ("rgb", "alpha", "depth", "features"):
        a, b = getattr(ref, name), getattr(cpu, name)
        if a is None:
            assert b is None
            continue
        torch.testing.assert_close(b, a, atol=atol, rtol=rtol, msg=f"{name} differs")
    assert torch.equal(ref.meta["radii"], cpu.meta["radii"])
    names = ["means", "quats", "scales", "opacities", "colors", "features", "means2d"]
    if len(g_ref) == 6:
        names = names[:5] + ["means2d"]
    for name, a, b in zip(names, g_ref, g_cpu):
        if a is None:
            assert b is None or not b.abs().any(), f"d/d{name}"
            continue
        scale = max(1.0, a.abs().max().item())
        torch.testing.assert_close(b, a, atol=atol * 100 * scale, rtol=rtol * 100, msg=f"gradient d/d{name} differs")
    return ref, cpu


def test_random_scene_matches_reference_with_sh_features_and_background():
    scene = random_scene(250, feature_dim=5, seed=0, dtype=F64)
    cams = orbit_cameras(2, 48, 40)
    ref, _ = _assert_same(scene, cams, backgrounds=torch.tensor([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], dtype=F64))
    assert ref.alpha.max() > 0.9 and ref.alpha.min() < 0.5  # a real, partly covered image


def test_rgb_only_and_float32():
    scene = random_scene(200, seed=3, dtype=torch.float32)
    cams = orbit_cameras(1, 40, 32)
    ref, cpu = _assert_same(scene, cams, atol=2e-5, rtol=1e-4, sh_degree=None, with_features=False)
    assert cpu.features is None


def test_float32_lane_kernel_dense_scene_with_features():
    # float32 runs the 8-pixel lane blocks with the polynomial exp; 16 features + RGB + depth take
    # the compile-time 20-channel path; 53x37 leaves partial lane blocks and partial tiles
    scene = random_scene(600, feature_dim=16, seed=7, dtype=torch.float32)
    cams = orbit_cameras(2, 53, 37)
    ref, cpu = _assert_same(scene, cams, atol=3e-5, rtol=2e-4, sh_degree=None)
    # some pixels end within a factor 2 of the 1e-4 stop: the stop rule is part of the check
    assert (1.0 - ref.alpha).min() < 2e-4


@pytest.mark.parametrize("degree", [0, 1, 2])
def test_low_sh_degrees(degree):
    scene = random_scene(60, seed=degree, dtype=F64)
    _assert_same(scene, orbit_cameras(1, 32, 24), sh_degree=degree, with_features=False)


@pytest.mark.parametrize("dim", [1, 3, 16, 33, 64, 256])
def test_feature_dimensions(dim):
    scene = random_scene(40, feature_dim=dim, seed=dim, dtype=F64)
    ref, cpu = _assert_same(scene, orbit_cameras(1, 24, 20), sh_degree=None)
    assert cpu.features.shape == (1, 20, 24, dim)


def test_edge_cases_behind_near_offscreen_degenerate_huge_zero_opacity():
    base = random_scene(12, feature_dim=3, seed=7, dtype=F64)
    means = base.means.clone()
    scales = base.scales.clone()
    opac = base.opacities.clone()
    means[0] = torch.tensor([0.0, 0.0, -5.0], dtype=F64)  # behind the camera (camera at z = -3)
    means[1] = torch.tensor([0.1, 0.0, -2.98], dtype=F64)  # centre just in front of the near plane (z = 0.02)
    scales[1] = 0.5  # ... and large, so it straddles the near plane
    means[2] = torch.tensor([0.05, 0.0, -2.999], dtype=F64)  # centre behind the near plane
    means[3] = torch.tensor([50.0, 0.0, 0.0], dtype=F64)  # far off-screen
    means[4] = torch.tensor([4.0, 0.0, 0.0], dtype=F64)  # just off-screen, wide enough to reach in
    scales[4] = 1.5
    scales[5] = torch.tensor([1e-8, 0.05, 0.05], dtype=F64)  # degenerate (flat) Gaussian
    scales[6] = 1e-9  # degenerate in every axis: only the low-pass remains
    scales[7] = 80.0  # huge
    opac[8] = 0.0  # zero opacity
    opac[9] = 1.0  # opacity above the alpha cap
    # raw parameters of the edited activations (opacity 0 / 1: logit -inf / inf, sigmoid gives them back)
    scene = GaussianScene(
        means, torch.log(scales), base.quats, torch.logit(opac), base.sh0, base.shN, base.features, base.feature_info
    )
    cams = orbit_cameras(1, 32, 24, distance=3.0, spread_deg=0.0)
    ref, cpu = _assert_same(scene, cams, sh_degree=None)
    radii = cpu.meta["radii"][0]
    assert (radii[[0, 2, 3, 8]] == 0).all()  # culled: behind, near plane, off-screen, transparent
    assert (radii[[1, 4, 5, 6, 7]] > 0).all(-1).all()
    for t in (cpu.rgb, cpu.alpha, cpu.depth, cpu.features):
        assert torch.isfinite(t).all()


def test_empty_scene_and_fully_culled():
    cams = orbit_cameras(2, 20, 16)
    empty = random_scene(0, feature_dim=4, dtype=F64)
    out = render(
        empty.means,
        empty.quats,
        empty.scales,
        empty.opacities,
        flat_colors(empty),
        cams,
        features=empty.features,
        backgrounds=torch.ones(2, 3, dtype=F64),
        backend="cpu",
    )
    assert out.rgb.shape == (2, 16, 20, 3) and torch.equal(out.rgb, torch.ones_like(out.rgb))
    assert not out.alpha.any() and not out.depth.any() and out.features.shape == (2, 16, 20, 4)
    behind = random_scene(10, dtype=F64)
    behind.means[:, 2] = -10.0
    _assert_same(behind, cams, sh_degree=None)


def test_gradcheck_float64_cpu_kernel():
    scene = random_scene(4, feature_dim=2, seed=11, scale_range=(0.3, 0.6), opacity_range=(0.3, 0.8), dtype=F64)
    scene.means.mul_(0.5)
    cams = orbit_cameras(1, 10, 8, fov_deg=60)

    def fn(means, quats, scales, opacities, sh, features):
        out = render(means, quats, scales, opacities, sh, cams, features=features, sh_degree=1, backend="cpu")
        return out.rgb, out.alpha, out.depth, out.features

    inputs = [
        t.clone().requires_grad_(True)
        for t in (scene.means, scene.quats, scene.scales, scene.opacities, scene.colors[:, :4], scene.features)
    ]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


def test_sh_kernel_matches_torch():
    from gsseg.render.cpu import sh_colors_cpu
    from gsseg.render.sh import view_colors

    g = torch.Generator().manual_seed(0)
    coeffs = torch.randn(50, 16, 3, generator=g, dtype=F64, requires_grad=True)
    means = torch.randn(50, 3, generator=g, dtype=F64, requires_grad=True)
    campos = torch.randn(3, 3, generator=g, dtype=F64)
    for degree in range(4):
        a = view_colors(coeffs, degree, means, campos)
        b = sh_colors_cpu(coeffs, degree, means, campos)
        torch.testing.assert_close(b, a)
        w = torch.randn(a.shape, generator=g, dtype=F64)
        ga = torch.autograd.grad((a * w).sum(), [coeffs, means], allow_unused=True)
        gb = torch.autograd.grad((b * w).sum(), [coeffs, means], allow_unused=True)
        for x, y, ref in zip(ga, gb, [coeffs, means]):
            torch.testing.assert_close(y, x if x is not None else torch.zeros_like(ref))


def test_means2d_grad_drives_default_strategy():
    from gsplat.strategy import DefaultStrategy

    scene = random_scene(120, seed=5)
    cams = orbit_cameras(2, 32, 24)
    params = scene.to_param_dict()
    optimizers = {k: torch.optim.Adam([{"params": [v], "name": k, "lr": 1e-3}]) for k, v in params.items()}
    strategy = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=1e-9, verbose=False)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=1.0)
    out = render(
        params["means"],
        params["quats"],
        torch.exp(params["scales"]),
        torch.sigmoid(params["opacities"]),
        torch.cat([params["sh0"], params["shN"]], 1),
        cams,
        sh_degree=3,
        backend="cpu",
    )
    strategy.step_pre_backward(params, optimizers, state, step=1, info=out.meta)
    (out.rgb.mean() + out.alpha.mean()).backward()
    assert out.meta["means2d"].grad is not None and out.meta["means2d"].grad.abs().sum() > 0
    n_before = len(params["means"])
    strategy.step_post_backward(params, optimizers, state, step=1, info=out.meta, packed=False)
    assert len(params["means"]) > n_before  # every seen Gaussian had a gradient: some were grown
    assert state["count"] is not None and len(state["count"]) == len(params["means"])


def test_malloc_tuning_applies_on_glibc_and_rejects_bad_values():
    import platform

    from gsseg.render.extensions import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES

    ext = load_cpu_extension()
    glibc = platform.libc_ver()[0] == "glibc"
    assert ext.tune_malloc(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES) is glibc
    assert ext.tune_malloc(-1, TRIM_THRESHOLD_BYTES) is False
    assert ext.tune_malloc(MMAP_THRESHOLD_BYTES, 1 << 40) is False
