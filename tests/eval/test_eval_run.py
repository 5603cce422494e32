"""`gsseg eval` on tiny runs: which metrics apply to which run, the run-view check, the CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from gsseg.data import load_dataset
from gsseg.errors import GssegError
from gsseg.eval.context import EvalSettings
from gsseg.eval.run_eval import evaluate_run
from gsseg.features import FeatureRecord, load_features, save_features
from gsseg.masks.store import MaskStore, ViewMasks
from tests.helpers.cli_fixtures import cli_exit_code
from tests.helpers.segment_fixtures import build_tiny_run  # noqa: E402

FAST = EvalSettings(samples=30, max_cuts=12, pixel_cuts=False)
UNIT = ("nc_part", "nc_object", "nc_group", "nc_mean", "si", "vc", "hier_miou_l1", "hier_miou_l2")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("eval")


@pytest.fixture(scope="module")
def emb_run(base):
    return build_tiny_run(base, "embedding")


@pytest.fixture(scope="module")
def logit_run(base):
    return build_tiny_run(base, "logits")


def _variant(run: Path, name: str, features: torch.Tensor | None = None, extras: dict | None = None) -> Path:
    """A copy of ``run`` with other features / extras."""
    out = run.parent / name
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(run, out)
    rec = load_features(run / "features.pt")
    f = rec.features if features is None else features
    save_features(out / "features.pt", FeatureRecord(f, rec.info, rec.settings, extras or rec.extras, rec.step))
    return out


def test_embedding_run_scores_hierarchy_metrics_and_beats_shuffled(emb_run):
    r = evaluate_run(emb_run, metrics=["hierarchy"], show_progress=False, settings=replace(FAST, pixel_cuts=True))
    for key in UNIT:
        assert 0.0 <= r[key] <= 1.0, key
    assert r["cuts_source"] == "computed" and 1 <= r["cuts"] <= 12
    assert r["protocol"] == "official"
    # the official VC of GT against GT (its half-pixel reprojection costs ~0.2 on 128x96 views)
    assert 0.5 < r["vc_gt"] < 1.0
    assert 0.0 <= r["nc_fgbg"] <= 1.0 and 0.0 <= r["vc_fgbg"] <= 1.0
    assert r["nc_mean"] == pytest.approx(np.mean([r["nc_part"], r["nc_object"], r["nc_group"]]))
    for key in ("nc_mean_2d", "si_2d", "vc_2d"):  # UFF's 2D mode beside the 3D hierarchy
        assert 0.0 <= r[key] <= 1.0, key
    assert "object_miou" not in r and "pq_scene" not in r
    rec = load_features(emb_run / "features.pt")
    perm = torch.randperm(len(rec.features), generator=torch.Generator().manual_seed(0))
    shuffled = evaluate_run(
        _variant(emb_run, "shuffled", rec.features[perm]), metrics=["hierarchy"], show_progress=False, settings=FAST
    )
    assert r["nc_mean"] > shuffled["nc_mean"] + 0.1
    assert r["hier_miou"] > shuffled["hier_miou"] + 0.1


def test_ground_truth_label_maps_score_one(emb_run, monkeypatch):
    """With every cut's label maps replaced by the ground truth, the protocols score 1 (and VC
    the warp's ceiling)."""
    import gsseg.eval.cuts as cuts

    ds = load_dataset(json.loads((emb_run / "config.json").read_text())["dataset"])
    monkeypatch.setattr(
        cuts, "view_label_maps", lambda ctx, view, labels: np.stack([ds.gt(view, lv) for lv in ds.gt_levels])
    )
    r = evaluate_run(emb_run, metrics=["hierarchy"], show_progress=False, settings=replace(FAST, exact=True))
    for key in ("nc_part", "nc_object", "nc_group", "nc_dense_mean", "si"):
        assert r[key] == pytest.approx(1.0), key
    assert r["vc_pairs"] == len(ds.pairs)
    assert r["vc"] == pytest.approx(r["vc_gt"], abs=1e-12)  # the same stack: the official ceiling
    ours = evaluate_run(emb_run, metrics=["hierarchy"], show_progress=False, settings=replace(FAST, protocol="gsseg"))
    assert ours["protocol"] == "gsseg"
    for key in ("nc_part", "nc_object", "nc_group", "nc_dense_mean", "nc_exclusive_mean", "si"):
        assert ours[key] == pytest.approx(1.0), key
    assert ours["vc"] == pytest.approx(ours["vc_gt"], abs=0.05) and ours["vc"] > 0.85
    assert ours["vc"] > r["vc"] + 0.05  # first-pixel VC with the containing pixel: optimistic


def test_run_segments_are_the_cuts_when_asked(emb_run):
    from gsseg.segment import SegmentRequest, segment_run

    run = _variant(emb_run, "with_segments")
    segment_run(run, SegmentRequest(thresholds=[0.05, 0.3], show_progress=False), device="cpu")
    for mode in ("segments", "auto"):
        r = evaluate_run(run, metrics=["hierarchy"], show_progress=False, settings=replace(FAST, cuts=mode))
        assert r["cuts_source"] == "segments" and r["cuts"] == 2
    computed = evaluate_run(run, metrics=["hierarchy"], show_progress=False, settings=FAST)  # the default
    assert computed["cuts_source"] == "computed" and computed["cuts"] > 2


