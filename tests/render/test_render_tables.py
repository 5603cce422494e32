"""Contribution tables: C++ == reference, table feature render == full render, gradients, LRU cache."""

from __future__ import annotations

import pytest
import torch

from gsseg.render import TableCache, build_contribution_table, render, render_features_from_table
from gsseg.render.extensions import load_cpu_extension
from gsseg.render.testing import flat_colors, orbit_cameras, random_scene

HAVE_CPU = load_cpu_extension() is not None
BACKENDS = ["reference", pytest.param("cpu", marks=pytest.mark.skipif(not HAVE_CPU, reason="no C++ extension"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_table_render_equals_full_render(backend):
    scene = random_scene(300, feature_dim=7, seed=1)
    cam = orbit_cameras(3, 48, 36)[1]
    table = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam, backend=backend)
    assert table.offsets.shape == (48 * 36 + 1,) and table.nnz == int(table.offsets[-1]) > 0
    assert table.gaussian_ids.dtype == torch.int32 and table.weights.dtype == torch.float32
    full = render(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        flat_colors(scene),
        cam,
        features=scene.features,
        backend=backend,
    )
    pixels = torch.randperm(48 * 36, generator=torch.Generator().manual_seed(0))[:500]
    feats = render_features_from_table(table, pixels, scene.features)
    expected = full.features[0].reshape(-1, 7)[pixels]
    torch.testing.assert_close(feats, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(table.alpha(), full.alpha[0, ..., 0], atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not HAVE_CPU, reason="no C++ extension")
def test_cpu_table_equals_reference_table_and_is_front_to_back():
    scene = random_scene(200, seed=2, dtype=torch.float64)
    cam = orbit_cameras(1, 40, 30)
    a = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam, backend="reference")
    b = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam, backend="cpu")
    assert torch.equal(a.offsets, b.offsets) and torch.equal(a.gaussian_ids, b.gaussian_ids)
    torch.testing.assert_close(a.weights, b.weights)
    # within each pixel, camera depth never decreases
    z = (scene.means @ cam.viewmats[0, :3, :3].double().T + cam.viewmats[0, :3, 3].double())[:, 2]
    pix = torch.repeat_interleave(torch.arange(40 * 30), b.offsets[1:] - b.offsets[:-1])
    zs = z[b.gaussian_ids.long()]
    same_pixel = pix[1:] == pix[:-1]
    assert (zs[1:][same_pixel] >= zs[:-1][same_pixel]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_table_gradient_is_scatter_add_of_full_render_gradient(backend):
    scene = random_scene(150, feature_dim=4, seed=3, dtype=torch.float64)
    cam = orbit_cameras(1, 32, 24)
    table = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam, backend=backend)
    pixels = torch.arange(0, 32 * 24, 3)
    w = torch.randn(len(pixels), 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f1 = scene.features.clone().requires_grad_(True)
    (render_features_from_table(table, pixels, f1) * w).sum().backward()
    f2 = scene.features.clone().requires_grad_(True)
    full = render(
        scene.means, scene.quats, scene.scales, scene.opacities, flat_colors(scene), cam, features=f2, backend=backend
    )
    (full.features[0].reshape(-1, 4)[pixels] * w).sum().backward()
    assert f1.grad.abs().sum() > 0
    torch.testing.assert_close(f1.grad, f2.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("feature_dim", [6, 16])  # runtime width, compiled width
def test_cpu_table_op_matches_torch_gather_scatter(feature_dim):
    from gsseg.render.tables import _features_torch

    scene = random_scene(200, feature_dim=feature_dim, seed=5, dtype=torch.float64)
    cam = orbit_cameras(1, 40, 30)
    table = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam)
    pixels = torch.tensor([0, 5, 600, 600, 1199, 37])  # repeats allowed
    f1 = scene.features.clone().requires_grad_(True)
    f2 = scene.features.clone().requires_grad_(True)
    a, b = render_features_from_table(table, pixels, f1), _features_torch(table, pixels, f2)
    torch.testing.assert_close(a, b)
    w = torch.randn(a.shape, dtype=torch.float64)
    (a * w).sum().backward()
    (b * w).sum().backward()
    torch.testing.assert_close(f1.grad, f2.grad)
    with pytest.raises(IndexError):
        render_features_from_table(table, torch.tensor([40 * 30]), f1)


@pytest.mark.skipif(not HAVE_CPU, reason="no C++ extension")
def test_cpu_table_ops_visit_pixels_in_id_order_and_check_the_order():
    ext = load_cpu_extension()
    scene = random_scene(100, feature_dim=3, seed=6)
    table = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, orbit_cameras(1, 20, 10))
    pixels = torch.tensor([150, 3, 199, 3, 0])
    args = (table.offsets, table.gaussian_ids, table.weights, pixels)
    out, order = ext.table_gather(*args, scene.features)
    assert order.tolist() == [4, 1, 3, 0, 2]  # stable sort by pixel id: the scatter reuses it
    v_out = torch.randn_like(out)
    expected = ext.table_scatter(*args, order, v_out, 100)
    assert expected.abs().sum() > 0  # the visiting order changes only the order of the sums
    torch.testing.assert_close(ext.table_scatter(*args, torch.arange(5), v_out, 100), expected)
    for bad in (torch.tensor([0, 1, 2, 3, 5]), torch.tensor([-1, 1, 2, 3, 4])):
        with pytest.raises(IndexError):
            ext.table_scatter(*args, bad, v_out, 100)
    with pytest.raises(RuntimeError, match="order"):
        ext.table_scatter(*args, order[:4], v_out, 100)


def test_empty_pixels_and_empty_scene():
    scene = random_scene(0)
    cam = orbit_cameras(1, 16, 16)
    table = build_contribution_table(scene.means, scene.quats, scene.scales, scene.opacities, cam)
    assert table.nnz == 0 and table.offsets.shape == (257,)
    feats = render_features_from_table(table, torch.tensor([0, 5, 255]), torch.zeros(0, 3))
    assert feats.shape == (3, 3) and not feats.any()


def test_table_cache_is_lazy_bounded_lru_and_supports_reduced_resolution():
    scene = random_scene(100, seed=4)
    cams = orbit_cameras(4, 32, 24)
    cache = TableCache(scene.means, scene.quats, scene.scales, scene.opacities, cams, max_tables=2, scale=0.5)
    assert len(cache) == 0
    t0 = cache.get("view_000")
    assert (t0.width, t0.height) == (16, 12) and t0.offsets.shape == (16 * 12 + 1,)
    assert cache.get(0) is t0  # by index, same cached object
    cache.get("view_001")
    cache.get("view_000")  # refresh view_000
    cache.get("view_002")  # evicts view_001 (least recently used)
    assert len(cache) == 2
    assert cache.get("view_000") is t0
    low = render(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        flat_colors(scene),
        cams.scaled(0.5)[0],
        features=scene.features,
    )
    pixels = torch.arange(16 * 12)
    torch.testing.assert_close(
        render_features_from_table(t0, pixels, scene.features),
        low.features[0].reshape(-1, scene.features.shape[1]),
        atol=1e-5,
        rtol=1e-5,
    )
    with pytest.raises(ValueError):
        cache.get("missing_view")


def test_table_cache_byte_budget_evicts_least_recently_used():
    scene = random_scene(150, seed=5)
    cams = orbit_cameras(5, 32, 24)
    sizes = {}
    probe = TableCache(scene.means, scene.quats, scene.scales, scene.opacities, cams, max_tables=5)
    for name in cams.names:
        sizes[name] = probe.get(name).nbytes
    assert probe.nbytes == sum(sizes.values()) and probe.builds == 5
    names = list(cams.names)
    budget = sizes[names[0]] + sizes[names[1]] + 1
    cache = TableCache(scene.means, scene.quats, scene.scales, scene.opacities, cams, max_tables=5, max_bytes=budget)
    cache.get(names[0])
    cache.get(names[1])
    assert len(cache) == 2 and cache.nbytes == budget - 1
    cache.get(names[0])  # refresh names[0]; names[1] is now the least recently used
    cache.get(names[2])
    assert cache.nbytes <= budget or len(cache) == 1
    assert names[1] not in cache and names[2] in cache
    tiny = TableCache(scene.means, scene.quats, scene.scales, scene.opacities, cams, max_tables=5, max_bytes=1)
    assert tiny.get(names[3]) is tiny.get(names[3]) and len(tiny) == 1  # the table in use is always kept
    tiny.get(names[4])
    assert len(tiny) == 1 and tiny.builds == 2
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_memory_sizes_and_budgets():
    from gsseg.errors import GssegError
    from gsseg.utils.memory import auto_budget_bytes, available_bytes, budget_bytes, parse_size

    assert parse_size("512M") == 512 * 2**20 and parse_size("8G") == 8 * 2**30 and parse_size("1.5GiB") == 3 * 2**29
    assert parse_size("300") == 300 * 2**20 and parse_size("64kb") == 64 * 2**10
    for bad in ("", "-3G", "lots", "0"):
        with pytest.raises(GssegError, match="--memory-budget"):
            parse_size(bad)
    assert 0 < auto_budget_bytes() <= available_bytes()
    assert budget_bytes(0) == pytest.approx(auto_budget_bytes(), rel=0.2) and budget_bytes(2.0) == 2 * 2**20


def test_fitting_table_scale_and_auto_scale_keep_tables_within_budget():
    from gsseg.render.tables import SCALE_STEP, auto_table_scale, fitting_table_scale

    assert fitting_table_scale(100.0, 10, 1000) == 1.0
    assert fitting_table_scale(100.0, 10, 250) == 0.5  # a quarter of the bytes: half the side
    s = fitting_table_scale(100.0, 10, 300)
    assert s % SCALE_STEP == 0 and 10 * 100 * s**2 <= 300 < 10 * 100 * (s + SCALE_STEP) ** 2
    assert fitting_table_scale(1e12, 100, 1) == SCALE_STEP  # never zero

    scene = random_scene(400, seed=3)
    cams = orbit_cameras(4, width=96, height=72)
    geo = (scene.means, scene.quats, scene.scales, scene.opacities)
    full = sum(build_contribution_table(*geo, cams[i]).nbytes for i in range(4))
    assert auto_table_scale(*geo, cams, max_bytes=2 * full) == 1.0
    scale = auto_table_scale(*geo, cams, max_bytes=full // 3)
    assert 0 < scale < 1
    cache = TableCache(*geo, cams, max_tables=4, scale=scale)
    for i in range(4):
        cache.get(i)
    assert cache.nbytes <= full // 3 and len(cache) == 4
