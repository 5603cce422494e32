"""The official metric protocols (gsseg.eval.official): hand-computed cases, and every value of the
parity pack (../shared/parity, skipped when absent)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gsseg.eval.official import (
    PairGeometry,
    ScoredLevel,
    official_levels,
    panoptic_quality_official,
    reprojection,
    sanerf_object,
    sanerf_summary,
    score_view,
    transferred_threshold_iou,
    visibility,
)
from gsseg.eval.official.geometry import viewmat_from_opengl_c2w
from tests.helpers.paths import SHARED_PARITY

PACK = SHARED_PARITY
LEVELS = ("part", "object", "group", "fgbg")
CASES = ("gt", "noisy", "flat")

# 4x4: label 1 on the left half (8 px), label 2 on the right half (8 px)
GT = np.array([[1, 1, 2, 2]] * 4)
UNEVEN = np.array([[1, 1, 2, 2]] * 3 + [[3, 3, 2, 2]])  # label 1 cut into 6 px + 2 px
ALL = {"g": ScoredLevel(GT, None)}


def identity_pair(shape=(4, 4)) -> PairGeometry:
    n = shape[0] * shape[1]
    return PairGeometry(np.arange(n), np.ones(n, bool), np.ones(n, bool))


# --- self-contained ------------------------------------------------------------------------------


def test_nc_exact_is_the_expectation_and_sampled_converges():
    r = score_view(ALL, UNEVEN, min_size=1)
    # 6 of 8 pixels see IoU 6/8, 2 see IoU 2/8 -> 0.625; segment 2 is whole
    assert r["nc"]["g"].segments == {1: pytest.approx(0.625, abs=1e-12), 2: 1.0}
    assert r["nc_dense"]["g"].segments == {1: 0.75, 2: 1.0}
    assert r["si"]["g"].segments[1] == pytest.approx((6 * 6 + 2 * 2) / 64)
    s = score_view(ALL, UNEVEN, exact=False, samples=20000, seed=1, min_size=1)
    assert s["nc"]["g"].segments[1] == pytest.approx(0.625, abs=0.01)
    assert s["si"]["g"].segments[1] == pytest.approx(0.625, abs=0.01)
    again = score_view(ALL, UNEVEN, exact=False, samples=20000, seed=1, min_size=1)
    assert again["nc"]["g"].segments == s["nc"]["g"].segments


def test_levels_skip_background_and_small_segments_but_fgbg_scores_both():
    levels = official_levels({"object": GT * (np.arange(4) < 3)[None, :]})  # label 2 keeps 4 px
    assert set(levels) == {"object", "fgbg"}
    r = score_view(levels, GT, min_size=5)
    assert set(r["nc"]["object"].segments) == {1}  # label 2 (4 px) too small, 0 background
    assert set(r["nc"]["fgbg"].segments) == {1}  # background column (4 px) too small
    r = score_view(levels, GT, min_size=4)
    assert set(r["nc"]["fgbg"].segments) == {0, 1}
    empty = score_view({"object": ScoredLevel(np.zeros((4, 4), int))}, GT)
    assert math.isnan(empty["nc"]["object"].image) and empty["nc"]["object"].segments == {}


def test_unassigned_is_an_ordinary_segment_for_nc():
    pred = np.where(GT == 1, 0, 7)  # the left half unassigned
    r = score_view(ALL, pred, min_size=1)
    assert r["nc"]["g"].image == 1.0


def test_vc_identity_pair_and_unassigned_partner():
    r = score_view(ALL, GT, GT + 10, identity_pair(), min_size=1)
    assert r["vc"]["g"].segments == {1: 1.0, 2: 1.0}
    partner = np.where(GT == 1, 0, GT)  # the partner leaves segment 1 unassigned
    r = score_view(ALL, GT, partner, identity_pair(), min_size=1)
    assert r["vc"]["g"].segments == {2: 1.0}  # segment 1: no eligible pixel, not scored


def test_vc_scores_at_a_second_pixel_drawn_among_eligible_pixels():
    # view: one cut, segment 1 split 6 + 2; partner: the 2 px piece relabelled to the 6 px label
    partner = np.where(UNEVEN == 3, 1, UNEVEN)
    r = score_view(ALL, UNEVEN, partner, identity_pair(), min_size=1)
    # p' in the 6 px piece: A = 6 px, B = 8 px -> 6/8; p' in the 2 px piece: A = 2 px -> 2/8
    assert r["vc"]["g"].segments[1] == pytest.approx((6 * 0.75 + 2 * 0.25) / 8)
    # visibility restricts both the eligible set and the IoU's pixels
    geo = identity_pair()
    geo.visible = (UNEVEN != 3).ravel()
    r = score_view(ALL, UNEVEN, partner, geo, min_size=1)
    assert r["vc"]["g"].segments[1] == 1.0
    detail = r["vc"]["g"].detail[1]
    assert detail["n_eligible"] == [6.0] and detail["w"] == [1.0]


def test_reprojection_uses_the_half_pixel_shift_and_visibility_the_containing_pixel():
    K = np.array([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]])
    depth = np.full((4, 4), 2.0)
    eye = np.eye(4)
    # partner shifted so that view pixel centres project 0.3 px to the right: x' frac .8 -> same col
    shift = np.eye(4)
    shift[0, 3] = 0.3 * 2.0 / 10.0
    tau = reprojection(depth, K, eye, K, shift, (4, 4))
    # centre c + 0.5 lands at c + 0.8 -> trunc(c + 0.8 - 0.5) = c
    assert (tau[..., 1] == np.arange(4)[None, :]).all()
    shift[0, 3] = -0.3 * 2.0 / 10.0  # lands at c + 0.2 -> trunc(c - 0.3) = c - 1, clipped at 0
    tau = reprojection(depth, K, eye, K, shift, (4, 4))
    assert tau[0, :, 1].tolist() == [0, 0, 1, 2]
    vis = visibility(depth, K, eye, depth, K, shift)
    assert vis.all()
    far = np.full((4, 4), 3.0)
    assert not visibility(depth, K, eye, far, K, shift).any()  # depths disagree by 50 %


def test_pq_void_rules_and_empty_cases():
    gt = np.array([[0, 1, 1, 1], [0, 1, 1, 1], [0, 2, 2, 2], [0, 2, 2, 2]])
    assert panoptic_quality_official([gt], [gt]).pq == 1.0
    # a spurious segment on GT void vanishes; unassigned pixels leave the GT segment's area
    pred = gt.copy()
    pred[:, 0] = 9
    pred[0, 1] = 0
    r = panoptic_quality_official([gt], [pred])
    assert (r.pq, r.tp, r.fp, r.fn) == (1.0, 2, 0, 0)
    # GT 2 wholly unassigned: not an FN
    pred = np.where(gt == 2, 0, gt)
    r = panoptic_quality_official([gt], [pred])
    assert (r.pq, r.tp, r.fn, r.fn_ignored) == (1.0, 1, 0, [2])
    # no match at all: PQ 0 (two halves of a merge, each IoU 0.5, not > 0.5)
    merge = np.where(gt > 0, 5, 0)
    r = panoptic_quality_official([gt], [merge])
    assert (r.pq, r.sq, r.rq, r.tp, r.fp, r.fn) == (0.0, 0.0, 0.0, 0, 1, 2)
    # all GT void, or nothing predicted: the category is dropped -> NaN
    assert math.isnan(panoptic_quality_official([np.zeros_like(gt)], [gt]).pq)
    assert math.isnan(panoptic_quality_official([gt], [np.zeros_like(gt)]).pq)


def test_sanerf_pools_views_and_keeps_nan():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2] = True
    pred = np.zeros_like(gt)
    pred[0, :1] = True
    pred[1, :1] = True
    o = sanerf_object(list(pred), list(gt))
    assert o.iou == pytest.approx(4 / 12) and o.acc == pytest.approx(24 / 32)
    absent = sanerf_object([np.zeros((4, 4), bool)], [np.zeros((4, 4), bool)])
    assert math.isnan(absent.iou) and absent.acc == 1.0
    miou, macc = sanerf_summary([o, absent])
    assert math.isnan(miou) and macc == pytest.approx((24 / 32 + 1) / 2)


def test_threshold_is_fixed_on_the_reference_view():
    ref_score = np.array([[0.9, 0.8, 0.1, 0.0]])
    ref_mask = np.array([[1, 1, 0, 0]], bool)
    other = np.array([[0.9, 0.5, 0.05, 0.0]])
    mask = np.array([[1, 1, 1, 0]], bool)
    iou, th = transferred_threshold_iou(ref_score, ref_mask, [other], [mask])
    assert 0.1 <= th < 0.8
    expected = ((other > th) & mask).sum() / ((other > th) | mask).sum()
    assert iou == pytest.approx(expected)
    assert expected == pytest.approx(2 / 3)  # a per-view best threshold (0.02) would give 1
    assert math.isnan(transferred_threshold_iou(ref_score, ref_mask, [other], [np.zeros_like(mask)])[0])


# --- the parity pack ---------------------------------------------------------------------------

needs_pack = pytest.mark.skipif(not (PACK / "expected.json").is_file(), reason="no ../shared/parity")


@pytest.fixture(scope="module")
def expected():
    return json.loads((PACK / "expected.json").read_text())


def pack_pair(k: int):
    z = np.load(PACK / f"pair{k}.npz")
    levels = official_levels({str(n): z["gt_view"][i].astype(np.int64) for i, n in enumerate(z["levels"])})
    return z, levels


def pack_geometry(z) -> PairGeometry:
    vm, vmp = viewmat_from_opengl_c2w(z["c2w_view"]), viewmat_from_opengl_c2w(z["c2w_partner"])
    tau = reprojection(z["depth_view"], z["K_view"], vm, z["K_partner"], vmp, z["depth_partner"].shape)
    vis = visibility(z["depth_view"], z["K_view"], vm, z["depth_partner"], z["K_partner"], vmp)
    vis_p = visibility(z["depth_partner"], z["K_partner"], vmp, z["depth_view"], z["K_view"], vm)
    assert (tau == z["ref_transform_view_to_partner"]).all()
    assert (vis == z["ref_visible_view"]).all() and (vis_p == z["ref_visible_partner"]).all()
    return PairGeometry.from_maps(tau, vis, vis_p)


@needs_pack
@pytest.mark.parametrize("k", [0, 1, 2])
def test_pack_exact_nc_nc_dense_vc(expected, k):
    z, levels = pack_pair(k)
    geo = pack_geometry(z)
    for case in CASES:
        r = score_view(levels, z[f"cuts_{case}_view"], z[f"cuts_{case}_partner"], geo, exact=True)
        for metric in ("nc", "nc_dense", "vc"):
            for lv in LEVELS:
                e = expected[metric][case][f"pair{k}"][lv]
                got = r[metric][lv]
                where = f"{metric} {case} pair{k} {lv}"
                assert got.image == pytest.approx(e["image"], abs=1e-9), where
                assert set(got.segments) == {int(g) for g in e["segments"]}, where
                for g, v in e["segments"].items():
                    assert got.segments[int(g)] == pytest.approx(v, abs=1e-9), where
                if metric == "vc":
                    for g, d in e["segment_detail"].items():
                        mine = got.detail[int(g)]
                        assert mine["w"] == pytest.approx(d["w"], abs=1e-12), where
                        assert mine["n_eligible"] == [float(n) for n in d["n_eligible"]], where
                        for n, a, b in zip(d["n_eligible"], mine["mean_score"], d["mean_score"]):
                            if n:
                                assert a == pytest.approx(b, abs=1e-9), where


@needs_pack
def test_pack_dataset_means(expected):
    for metric in ("nc", "nc_dense", "vc"):
        for case in CASES:
            for lv in LEVELS:
                images = [expected[metric][case][f"pair{k}"][lv]["image"] for k in range(3)]
                assert np.mean(images) == pytest.approx(expected[metric][case]["mean_over_pairs"][lv], abs=1e-12)


@needs_pack
def test_pack_sampled_nc_vc_within_sampling_noise(expected):
    """One seeded 100-draw run within 4 sd everywhere (the pack's own official runs reach 3.4 sd),
    and the mean of 8 seeds within 3 sd / sqrt(8)."""
    seeds = range(8)
    for k in range(3):
        z, levels = pack_pair(k)
        geo = PairGeometry.from_maps(
            z["ref_transform_view_to_partner"], z["ref_visible_view"], z["ref_visible_partner"]
        )
        for case in CASES:
            runs = [
                score_view(levels, z[f"cuts_{case}_view"], z[f"cuts_{case}_partner"], geo, exact=False, seed=s)
                for s in seeds
            ]
            for metric in ("nc", "vc"):
                for lv in LEVELS:
                    e = expected[metric][case][f"pair{k}"][lv]
                    sd = e["sd_of_100_sample_estimate"]
                    values = np.array([r[metric][lv].image for r in runs])
                    where = f"{metric} {case} pair{k} {lv}"
                    assert abs(values[0] - e["image"]) <= 4 * sd + 1e-12, where
                    assert abs(values.mean() - e["image"]) <= 3 * sd / np.sqrt(len(seeds)) + 1e-12, where


@needs_pack
def test_pack_pq_scene(expected):
    z = np.load(PACK / "pq_cases.npz")
    for case, e in expected["pq_scene"].items():
        r = panoptic_quality_official(list(z[f"{case}__gt"]), list(z[f"{case}__pred"]))
        for key in ("pq", "sq", "rq"):
            assert getattr(r, key) == pytest.approx(e[key], abs=1e-6), f"{case} {key}"
        assert (r.tp, r.fp, r.fn) == (e["tp"], e["fp"], e["fn"]), case
        assert r.fn_ignored == e["fn_ignored_mostly_unassigned"], case
        want = sorted((int(p), int(g), v) for p, g, v in e["matches"])
        assert [m[:2] for m in r.matches] == [w[:2] for w in want], case
        assert [m[2] for m in r.matches] == pytest.approx([w[2] for w in want], abs=1e-6), case


@needs_pack
def test_pack_sanerf_hq(expected):
    z = np.load(PACK / "sanerf_cases.npz")
    e = expected["sanerf_hq"]
    objects = {}
    for case, want in e["cases"].items():
        o = sanerf_object(list(z[f"{case}__pred"]), list(z[f"{case}__gt"]))
        objects[case] = o
        assert (o.intersection, o.union, o.correct, o.total) == (
            want["intersection"],
            want["union"],
            want["correct"],
            want["total"],
        ), case
        if want["iou_is_nan"]:
            assert math.isnan(o.iou), case
        else:
            assert o.iou == pytest.approx(want["iou"], abs=1e-12), case
        assert o.acc == pytest.approx(want["acc"], abs=1e-12), case
    miou, macc = sanerf_summary([objects[f"object{k}"] for k in range(1, 7)])
    assert miou == pytest.approx(e["mIoU_object1_to_6"], abs=1e-12)
    assert macc == pytest.approx(e["mAcc_object1_to_6"], abs=1e-12)
    miou_all, macc_all = sanerf_summary(list(objects.values()))
    assert math.isnan(miou_all) and e["mIoU_all_cases"] is None
    assert macc_all == pytest.approx(e["mAcc_all_cases"], abs=1e-12)


# --- `gsseg eval --labels` on the pack converted to a dataset -------------------------------------


def pack_dataset(root: Path, case: str = "noisy") -> tuple[Path, Path]:
    """The parity pack as a gsseg dataset (cameras, depth, GT, pairs) plus label maps DIR/c<t>/<stem>.png."""
    from PIL import Image

    data, labels = root / "data", root / "labels"
    frames, pairs = [], []
    for k in range(3):
        z = np.load(PACK / f"pair{k}.npz")
        for side, stem in (("view", f"test_00{k}"), ("partner", f"test_00{k}_rot10")):
            frames.append({"file_path": f"images/{stem}.png", "transform_matrix": z[f"c2w_{side}"].tolist()})
            (data / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(data / "images" / f"{stem}.png")
            (data / "depth").mkdir(exist_ok=True)
            np.save(data / "depth" / f"{stem}.npy", z[f"depth_{side}"])
            for i, lv in enumerate(z["levels"]):
                (data / "gt" / str(lv)).mkdir(parents=True, exist_ok=True)
                Image.fromarray(z[f"gt_{side}"][i]).save(data / "gt" / str(lv) / f"{stem}.png")
            for t, cut in enumerate(z[f"cuts_{case}_{side}"]):
                (labels / f"c{t}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(cut).save(labels / f"c{t}" / f"{stem}.png")
        pairs.append([f"test_00{k}", f"test_00{k}_rot10"])
    intr = {"camera_model": "OPENCV", "w": 128, "h": 96, "fl_x": 110.8513, "fl_y": 110.8513, "cx": 64.0, "cy": 48.0}
    Image.fromarray(np.zeros((96, 128, 3), np.uint8)).save(data / "images" / "train_000.png")
    train = [{**frames[0], "file_path": "images/train_000.png"}]
    (data / "transforms_train.json").write_text(json.dumps({**intr, "frames": train}))
    (data / "transforms_test.json").write_text(json.dumps({**intr, "frames": frames}))
    (data / "pairs.json").write_text(json.dumps(pairs))
    return data, labels


@needs_pack
def test_cli_labels_exact_reproduces_the_pack(tmp_path, expected):
    from typer.testing import CliRunner

    from gsseg.cli.app import app

    data, labels = pack_dataset(tmp_path)
    res = CliRunner().invoke(app, ["eval", "--data", str(data), "--labels", str(labels), "--exact", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["protocol"] == "official" and out["mode"] == "exact" and out["cuts"] == ["c0", "c1", "c2"]
    assert sorted(out["per_view"]) == ["test_000", "test_001", "test_002"]
    for k in range(3):
        mine = out["per_view"][f"test_00{k}"]
        for metric in ("nc", "vc"):
            for lv in LEVELS:
                want = expected[metric]["noisy"][f"pair{k}"][lv]["image"]
                assert mine[f"{metric}_{lv}"] == pytest.approx(want, abs=0.002), f"{metric} pair{k} {lv}"
    for lv in LEVELS:
        assert out[f"vc_{lv}"] == pytest.approx(expected["vc"]["noisy"]["mean_over_pairs"][lv], abs=0.002)
    assert set(out["pq_scene_per_cut"]) == {"c0", "c1", "c2"}
    table = CliRunner().invoke(app, ["eval", "--data", str(data), "--labels", str(labels), "--exact"])
    assert table.exit_code == 0, table.output
    words = " ".join(table.output.split())  # the console wraps long lines
    assert "official protocols (exact expectation)" in words and "fgbg" in words


@needs_pack
def test_labels_mode_user_errors_are_one_line(tmp_path, capsys):
    import shutil

    from PIL import Image

    from tests.helpers.cli_fixtures import cli_exit_code

    data, labels = pack_dataset(tmp_path)

    def fails(argv: list[str], *words: str) -> None:
        assert cli_exit_code(argv) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        for w in words:
            assert w in err, err

    base = ["eval", "--data", str(data), "--labels"]
    fails([*base, str(tmp_path / "nope")], "nope", "not found")
    Image.fromarray(np.zeros((10, 12), np.uint16)).save(labels / "c1" / "test_001.png")
    fails([*base, str(labels)], "c1/test_001.png", "12x10", "128x96")
    (labels / "c1" / "test_001.png").unlink()
    fails([*base, str(labels)], "c1/test_001.png", "not found")
    shutil.rmtree(labels / "c1")
    (labels / "c2" / "test_002_rot10.png").unlink()
    fails([*base, str(labels)], "test_002_rot10.png", "partner")
    fails(["eval", "--labels", str(labels)], "--data")
    fails(["eval", str(tmp_path), "--data", str(data), "--labels", str(labels)], "not both")


def test_sparse_pair_tables_give_the_dense_results(monkeypatch):
    """Cuts with many labels use sparse (segment, label) tables: same values as the dense path."""
    import gsseg.eval.official.protocols as protocols

    rng = np.random.default_rng(0)
    gt = np.repeat(np.repeat(rng.integers(0, 5, (6, 8)), 4, 0), 4, 1)  # 24 x 32, blocky segments
    cuts = np.stack([gt * 3 + (rng.random(gt.shape) < 0.2), rng.integers(0, 40, gt.shape), gt // 2])
    partner = np.roll(cuts, 1, axis=2)
    n = gt.size
    geo = PairGeometry(np.roll(np.arange(n).reshape(gt.shape), 1, axis=1).ravel(), np.ones(n, bool), np.ones(n, bool))
    levels = official_levels({"object": gt})
    for exact in (True, False):
        dense = score_view(levels, cuts, partner, geo, exact=exact, min_size=4)
        monkeypatch.setattr(protocols, "DENSE_TABLE", 0)
        monkeypatch.setattr(protocols, "_DIRECT_LABELS", 0)  # np.unique relabelling too
        sparse = score_view(levels, cuts, partner, geo, exact=exact, min_size=4)
        monkeypatch.undo()
        for metric in dense:
            for lv in dense[metric]:
                assert sparse[metric][lv].segments == pytest.approx(dense[metric][lv].segments, abs=1e-12)
        assert dense["vc"]["object"].segments  # something was scored