def test_flat_logits_get_panoptic_and_prompted_logits_get_object_scores(logit_run):
    r = evaluate_run(logit_run, metrics=["panoptic", "prompted", "hierarchy"], show_progress=False, settings=FAST)
    assert 0.3 < r["pq_scene"] <= 1.0 and 0 < r["rq_scene"] <= 1.0 and 0 < r["miou"] <= 1.0
    assert r["pq_scene"] == pytest.approx(r["sq_scene"] * r["rq_scene"])
    assert "object_miou" not in r and "nc_mean" not in r
    # prompts: one click per ground-truth object, at its interior pixel in the view it is largest
    from gsseg.eval.metrics import interior_pixel

    ds = load_dataset(json.loads((logit_run / "config.json").read_text())["dataset"])
    rec = load_features(logit_run / "features.pt")
    clicks = []
    for obj in range(1, rec.info.dim):
        areas = [(int((ds.gt(v, "object") == obj).sum()), v) for v in ds.names("train")]
        area, view = max(areas)
        if area:
            y, x = interior_pixel(ds.gt(view, "object") == obj)
            clicks.append({"view": view, "x": x + 0.5, "y": y + 0.5, "positive": True, "object": obj})
    prompted = _variant(logit_run, "prompted", extras={"prompts": {"clicks": clicks, "names": []}})
    p = evaluate_run(prompted, metrics=["prompted", "panoptic"], show_progress=False, settings=FAST)
    assert p["objects"] == len(clicks) and "pq_scene" not in p
    assert 0.3 < p["object_miou"] <= 1.0 and 0.9 < p["object_acc"] <= 1.0
    # a prompt in a view the dataset does not have: the run belongs to another dataset
    bad = _variant(logit_run, "prompted_bad", extras={"prompts": {"clicks": [{**clicks[0], "view": "nope"}]}})
    with pytest.raises(GssegError, match="does not have"):
        evaluate_run(bad, metrics=["prompted"], show_progress=False, settings=FAST)


def test_input_masks_equal_to_ground_truth_score_one(emb_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(Path(json.loads((emb_run / "config.json").read_text())["dataset"]), data)
    ds = load_dataset(data)
    store = MaskStore(ds.masks_dir)
    for name in ds.names("train"):
        maps = np.stack([ds.gt(name, level) for level in ds.gt_levels])
        store.save(name, ViewMasks.from_label_maps(maps, source="labels")[0])
    r = evaluate_run(emb_run, data, metrics=["input"], show_progress=False, settings=FAST)
    assert r["input_views"] == len(ds.names("train"))
    assert r["input_nc_mean"] == pytest.approx(1.0)
    assert r["input_hier_miou_l1"] == pytest.approx(1.0) and r["input_hier_miou_l2"] == pytest.approx(1.0)


def test_refuses_a_run_whose_views_do_not_match(emb_run, capsys):
    run = _variant(emb_run, "mismatch")
    ds = load_dataset(json.loads((run / "config.json").read_text())["dataset"])
    views = {"train": ds.names("train")[:-1] + ["train_999"], "test": ds.names("test"), "size": [64, 48]}
    (run / "rgb.json").write_text(json.dumps({"stage": "rgb", "background": [0, 0, 0], "views": views}))
    with pytest.raises(GssegError, match="train views do not match"):
        evaluate_run(run, show_progress=False, settings=FAST)
    assert cli_exit_code(["eval", str(run), "--json"]) == 1
    err = capsys.readouterr().err
    assert "train_999" in err and "Traceback" not in err
    views["train"] = ds.names("train")
    views["size"] = [32, 24]
    (run / "rgb.json").write_text(json.dumps({"stage": "rgb", "background": [0, 0, 0], "views": views}))
    with pytest.raises(GssegError, match="32x24"):
        evaluate_run(run, show_progress=False, settings=FAST)


def test_cli_json_has_the_issue_keys(emb_run, capsys):
    assert (
        cli_exit_code(
            [
                "eval",
                str(emb_run),
                "--json",
                "--samples",
                "20",
                "--max-cuts",
                "8",
                "--no-pixel-cuts",
                "--metric",
                "psnr",
                "--metric",
                "hierarchy",
            ]
        )
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert {"psnr", *UNIT} <= set(r)
    assert cli_exit_code(["eval", str(emb_run), "--cuts", "bogus"]) == 1
    assert "cuts must be" in capsys.readouterr().err


def test_oracle_labels_recover_the_ground_truth_parts(emb_run):
    from gsseg.eval.oracle import gaussian_gt_parts

    ds = load_dataset(json.loads((emb_run / "config.json").read_text())["dataset"])
    from gsseg.gaussians.ply import read_ply

    parts = gaussian_gt_parts(read_ply(emb_run / "scene.ply").means.numpy(), ds)
    truth = np.load(emb_run / "gt_part.npy")  # the fixture made every Gaussian from a pixel of this part
    assert (parts == truth).mean() > 0.9
    r = evaluate_run(emb_run, metrics=["oracle"], show_progress=False, settings=FAST)
    for key in ("oracle_nc_mean", "oracle_si", "oracle_vc", "oracle_pq_scene", "oracle_object_miou"):
        assert 0.0 < r[key] <= 1.0, key
    assert "nc_mean" not in r and "psnr" not in r
