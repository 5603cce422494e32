"""Exported objects without floaters: the outlier rule on synthetic objects, and the export
moving an object's floaters into ``scene_without_selected`` (counted in the manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gsseg.cli.app import main
from gsseg.export import export_segments
from gsseg.gaussians.ply import read_ply
from gsseg.gaussians.scene import GaussianScene
from gsseg.segment.outliers import object_inliers


def sphere(n: int, radius: float, centre, rng) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(centre) + v * radius + rng.normal(scale=0.01 * radius, size=(n, 3))


def floaters(n: int, near: float, far: float, rng) -> np.ndarray:
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * rng.uniform(near, far, size=(n, 1))


def scene_of(points: np.ndarray) -> GaussianScene:
    n = len(points)
    return GaussianScene(
        means=torch.tensor(points, dtype=torch.float32),
        log_scales=torch.full((n, 3), -4.0),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        logit_opacities=torch.full((n,), 3.0),
        sh0=torch.zeros(n, 1, 3),
        shN=torch.zeros(n, 0, 3),
    )


def test_floaters_and_far_specks_are_outliers():
    rng = np.random.default_rng(0)
    body = sphere(3000, 0.5, (0, 0, 0), rng)
    loose = floaters(600, 1.0, 25.0, rng)  # 20 % of the object, up to 50 radii out
    speck = np.array([5.0, 0, 0]) + rng.normal(scale=0.02, size=(12, 3))  # a small dense far clump
    keep = object_inliers(np.concatenate([body, loose, speck]))
    assert keep[:3000].all()
    assert not keep[3000:].any()


def test_pieces_of_similar_size_and_thinning_surfaces_are_kept():
    rng = np.random.default_rng(1)
    two = np.concatenate([sphere(1500, 0.3, (0, 0, 0), rng), sphere(1200, 0.3, (3, 0, 0), rng)])
    assert object_inliers(two).all()  # e.g. a pair of shoes: both pieces stay
    # a floor sampled ever more sparsely away from the camera (spacing grows 30x along x)
    x = np.cumsum(np.geomspace(0.01, 0.3, 400))
    floor = np.stack(np.meshgrid(x, np.linspace(0, 4, 40)), -1).reshape(-1, 2)
    floor = np.concatenate([floor, np.zeros((len(floor), 1))], 1)
    assert object_inliers(floor).all()
    assert object_inliers(rng.normal(size=(10, 3)) * 100).all()  # too few to tell: kept


def test_export_moves_floaters_to_the_rest_of_the_scene(tmp_path):
    rng = np.random.default_rng(2)
    obj = sphere(2000, 0.5, (0, 0, 0), rng)
    loose = floaters(80, 3.0, 20.0, rng)
    other = sphere(1500, 0.4, (0, 0, 1.5), rng)
    scene = scene_of(np.concatenate([obj, loose, other]))
    labels = np.concatenate([np.ones(2080, np.int32), np.full(1500, 2, np.int32)])
    labels[:5] = 0  # unassigned Gaussians stay unassigned
    m = export_segments(scene, labels, tmp_path / "clean", cut="c")
    seg = {s["id"]: s for s in m["segments"]}
    assert seg[1]["outliers_removed"] == 80 and seg[2]["outliers_removed"] == 0
    assert seg[1]["gaussians"] == 1995 and m["outliers"]["removed"] == 80
    assert m["unassigned_gaussians"] == 5 and m["labelled_gaussians"] == 1995 + 1500
    # the bounding box is the object's alone, not the floaters'
    np.testing.assert_allclose(seg[1]["bbox"]["max"], obj[5:].max(0), atol=1e-5)
    assert len(read_ply(tmp_path / "clean" / "object_1.ply")) == 1995
    rest = read_ply(tmp_path / "clean" / "scene_without_selected.ply")
    assert len(rest) == 85  # the 80 floaters and the 5 unassigned: no Gaussian is lost
    exported = np.load(tmp_path / "clean" / "labels.npy")
    assert (exported[2000:2080] == 0).all() and (exported[2080:] == 2).all()
    assert any("outlier" in n for n in m["notes"])
    # opting out keeps every object whole
    whole = export_segments(scene, labels, tmp_path / "whole", cut="c", keep_outliers=True)
    assert {s["id"]: s["gaussians"] for s in whole["segments"]} == {1: 2075, 2: 1500}
    assert whole["outliers"]["removed"] == 0 and whole["segments"][0]["outliers_removed"] is None


def test_cli_keep_outliers(tmp_path, capsys):
    from gsseg.segment import SegmentRequest, segment_run
    from tests.helpers.segment_fixtures import build_tiny_run

    run = build_tiny_run(tmp_path / "tiny", "embedding")
    segment_run(run, SegmentRequest(auto=True, views="test", show_progress=False), device="cpu")
    with pytest.raises(SystemExit) as e:
        main(["export", str(run), "--out", str(tmp_path / "e"), "--keep-outliers", "--json", "-q"])
    assert e.value.code == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert m["outliers"]["enabled"] is False and m["outliers"]["removed"] == 0
    with pytest.raises(SystemExit) as e:
        main(["export", str(run), "--out", str(tmp_path / "d"), "--json", "-q"])
    assert e.value.code == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # a back-projected scene without floaters keeps >= 98 % of each object
    assert m["outliers"]["enabled"] is True
    assert all(s["outliers_removed"] <= 0.02 * (s["gaussians"] + s["outliers_removed"]) for s in m["segments"])
