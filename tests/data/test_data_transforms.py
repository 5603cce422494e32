"""transforms*.json loader and the per-view data a dataset serves (images, depth, gt, points, pairs)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gsseg.data import Cameras, load_dataset
from gsseg.data.points import read_points_ply, write_points_ply
from gsseg.data.transforms_json import write_transforms
from gsseg.errors import GssegError
from tests.helpers.data_fixtures import (
    assert_same_cameras,
    gl_frame,
    make_transforms_dataset,
    orbit_cameras,
    write_label_png,
    write_png,
)


def test_split_files_load_cameras_and_images(tmp_path):
    train, test = orbit_cameras(5), orbit_cameras(2, prefix="test", seed=1)
    make_transforms_dataset(tmp_path, train, test)
    ds = load_dataset(tmp_path)
    assert ds.format == "transforms"
    assert ds.names("train") == train.names and ds.names("test") == test.names
    assert ds.names("all") == train.names + test.names
    assert_same_cameras(ds.train, train)
    assert_same_cameras(ds.test, test)
    img = ds.image("view_002")
    expected = np.asarray(write_png(tmp_path / "check.png", 40, 30, seed=2), dtype=np.float32) / 255
    assert img.dtype == torch.float32 and img.shape == (30, 40, 3)
    np.testing.assert_allclose(img.numpy(), expected, atol=1e-6)
    assert ds.depth("view_002") is None and ds.gt_levels == [] and ds.points is None
    assert ds.pairs == [] and ds.hierarchy is None
    assert ds.masks_dir == tmp_path / "masks"
    centers = train.centers
    assert ds.scene_scale == pytest.approx(float((centers - centers.mean(0)).norm(dim=-1).max()), rel=1e-5)


def test_blender_style_angles_and_paths(tmp_path):
    """camera_angle_x, no w/h (read from image), './' paths without extension, same stems in two folders."""
    cams = orbit_cameras(2, width=40, height=30)
    angle = 0.9
    for split in ("train", "test"):
        frames = []
        for i in range(2):
            write_png(tmp_path / split / f"r_{i}.png", 40, 30, seed=i)
            frames.append(
                {"file_path": f"./{split}/r_{i}", "transform_matrix": gl_frame(cams, i, "")["transform_matrix"]}
            )
        (tmp_path / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    ds = load_dataset(tmp_path)
    assert ds.names("train") == ["train_r_0", "train_r_1"] and ds.names("test") == ["test_r_0", "test_r_1"]
    f = 0.5 * 40 / math.tan(0.5 * angle)
    np.testing.assert_allclose(ds.train.Ks[0].numpy(), [[f, 0, 20], [0, f, 15], [0, 0, 1]], rtol=1e-6)
    np.testing.assert_allclose(ds.test.viewmats.numpy(), cams.viewmats.numpy(), atol=1e-5)
    assert ds.image("test_r_1").shape == (30, 40, 3)


def test_camera_angle_y_and_per_frame_override(tmp_path):
    cams = orbit_cameras(2, width=40, height=30)
    write_png(tmp_path / "images" / "a.png", 40, 30)
    write_png(tmp_path / "images" / "b.png", 40, 30)
    frames = [
        {"file_path": "images/a.png", "transform_matrix": gl_frame(cams, 0, "")["transform_matrix"]},
        {
            "file_path": "images/b.png",
            "transform_matrix": gl_frame(cams, 1, "")["transform_matrix"],
            "fl_x": 33.0,
            "cx": 21.0,
        },
    ]
    top = {"w": 40, "h": 30, "camera_angle_x": 1.0, "camera_angle_y": 0.8, "frames": frames}
    (tmp_path / "transforms_train.json").write_text(json.dumps(top))
    ds = load_dataset(tmp_path)
    fx, fy = 20 / math.tan(0.5), 15 / math.tan(0.4)
    np.testing.assert_allclose(ds.train.Ks[0].numpy(), [[fx, 0, 20], [0, fy, 15], [0, 0, 1]], rtol=1e-6)
    np.testing.assert_allclose(ds.train.Ks[1].numpy(), [[33, 0, 21], [0, fy, 15], [0, 0, 1]], rtol=1e-6)


def _single_file(tmp_path, n: int, **top) -> Cameras:
    cams = orbit_cameras(n)
    frames = []
    for i, name in enumerate(cams.names):
        write_png(tmp_path / "images" / f"{name}.jpg", 40, 30, seed=i)
        frames.append(gl_frame(cams, i, f"images/{name}.jpg"))
    (tmp_path / "transforms.json").write_text(json.dumps({**top, "frames": frames[::-1]}))
    return cams


def test_single_file_every_eighth_is_test(tmp_path):
    cams = _single_file(tmp_path, 17)
    ds = load_dataset(tmp_path)
    assert ds.names("test") == ["view_016", "view_008", "view_000"]  # file order kept, rank by sorted path
    assert len(ds.train) == 14
    assert_same_cameras(ds.cameras("all"), cams)
    assert load_dataset(tmp_path, test_every=0).names("test") == []


def test_single_file_filename_lists(tmp_path):
    _single_file(
        tmp_path,
        4,
        train_filenames=["images/view_000.jpg", "./images/view_002"],
        test_filenames=["images/view_003.jpg"],
    )
    ds = load_dataset(tmp_path / "transforms.json")
    assert sorted(ds.names("train")) == ["view_000", "view_002"]
    assert ds.names("test") == ["view_003"]


def test_write_transforms_round_trip(tmp_path):
    cams = orbit_cameras(3)
    for i, n in enumerate(cams.names):
        write_png(tmp_path / "images" / f"{n}.png", 40, 30, seed=i)
    write_transforms(tmp_path / "transforms_train.json", cams, [f"images/{n}.png" for n in cams.names])
    data = json.loads((tmp_path / "transforms_train.json").read_text())
    assert "fl_x" in data["frames"][0]  # intrinsics differ per camera -> written per frame
    assert_same_cameras(load_dataset(tmp_path).train, cams)


def test_downscale_resizes_everything(tmp_path):
    train = orbit_cameras(3, width=40, height=30)
    make_transforms_dataset(tmp_path, train)
    depth = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "view_001.npy", depth)
    labels = np.zeros((30, 40), dtype=np.int64)
    labels[10:20, 8:30] = 700
    write_label_png(tmp_path / "gt" / "object" / "view_001.png", labels)

    ds = load_dataset(tmp_path, downscale=2)
    assert (ds.train.widths.tolist(), ds.train.heights.tolist()) == ([20] * 3, [15] * 3)
    np.testing.assert_allclose(ds.train.Ks[:, :2, :].numpy(), train.Ks[:, :2, :].numpy() / 2, rtol=1e-6)
    img = ds.image("view_001")
    full = load_dataset(tmp_path).image("view_001")
    assert img.shape == (15, 20, 3)
    np.testing.assert_allclose(img.numpy(), full.reshape(15, 2, 20, 2, 3).mean(dim=(1, 3)).numpy(), atol=1e-5)
    d = ds.depth("view_001")
    assert d.shape == (15, 20)
    np.testing.assert_array_equal(d.numpy(), depth[1::2, 1::2])
    gt = ds.gt("view_001", "object")
    assert gt.dtype == np.int64 and gt.shape == (15, 20)
    np.testing.assert_array_equal(gt, labels[1::2, 1::2])
    assert ds.gt("view_000", "object") is None


def test_downscale_prefers_prescaled_folder(tmp_path):
    train = orbit_cameras(2, width=40, height=30)
    make_transforms_dataset(tmp_path, train)
    small = write_png(tmp_path / "images_2" / "view_000.png", 20, 15, seed=9)
    ds = load_dataset(tmp_path, downscale=2)
    assert ds.image_path("view_000") == tmp_path / "images_2" / "view_000.png"
    np.testing.assert_allclose(ds.image("view_000").numpy(), small / 255.0, atol=1e-6)
    assert ds.image_path("view_001") == tmp_path / "images" / "view_001.png"
    assert ds.image("view_001").shape == (15, 20, 3)


def test_fractional_downscale(tmp_path):
    make_transforms_dataset(tmp_path, orbit_cameras(2, width=40, height=30))
    ds = load_dataset(tmp_path, downscale=2.5)
    assert ds.image("view_000").shape == (12, 16, 3)
    assert (int(ds.train.widths[0]), int(ds.train.heights[0])) == (16, 12)


def test_rgba_composited_on_white_and_grayscale(tmp_path):
    make_transforms_dataset(tmp_path, orbit_cameras(2, width=40, height=30))
    rgba = write_png(tmp_path / "images" / "view_000.png", 40, 30, mode="RGBA").astype(np.float32) / 255
    gray = write_png(tmp_path / "images" / "view_001.png", 40, 30, mode="L").astype(np.float32) / 255
    ds = load_dataset(tmp_path)
    expected = rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]
    np.testing.assert_allclose(ds.image("view_000").numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(ds.image("view_001").numpy(), np.repeat(gray[..., None], 3, -1), atol=1e-6)


def test_points_pairs_hierarchy_and_levels(tmp_path):
    train, test = orbit_cameras(2), orbit_cameras(2, prefix="test", seed=2)
    make_transforms_dataset(tmp_path, train, test)
    xyz = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    rgb = np.random.default_rng(1).uniform(size=(50, 3)).astype(np.float32)
    write_points_ply(tmp_path / "points3d.ply", xyz, rgb)
    (tmp_path / "pairs.json").write_text(json.dumps([{"view": "test_000", "partner": "test_001"}]))
    (tmp_path / "hierarchy.json").write_text(json.dumps({"levels": ["part", "object", "group"], "parts": {}}))
    for level in ("group", "part", "object", "extra"):
        write_label_png(tmp_path / "gt" / level / "view_000.png", np.ones((30, 40)))
    ds = load_dataset(tmp_path)
    p_xyz, p_rgb = ds.points
    np.testing.assert_allclose(p_xyz, xyz)
    np.testing.assert_allclose(p_rgb, np.round(rgb * 255) / 255, atol=1e-6)
    assert ds.pairs == [("test_000", "test_001")]
    assert ds.hierarchy["levels"] == ["part", "object", "group"]
    assert ds.gt_levels == ["part", "object", "group", "extra"]
    info = ds.describe()
    assert info["points"] == 50 and info["pairs"] == 1 and info["gt_levels"]["part"] == 1


def test_pairs_json_in_both_forms(tmp_path):
    """pairs.json as [{"view", "partner"}] objects or as [["view", "partner"]] lists; anything else names the entry."""
    train, test = orbit_cameras(2), orbit_cameras(2, prefix="test", seed=2)
    make_transforms_dataset(tmp_path, train, test)
    for form in (
        [{"view": "test_000", "partner": "test_001"}, {"view": "test_001", "partner": "test_000"}],
        [["test_000", "test_001"], ["test_001", "test_000"]],
    ):
        (tmp_path / "pairs.json").write_text(json.dumps(form))
        assert load_dataset(tmp_path).pairs == [("test_000", "test_001"), ("test_001", "test_000")]
    for bad, message in [
        ([["test_000"]], r"entry 0 is \[\"test_000\"\]; expected two view names"),
        ([["test_000", "test_001"], [1, 2]], r"entry 1 is \[1, 2\]"),
        ([["test_000", "nope"]], r"entry 0: partner 'nope' is not a view"),
        ({"test_000": "test_001"}, r"must be a list of"),
    ]:
        (tmp_path / "pairs.json").write_text(json.dumps(bad))
        with pytest.raises(GssegError, match=message):
            _ = load_dataset(tmp_path).pairs


def test_points_ply_round_trip_and_no_colour(tmp_path):
    xyz = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.float32)
    write_points_ply(tmp_path / "p.ply", xyz, np.array([[1, 0, 0], [0, 0.5, 1]]))
    got_xyz, got_rgb = read_points_ply(tmp_path / "p.ply")
    np.testing.assert_array_equal(got_xyz, xyz)
    np.testing.assert_allclose(got_rgb, [[1, 0, 0], [0, 128 / 255, 1]], atol=1e-6)
    write_points_ply(tmp_path / "q.ply", xyz)
    np.testing.assert_allclose(read_points_ply(tmp_path / "q.ply")[1], 128 / 255, atol=1e-6)


def test_nerfstudio_depth_file_path(tmp_path):
    cams = orbit_cameras(2)
    frames = []
    for i, name in enumerate(cams.names):
        write_png(tmp_path / "images" / f"{name}.png", 40, 30, seed=i)
        frames.append(gl_frame(cams, i, f"images/{name}.png"))
    mm = np.full((30, 40), 1500, dtype=np.uint16)
    mm[0, 0] = 0
    write_label_png(tmp_path / "ns_depth" / "a.png", mm)
    frames[0]["depth_file_path"] = "ns_depth/a.png"
    np.save(tmp_path / "ns_depth" / "b.npy", np.full((30, 40), 2.5, dtype=np.float32))
    frames[1]["depth_file_path"] = "ns_depth/b.npy"
    (tmp_path / "transforms.json").write_text(json.dumps({"frames": frames}))
    ds = load_dataset(tmp_path, test_every=0)
    a = ds.depth("view_000")
    assert a[0, 0] == 0 and torch.allclose(a[1:, 1:], torch.tensor(1.5))
    assert torch.allclose(ds.depth("view_001"), torch.tensor(2.5))
    assert ds.describe()["depth_views"] == 2
    data = json.loads((tmp_path / "transforms.json").read_text())
    data["depth_unit_scale_factor"] = 0.01
    (tmp_path / "transforms.json").write_text(json.dumps(data))
    assert torch.allclose(load_dataset(tmp_path, test_every=0).depth("view_000")[5, 5], torch.tensor(15.0))
