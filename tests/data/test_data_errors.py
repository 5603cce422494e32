"""Every bad dataset gives one GssegError line naming the file; ``gsseg info BAD`` exits 1 without a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gsseg.cli.app import main
from gsseg.data import load_dataset
from gsseg.errors import GssegError
from tests.helpers.data_fixtures import make_transforms_dataset, orbit_cameras, write_png


def _good(tmp_path: Path) -> Path:
    return make_transforms_dataset(tmp_path / "ds", orbit_cameras(3), orbit_cameras(1, prefix="test", seed=4))


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _not_a_dataset(tmp):
    (tmp / "ds").mkdir()
    (tmp / "ds" / "images").mkdir()
    return tmp / "ds", r"ds: not a dataset"


def _missing_folder(tmp):
    return tmp / "nowhere", r"nowhere: dataset folder not found"


def _all_train_images_missing(tmp):
    root = _good(tmp)
    for i in range(3):
        (root / "images" / f"view_{i:03d}.png").unlink()
    return root, r"transforms_train\.json: no training frames with an image file \(3 listed frames have none\)"


def _malformed_json(tmp):
    root = _good(tmp)
    (root / "transforms_train.json").write_text('{\n  "frames": [\n    {"file_path": "a.png",,}\n  ]\n}\n')
    return root, r"transforms_train\.json: malformed JSON at line 3 column"


def _missing_frames(tmp):
    root = _good(tmp)
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7}))
    return root, r"transforms_train\.json: missing key 'frames'"


def _missing_matrix(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_train.json", lambda d: d["frames"][2].pop("transform_matrix"))
    return root, r"transforms_train\.json: frame 2: missing key 'transform_matrix'"


def _missing_focal(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_test.json", lambda d: d["frames"][0].pop("fl_x"))
    return root, r"transforms_test\.json: frame 0: missing key 'fl_x' or 'camera_angle_x'"


def _bad_matrix(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_train.json", lambda d: d["frames"][0].update(transform_matrix=[[1, 0], [0, 1]]))
    return root, r"transforms_train\.json: frame 0: 'transform_matrix' must be a finite 4x4 matrix"


def _scaled_matrix(tmp):
    root = _good(tmp)
    _edit_json(
        root / "transforms_train.json",
        lambda d: d["frames"][1].update(transform_matrix=(2 * np.asarray(d["frames"][1]["transform_matrix"])).tolist()),
    )
    return root, r"transforms_train\.json: frame 1: the rotation part of 'transform_matrix' is not orthonormal"


def _size_mismatch(tmp):
    root = _good(tmp)
    write_png(root / "images" / "view_000.png", 20, 15)
    return (
        root,
        r"images/view_000\.png: image is 20x15 but transforms_train\.json says 40x30; the image looks downscaled by 2",
    )


def _empty_train(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_train.json", lambda d: d.update(frames=[]))
    return root, r"transforms_train\.json: no training frames \(empty train split\)"


def _empty_test(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_test.json", lambda d: d.update(frames=[]))
    return root, r"transforms_test\.json: has no frames \(empty test split\)"


def _unreadable_image(tmp):
    root = _good(tmp)
    (root / "images" / "view_002.png").write_bytes(b"this is not a png")
    return root, r"images/view_002\.png: cannot read image"


def _ambiguous_k4(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_train.json", lambda d: d["frames"][1].update(k1=0.05, k4=0.01))
    return root, r"transforms_train\.json: frame 1: k4/k5/k6 on a non-fisheye camera are ambiguous.*FULL_OPENCV"


def _unsupported_camera_model(tmp):
    root = _good(tmp)
    _edit_json(root / "transforms_train.json", lambda d: d.update(camera_model="EQUIRECTANGULAR"))
    return root, r"transforms_train\.json: camera_model 'EQUIRECTANGULAR' is not supported"


CASES = [
    _not_a_dataset,
    _missing_folder,
    _all_train_images_missing,
    _malformed_json,
    _missing_frames,
    _missing_matrix,
    _missing_focal,
    _bad_matrix,
    _scaled_matrix,
    _size_mismatch,
    _empty_train,
    _empty_test,
    _unreadable_image,
    _ambiguous_k4,
    _unsupported_camera_model,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_dataset_raises_one_line_naming_file(tmp_path, case):
    root, pattern = case(tmp_path)
    with pytest.raises(GssegError, match=pattern) as err:
        load_dataset(root)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_cli_info_bad_dataset_exits_1(tmp_path, case, capsys):
    root, pattern = case(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["info", str(root)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err + captured.out
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_subprocess_no_traceback(tmp_path):
    root, _ = _malformed_json(tmp_path)
    env = {**os.environ, "COLUMNS": "60"}
    proc = subprocess.run(
        [sys.executable, "-m", "gsseg", "info", str(root)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "transforms_train.json: malformed JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_lazy_file_errors_name_the_file(tmp_path):
    root = _good(tmp_path)
    (root / "depth").mkdir()
    np.save(root / "depth" / "view_000.npy", np.zeros((7, 7), dtype=np.float32))
    (root / "gt" / "part").mkdir(parents=True)
    write_png(root / "gt" / "part" / "view_000.png", 40, 30)  # RGB, not a label map
    (root / "pairs.json").write_text(json.dumps([{"view": "view_000", "partner": "nope"}]))
    ds = load_dataset(root)
    with pytest.raises(GssegError, match=r"depth/view_000\.npy: depth map is 7x7 but its view's image is 40x30"):
        ds.depth("view_000")
    with pytest.raises(GssegError, match=r"gt/part/view_000\.png: label image must be single-channel"):
        ds.gt("view_000", "part")
    with pytest.raises(GssegError, match=r"pairs\.json: entry 0: partner 'nope' is not a view"):
        _ = ds.pairs
    with pytest.raises(GssegError, match=r"no view named 'missing'"):
        ds.image("missing")
    with pytest.raises(GssegError, match=r"no ground-truth level 'group'"):
        ds.gt("view_000", "group")
    (root / "hierarchy.json").write_text("[1, 2")
    with pytest.raises(GssegError, match=r"hierarchy\.json: malformed JSON at line 1 column 6"):
        _ = load_dataset(root).hierarchy


def test_prescaled_copy_of_wrong_size(tmp_path):
    root = _good(tmp_path)
    write_png(root / "images_2" / "view_000.png", 19, 15)
    ds = load_dataset(root, downscale=2)
    with pytest.raises(
        GssegError,
        match=r"images_2/view_000\.png: image is 19x15 but transforms_train\.json with downscale 2 says 20x15",
    ):
        ds.image("view_000")


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_bad_downscale(tmp_path, bad):
    with pytest.raises(GssegError, match="downscale must be a positive number"):
        load_dataset(_good(tmp_path), downscale=bad)


def test_duplicate_frame(tmp_path):
    root = _good(tmp_path)
    _edit_json(root / "transforms_test.json", lambda d: d["frames"][0].update(file_path="images/view_001.png"))
    with pytest.raises(GssegError, match=r"transforms_test\.json: image 'images/view_001\.png' is listed twice"):
        load_dataset(root)
