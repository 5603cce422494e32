"""render() dispatch: backend choice, fallback without the C++ extension, meta contents."""

from __future__ import annotations

import warnings

import pytest
import torch

from gsseg.render import extensions, render
from gsseg.render.api import resolve_backend
from gsseg.render.testing import flat_colors, orbit_cameras, random_scene


def test_auto_picks_cpu_kernel_when_built_and_reference_when_disabled(monkeypatch):
    expected = "cpu" if extensions.load_cpu_extension() is not None else "reference"
    assert resolve_backend("auto", torch.device("cpu")) == expected
    monkeypatch.setenv("GSSEG_NO_CPU_EXT", "1")
    assert resolve_backend("auto", torch.device("cpu")) == "reference"
    assert resolve_backend("cpu", torch.device("cpu")) == "reference"  # falls back, never crashes
    scene = random_scene(30, seed=1)
    out = render(scene.means, scene.quats, scene.scales, scene.opacities, flat_colors(scene), orbit_cameras(1, 16, 12))
    assert out.meta["backend"] == "reference" and out.rgb.shape == (1, 12, 16, 3)


def test_cuda_backend_needs_cuda_tensors():
    with pytest.raises(ValueError, match="CUDA tensors"):
        resolve_backend("cuda", torch.device("cpu"))


def test_failed_build_warns_once_and_returns_none(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/compiler-for-gsseg-test")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert extensions._build.__wrapped__(False) is None
    assert any("falling back to the (slow) PyTorch reference" in str(w.message) for w in caught)


def test_meta_has_default_strategy_keys():
    scene = random_scene(50, seed=2)
    scene.means.requires_grad_(True)
    cams = orbit_cameras(2, 20, 16)
    out = render(
        scene.means,
        scene.quats,
        scene.scales,
        scene.opacities,
        scene.colors,
        cams,
        sh_degree=2,
        features=scene.features,
    )
    meta = out.meta
    assert meta["means2d"].shape == (2, 50, 2) and meta["means2d"].requires_grad
    assert meta["radii"].shape == (2, 50, 2) and meta["radii"].dtype == torch.int32
    assert meta["depths"].shape == (2, 50) and meta["gaussian_ids"] is None
    assert (meta["width"], meta["height"], meta["n_cameras"]) == (20, 16, 2)
    assert out.features.shape == (2, 16, 20, scene.features.shape[1])
    assert out.depth.shape == out.alpha.shape == (2, 16, 20, 1)
