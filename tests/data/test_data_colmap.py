"""COLMAP loader: pycolmap round trips, hand-written legacy text models, splits and points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gsseg.data import load_dataset
from gsseg.errors import GssegError
from tests.helpers.data_fixtures import (
    assert_same_cameras,
    make_colmap_dataset,
    make_transforms_dataset,
    orbit_cameras,
    write_png,
)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_colmap_round_trip_restores_cameras(tmp_path, text):
    cams = orbit_cameras(9, width=40, height=30)
    rng = np.random.default_rng(3)
    xyz = rng.normal(size=(25, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(25, 3)).astype(np.float32) / 255
    make_colmap_dataset(tmp_path, cams, text=text, points=(xyz, rgb))
    suffix = ".txt" if text else ".bin"
    assert (tmp_path / "sparse" / "0" / f"cameras{suffix}").is_file()

    ds = load_dataset(tmp_path, test_every=0)
    assert ds.format == "colmap"
    assert len(ds.test) == 0
    assert_same_cameras(ds.train, cams)
    pts_xyz, pts_rgb = ds.points
    order = np.lexsort(pts_xyz.T)
    np.testing.assert_allclose(pts_xyz[order], xyz[np.lexsort(xyz.T)], atol=1e-6)
    np.testing.assert_allclose(pts_rgb[order], rgb[np.lexsort(xyz.T)], atol=1e-6)


def test_colmap_split_every_nth_sorted_name(tmp_path):
    cams = orbit_cameras(10)
    make_colmap_dataset(tmp_path, cams)
    ds = load_dataset(tmp_path)
    assert ds.names("test") == ["view_000", "view_008"]
    assert len(ds.train) == 8 and "view_000" not in ds.names("train")
    ds3 = load_dataset(tmp_path, test_every=3)
    assert ds3.names("test") == ["view_000", "view_003", "view_006", "view_009"]
    assert ds3.names("all") == ds3.names("train") + ds3.names("test")


def test_colmap_and_transforms_agree(tmp_path):
    cams = orbit_cameras(8, width=48, height=36, seed=5)
    make_colmap_dataset(tmp_path / "colmap", cams)
    make_transforms_dataset(tmp_path / "nerf", cams)
    a = load_dataset(tmp_path / "colmap", test_every=0)
    b = load_dataset(tmp_path / "nerf")
    assert_same_cameras(a.train, b.train)
    for name in cams.names:
        assert a.image(name).shape == b.image(name).shape == (36, 48, 3)
    assert a.scene_scale == pytest.approx(b.scene_scale, rel=1e-5)


def _write_legacy_text_model(root, camera_line: str = "1 SIMPLE_PINHOLE 40 30 50 20 15") -> None:
    """A COLMAP 3.x text model without rigs/frames, written by hand."""
    model = root / "sparse"
    model.mkdir(parents=True)
    (model / "cameras.txt").write_text(f"# cameras\n{camera_line}\n2 PINHOLE 40 30 60 61 19.5 14.5\n")
    q = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))  # 90 degrees about z, wxyz
    (model / "images.txt").write_text(
        f"# images\n1 {q[0]} {q[1]} {q[2]} {q[3]} 1 2 3 1 b.png\n\n2 1 0 0 0 -1 0 0.5 2 a.png\n\n"
    )
    (model / "points3D.txt").write_text("# points\n7 0.5 0.25 -1 255 0 128 0.1\n")
    write_png(root / "images" / "a.png", 40, 30)
    write_png(root / "images" / "b.png", 40, 30, seed=1)


def test_legacy_text_model_convention(tmp_path):
    _write_legacy_text_model(tmp_path)
    ds = load_dataset(tmp_path, test_every=0)
    assert ds.names("train") == ["a", "b"]  # sorted by name, not by image id
    b = ds.train.index_of("b")
    expected = np.array([[0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]], dtype=np.float32)
    np.testing.assert_allclose(ds.train.viewmats[b].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ds.train.Ks[b].numpy(), [[50, 0, 20], [0, 50, 15], [0, 0, 1]])
    a = ds.train.index_of("a")
    np.testing.assert_allclose(ds.train.Ks[a].numpy(), [[60, 0, 19.5], [0, 61, 14.5], [0, 0, 1]])
    np.testing.assert_allclose(ds.train.centers[a].numpy(), [1, 0, -0.5], atol=1e-6)
    xyz, rgb = ds.points
    np.testing.assert_allclose(xyz, [[0.5, 0.25, -1]])
    np.testing.assert_allclose(rgb, [[1, 0, 128 / 255]], atol=1e-6)


def test_colmap_downscale_scales_intrinsics_and_images(tmp_path):
    _write_legacy_text_model(tmp_path)
    ds = load_dataset(tmp_path, downscale=2, test_every=0)
    b = ds.train.index_of("b")
    assert ds.image("b").shape == (15, 20, 3)
    np.testing.assert_allclose(ds.train.Ks[b].numpy(), [[25, 0, 10], [0, 25, 7.5], [0, 0, 1]])


@pytest.mark.parametrize(
    "model", ["OPENCV 40 30 50 50 20 15 0.1 0 0 0", "SIMPLE_RADIAL 40 30 50 20 15 0.01", "FOV 40 30 50 50 20 15 0.3"]
)
def test_colmap_distorted_model_loads_as_pinhole(tmp_path, model):
    _write_legacy_text_model(tmp_path, camera_line=f"1 {model}")
    ds = load_dataset(tmp_path, test_every=0)
    b = ds.train.index_of("b")
    K = ds.train.Ks[b].numpy()
    assert K[0, 1] == 0 and K[2, 2] == 1 and K[0, 0] > 0
    w, h = ds.size("b")
    # the undistorted camera: OpenCV zooms at the same size, COLMAP's undistorter keeps f and crops
    assert not np.allclose(K[0, 0], 50.0, atol=1e-3) or (w, h) != (40, 30)
    assert ds.image("b").shape == (h, w, 3)
    assert ds.describe()["undistorted_views"] == 1


def test_colmap_missing_image_skipped_or_refused_and_wrong_size(tmp_path, capsys):
    _write_legacy_text_model(tmp_path)
    (tmp_path / "images" / "a.png").unlink()
    ds = load_dataset(tmp_path, test_every=0)
    assert ds.names("all") == ["b"] and ds.skipped_frames == 1
    assert (
        "warning: 1 of 2 posed images in the COLMAP model sparse have no image file; skipped" in capsys.readouterr().err
    )
    with pytest.raises(
        GssegError, match=r"a\.png: image file not found \(listed in sparse/images\.txt as .a\.png.\); 1 of 2"
    ):
        load_dataset(tmp_path, strict=True)
    write_png(tmp_path / "images" / "a.png", 41, 30)
    with pytest.raises(GssegError, match=r"a\.png: image is 41x30 but cameras\.txt says camera 2 is 40x30"):
        load_dataset(tmp_path)


def test_colmap_corrupt_model(tmp_path):
    model = tmp_path / "sparse" / "0"
    model.mkdir(parents=True)
    for f in ("cameras.bin", "images.bin", "points3D.bin"):
        (model / f).write_bytes(b"\x01\x00garbage")
    with pytest.raises(
        GssegError, match=r"sparse/0/cameras\.bin: not a valid COLMAP cameras\.bin file: says \d+ cameras"
    ):
        load_dataset(tmp_path)
