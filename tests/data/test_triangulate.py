"""Sparse points triangulated with the known poses (gsseg/data/triangulate.py): they lie on the
built-in scenes' surfaces, are cached and reused, and a failure falls back to random points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from scipy.spatial import cKDTree

from gsseg.data import load_dataset
from gsseg.data.triangulate import (
    TriangulationError,
    TriangulationSettings,
    cache_path,
    fundamental,
    neighbour_pairs,
    triangulate,
    triangulated_points,
)
from gsseg.gaussians.init import init_from_dataset
from gsseg.synth import make_scene
from tests.helpers.data_fixtures import make_transforms_dataset, orbit_cameras
from tests.helpers.paths import SHARED_REAL


@pytest.fixture(scope="module")
def tabletop(tmp_path_factory):
    """The built-in tabletop at 256x192 (24 training views) without its points3d.ply, triangulated
    once into a private cache: (dataset, xyz, rgb, cache folder, log lines)."""
    root = tmp_path_factory.mktemp("tabletop")
    make_scene(root, "tabletop", width=256, height=192, views=24, test_views=1, show_progress=False)
    (root / "points3d.ply").unlink()
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GSSEG_CACHE", str(cache))
        ds = load_dataset(root)
        lines: list[str] = []
        xyz, rgb = triangulated_points(ds, log=lines.append)
    return ds, xyz, rgb, cache, lines


def surface_points(ds) -> np.ndarray:
    """[M,3] world points of every depth pixel of every view (the scene's visible surfaces)."""
    cams = ds.cameras("all")
    out = []
    for i, name in enumerate(cams.names):
        depth = ds.depth(name).double().numpy()
        ys, xs = np.nonzero(depth > 0)
        z = depth[ys, xs]
        K = cams.Ks[i].double().numpy()
        cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * z, (ys + 0.5 - K[1, 2]) / K[1, 1] * z, z], 1)
        c2w = np.linalg.inv(cams.viewmats[i].double().numpy())
        out.append(cam @ c2w[:3, :3].T + c2w[:3, 3])
    return np.concatenate(out)


