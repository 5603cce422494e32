"""Datasets as users have them: missing images, no split, multi-megapixel photos, read-only folders,
and the real instant-ngp fox capture (``../shared/real/fox``, skipped when absent)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import gsseg.data.dataset as dataset_mod
from gsseg.cli.app import main
from gsseg.data import load_dataset
from gsseg.errors import GssegError
from tests.helpers.data_fixtures import gl_frame, orbit_cameras, write_png
from tests.helpers.paths import SHARED_REAL

FOX = SHARED_REAL / "fox"


pytestmark = pytest.mark.usefixtures("private_cache")  # tests/conftest.py


def _single_file_dataset(root: Path, n: int, missing=(), width=40, height=30) -> Path:
    """``transforms.json`` (no split) listing ``n`` frames ``img_XX.jpg`` in shuffled order, some without a file."""
    cams = orbit_cameras(n, width=width, height=height)
    frames = []
    for i in np.random.default_rng(1).permutation(n).tolist():
        name = f"img_{i:02d}"
        if i not in missing:
            write_png(root / "images" / f"{name}.png", width, height, seed=i)
        frames.append(gl_frame(cams, i, f"images/{name}.png"))
    (root / "transforms.json").write_text(json.dumps({"aabb_scale": 4, "frames": frames}))
    return root


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_missing_images_skipped_with_one_warning_or_refused(tmp_path, capsys):
    root = _single_file_dataset(tmp_path / "ds", 10, missing=(2, 5, 7))
    ds = load_dataset(root)
    assert len(ds.names("all")) == 7 and ds.skipped_frames == 3
    assert "img_02" not in ds.names("all")
    load_dataset(root)  # a second load in the same process does not repeat the warning
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: 3 of 10 frames in transforms.json have no image file; skipped (--strict refuses)"]
    with pytest.raises(GssegError, match=r"images/img_0[257]\.png: image file not found .*3 of 10 frames.*--strict"):
        load_dataset(root, strict=True)
    code, _out, err = _cli(["info", str(root), "--strict"], capsys)
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    code, out, _err = _cli(["info", str(root), "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and (info["listed_frames"], info["skipped_frames"]) == (10, 3)
    assert info["ignored_fields"] == ["aabb_scale"]


def test_no_split_holds_out_every_8th_frame_of_those_present(tmp_path, capsys):
    root = _single_file_dataset(tmp_path / "ds", 18, missing=(0, 3))
    ds = load_dataset(root)
    present = sorted(f"img_{i:02d}" for i in range(18) if i not in (0, 3))
    assert ds.names("test") == [present[0], present[8]]  # ranks 0 and 8 of the sorted present frames
    assert len(ds.names("train")) == 14
    assert "every 8th frame held out" in ds.describe()["split"]
    assert load_dataset(root, test_every=0).names("test") == []
    _code, out, _err = _cli(["info", str(root)], capsys)
    assert "every 8th frame held out" in " ".join(out.split())


def test_working_resolution_max_size_downscale_and_automatic_cap(tmp_path, monkeypatch):
    root = _single_file_dataset(tmp_path / "ds", 3, width=400, height=300)
    native = load_dataset(root)  # below the automatic cap: native size
    assert native.size("img_00") == (400, 300) and native.downscale == 1.0 and not native.describe()["auto_size"]
    K = native.train.Ks.clone()

    cases = [
        ({"max_size": 200}, (200, 150)),
        ({"downscale": 4}, (100, 75)),
        ({"downscale": 2, "max_size": 100}, (100, 75)),
        ({"downscale": 2, "max_size": 1000}, (200, 150)),
        ({"max_size": 0}, (400, 300)),
    ]
    for kwargs, size in cases:
        ds = load_dataset(root, **kwargs)
        assert ds.size("img_00") == size, kwargs
        assert ds.image("img_00").shape == (size[1], size[0], 3)
        np.testing.assert_allclose(ds.train.Ks[:, :2].numpy(), K[:, :2].numpy() * size[0] / 400, rtol=1e-5)
        assert load_dataset(root, downscale=ds.downscale).size("img_00") == size  # what train records

    monkeypatch.setattr(dataset_mod, "AUTO_MAX_SIZE", 160)
    auto = load_dataset(root)
    assert auto.size("img_00") == (160, 120) and auto.describe()["auto_size"]
    assert load_dataset(root, downscale=1).size("img_00") == (400, 300)  # an explicit factor turns the cap off
    with pytest.raises(GssegError, match="max_size must be a whole number"):
        load_dataset(root, max_size=-5)


def test_train_records_the_working_resolution(tmp_path, monkeypatch):
    from gsseg.cli.commands.train import _working_downscale

    root = _single_file_dataset(tmp_path / "ds", 3, width=400, height=300)
    assert _working_downscale(root, None, 100, False) == 4.0
    assert _working_downscale(root, 2.0, None, False) == 2.0
    monkeypatch.setattr(dataset_mod, "AUTO_MAX_SIZE", 200)
    assert _working_downscale(root, None, None, False) == 2.0


def test_read_only_dataset_keeps_masks_in_the_cache(tmp_path):
    root = _single_file_dataset(tmp_path / "ds", 3)
    assert load_dataset(root).masks_dir == root / "masks"
    mode = root.stat().st_mode
    os.chmod(root, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        masks_dir = load_dataset(root).masks_dir
        assert masks_dir.is_relative_to(tmp_path / "cache") and masks_dir.name == "masks"
        from gsseg.cli.commands.train import _has_masks
        from gsseg.masks.store import MaskStore, ViewMasks

        assert not _has_masks(root)
        MaskStore(masks_dir).save("img_00", ViewMasks.from_masks(np.ones((1, 30, 40), dtype=bool), source="test"))
        assert _has_masks(root)  # train finds the masks `gsseg masks` put in the cache
    finally:
        os.chmod(root, mode)


@pytest.mark.skipif(not (FOX / "transforms.json").is_file(), reason="../shared/real/fox is absent")
def test_fox_as_published(capsys):
    code, out, err = _cli(["info", str(FOX), "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["train_views"] + info["test_views"] == 50 and info["test_views"] == 7
    assert (info["listed_frames"], info["skipped_frames"]) == (67, 17)
    assert "17 of 67 frames in transforms.json have no image file" in err
    assert info["native_resolutions"] == ["1080x1920"] and info["resolutions"] == ["270x480"]
    assert info["lens"] and info["undistorted_views"] == 50 and info["auto_size"]
    ds = load_dataset(FOX)
    name = ds.names("test")[0]
    img = ds.image(name)
    assert img.shape == (480, 270, 3) and 0.05 < float(img.mean()) < 0.95
    K = ds.test.Ks[0]
    assert abs(float(K[0, 0]) - 1375.52 / 4) < 20 and abs(float(K[1, 2]) - 965.268 / 4) < 10


@pytest.mark.slow
@pytest.mark.skipif(not (FOX / "transforms.json").is_file(), reason="../shared/real/fox is absent")
def test_fox_end_to_end_at_a_small_size(tmp_path, capsys):
    """The published fox through masks, train (triangulated start), segment --auto and export at a
    120-px working size with short schedules: no error, no hand step, a scene that resembles the
    photos, and objects on disk."""
    run = tmp_path / "run"
    size = ["--max-size", "120"]
    code, _, err = _cli(["masks", str(FOX), *size], capsys)
    assert code == 0, err
    code, _, err = _cli(
        ["train", str(FOX), "--out", str(run), *size, "--iters", "300", "--feature-iters", "100"], capsys
    )
    assert code == 0, err
    rgb = json.loads((run / "rgb.json").read_text())
    assert rgb["init"].startswith("triangulated") and rgb["test_psnr"] > 18.0, rgb.get("test_psnr")
    assert (run / "features.pt").is_file()
    code, _, err = _cli(["segment", str(run), "--auto"], capsys)
    assert code == 0, err
    code, _, err = _cli(["export", str(run), "--out", str(tmp_path / "objects")], capsys)
    assert code == 0, err
    objects = sorted((tmp_path / "objects").glob("object_*.ply"))
    assert len(objects) >= 2, err
