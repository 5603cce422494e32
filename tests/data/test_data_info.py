"""``gsseg info DATA``: JSON and table reports of what a dataset holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gsseg.cli.app import main
from gsseg.data.points import write_points_ply
from tests.helpers.data_fixtures import make_colmap_dataset, make_transforms_dataset, orbit_cameras, write_label_png


def _run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    assert e.value.code in (0, None), out.err
    return out.out


def _dataset(tmp_path):
    root = make_transforms_dataset(tmp_path / "ds", orbit_cameras(5), orbit_cameras(2, prefix="test", seed=1))
    (root / "depth").mkdir()
    for n in ("view_000", "view_001", "test_000"):
        np.save(root / "depth" / f"{n}.npy", np.ones((30, 40), dtype=np.float32))
    write_label_png(root / "gt" / "object" / "view_000.png", np.ones((30, 40)))
    write_label_png(root / "gt" / "part" / "view_000.png", np.ones((30, 40)))
    write_label_png(root / "gt" / "part" / "view_003.png", np.ones((30, 40)))
    write_points_ply(root / "points3d.ply", np.zeros((11, 3)))
    (root / "pairs.json").write_text(json.dumps([{"view": "test_000", "partner": "test_001"}]))
    return root


def test_info_json(tmp_path, capsys):
    root = _dataset(tmp_path)
    info = json.loads(_run(["info", str(root), "--json"], capsys))
    assert info["format"] == "transforms"
    assert (info["train_views"], info["test_views"]) == (5, 2)
    assert info["resolutions"] == ["40x30"]
    assert info["depth_views"] == 3
    assert info["gt_levels"] == {"part": 2, "object": 1}
    assert info["points"] == 11 and info["pairs"] == 1 and info["hierarchy"] is False
    assert info["masks"]["files"] == 0
    half = json.loads(_run(["info", str(root), "--json", "--downscale", "2"], capsys))
    assert half["resolutions"] == ["20x15"]


def test_info_reports_mask_store(tmp_path, capsys):
    store_mod = pytest.importorskip("gsseg.masks.store")
    root = _dataset(tmp_path)
    store = store_mod.MaskStore(root / "masks")
    for k, name in enumerate(("view_000", "view_002")):
        masks = np.zeros((k + 2, 30, 40), dtype=bool)
        for m in range(k + 2):
            masks[m, m * 5 : m * 5 + 8, 3:20] = True
        store.save(name, store_mod.ViewMasks.from_masks(masks, source="test"))
    info = json.loads(_run(["info", str(root), "--json", "--views"], capsys))
    assert info["masks"]["files"] == 2
    assert info["masks"]["total_masks"] == 5
    per_view = {v["name"]: v["masks"] for v in info["views"]}
    assert per_view["view_000"] == 2 and per_view["view_002"] == 3 and per_view["view_001"] is None
    table = _run(["info", str(root)], capsys)
    assert "2 views, 5 masks" in table


def test_info_table_colmap(tmp_path, capsys):
    root = make_colmap_dataset(tmp_path / "c", orbit_cameras(9), points=(np.zeros((4, 3)), np.zeros((4, 3))))
    table = _run(["info", str(root), "--test-every", "3"], capsys)
    assert "colmap" in table
    assert "6 train, 3 test" in table
    assert "40x30" in table
    assert "sparse points" in table and "4" in table