@pytest.mark.slow
def test_triangulated_points_lie_on_the_surfaces(tabletop):
    ds, xyz, rgb, _, lines = tabletop
    assert len(xyz) >= 80, lines  # 138 at the time of writing
    assert xyz.shape == rgb.shape and np.isfinite(xyz).all()
    surface = cKDTree(surface_points(ds))
    dist = surface.query(xyz)[0]
    scale = float(ds.scene_scale)
    # measured: median 0.008 (0.2% of the scene scale), 90th percentile 0.03
    assert np.median(dist) < 0.01 * scale
    assert np.percentile(dist, 90) < 0.05 * scale
    # the measure tells surface points from others: points spread over the same box are far off
    rng = np.random.default_rng(0)
    spread = rng.uniform(xyz.min(0), xyz.max(0), size=(1000, 3))
    assert np.median(surface.query(spread)[0]) > 5 * np.median(dist)
    # colours are the photos' colours where the points are seen
    cams = ds.cameras("train")
    errors = []
    for i, name in enumerate(cams.names):
        V, K = cams.viewmats[i].double().numpy(), cams.Ks[i].double().numpy()
        cam = xyz @ V[:3, :3].T + V[:3, 3]
        u = (K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]).astype(int)
        v = (K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]).astype(int)
        depth = ds.depth(name).double().numpy()
        h, w = depth.shape
        ok = (cam[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        ok[ok] &= np.abs(depth[v[ok], u[ok]] - cam[ok, 2]) < 0.02 * scale  # visible in this view
        errors.append(np.abs(ds.image(name).numpy()[v[ok], u[ok]] - rgb[ok]).mean(axis=1))
    assert np.median(np.concatenate(errors)) < 0.1
    assert any("points kept" in line for line in lines), lines


@pytest.mark.slow
def test_cache_is_reused_and_keyed_by_settings(tabletop, monkeypatch):
    ds, xyz, rgb, cache, _ = tabletop
    monkeypatch.setenv("GSSEG_CACHE", str(cache))
    path = cache_path(ds, TriangulationSettings())
    assert path is not None and path.is_file() and cache in path.parents

    def no_matching(*args, **kwargs):
        raise AssertionError("the matcher ran again")

    monkeypatch.setattr(pycolmap, "extract_features", no_matching)
    monkeypatch.setattr(pycolmap, "match_exhaustive", no_matching)
    lines: list[str] = []
    again, again_rgb = triangulated_points(ds, log=lines.append)
    np.testing.assert_allclose(again, xyz, atol=1e-6)
    np.testing.assert_allclose(again_rgb, rgb, atol=1 / 255)
    assert "from the cache" in lines[0]
    # other settings are another key: they do not reuse these points
    assert cache_path(ds, TriangulationSettings(min_track_length=4)) != path


def test_failure_falls_back_to_random_points(tmp_path, monkeypatch):
    """Noise photos 40x30: nothing agrees with the poses; init warns once and starts from random
    points, and the failure is cached (the rerun does not extract features again)."""
    monkeypatch.setenv("GSSEG_CACHE", str(tmp_path / "cache"))
    root = make_transforms_dataset(tmp_path / "noise", orbit_cameras(6))
    ds = load_dataset(root)
    with pytest.raises(TriangulationError, match="fewer than|too few|failed"):
        triangulate(ds, log=lambda line: None)
    lines: list[str] = []
    scene, source = init_from_dataset(ds, random_count=300, triangulate=True, log=lines.append)
    assert source == "random" and len(scene) == 300
    assert [line for line in lines if line.startswith("warning:")][0].endswith("starting from random points instead")

    def no_extraction(*args, **kwargs):
        raise AssertionError("features extracted again")

    monkeypatch.setattr(pycolmap, "extract_features", no_extraction)
    lines.clear()
    _, source = init_from_dataset(ds, random_count=300, triangulate=True, log=lines.append)
    assert source == "random" and "cached in" in lines[-1]
    # init without triangulation never tries
    _, source = init_from_dataset(ds, random_count=300, log=lines.append)
    assert source == "random"


@pytest.mark.slow
def test_rgb_stage_starts_from_triangulated_points(tabletop, tmp_path, monkeypatch):
    from gsseg.config.train import TrainConfig
    from gsseg.run.run_dir import RunDir
    from gsseg.train.pipeline import StageOptions, run_rgb_stage

    ds, xyz, _, cache, _ = tabletop
    monkeypatch.setenv("GSSEG_CACHE", str(cache))
    cfg = TrainConfig(dataset=str(ds.root))
    cfg.rgb.iters = 0
    cfg.rgb.init_shell_points = 0
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    summary = run_rgb_stage(ds, cfg, run, StageOptions(show_progress=False))
    assert summary["init"] == "triangulated" and summary["gaussians"] == len(xyz)
    assert json.loads(Path(run.rgb_summary).read_text())["init"] == "triangulated"


def test_fundamental_matrix_and_neighbour_pairs():
    cams = orbit_cameras(10, width=64, height=48)
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(20, 3)) * 0.3
    V, K = cams.viewmats.double().numpy(), cams.Ks.double().numpy()

    def project(i):
        c = pts @ V[i, :3, :3].T + V[i, :3, 3]
        uv = c @ K[i].T
        return uv / uv[:, 2:]

    F = fundamental(K[0], V[0], K[3], V[3])
    residual = np.einsum("ni,ij,nj->n", project(3), F, project(0))
    assert np.abs(residual).max() < 1e-6 * np.abs(F).max() * 64 * 64
    assert np.abs(np.einsum("ni,ij,nj->n", project(4), F, project(0))).max() > 1e-3 * np.abs(F).max()
    pairs = neighbour_pairs(cams, 2)
    assert all(i < j for i, j in pairs)
    # on a circle each camera's two nearest are its neighbours on the circle
    assert {(i, (i + 1) % 10) if i < (i + 1) % 10 else ((i + 1) % 10, i) for i in range(10)} <= set(pairs)
    assert len(pairs) == 10


REAL = SHARED_REAL


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "fox").is_dir(), reason="../shared/real/fox is absent (a fresh clone)")
def test_fox_triangulates_at_a_small_size(tmp_path, monkeypatch):
    """The instant-ngp fox as published (distorted phone photos, 17 missing): thousands of points,
    in front of the cameras, inside the scene the cameras look at."""
    monkeypatch.setenv("GSSEG_CACHE", str(tmp_path / "cache"))
    ds = load_dataset(REAL / "fox", max_size=240)
    lines: list[str] = []
    xyz, rgb = triangulated_points(ds, log=lines.append)
    assert len(xyz) >= 1000, lines
    cams = ds.cameras("train")
    V = cams.viewmats.double().numpy()
    depth = np.einsum("cij,pj->cpi", V[:, :3, :3], xyz.astype(np.float64)) + V[:, None, :3, 3]
    in_front = (depth[..., 2] > 0).mean(axis=0)
    assert np.median(in_front) > 0.9  # a wall and a fox head all cameras face
    centres = cams.centers.double().numpy()
    radius = np.linalg.norm(centres - centres.mean(0), axis=1).max()
    assert np.percentile(np.linalg.norm(xyz - centres.mean(0), axis=1), 95) < 2 * radius
