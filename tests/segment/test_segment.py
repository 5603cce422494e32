"""Segmentation: click queries, hierarchy cuts (nesting, small regions), label maps, CLI.

The run is built by ``segment_fixtures.build_tiny_run``: geometry back-projected from the
synthetic scene's GT depth and identity features made GT-consistent by construction (the
feature stage stands in; see that module's docstring).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from gsseg.cli.app import main
from gsseg.errors import GssegError
from gsseg.segment import (
    Click,
    SceneHierarchy,
    SegmentRequest,
    SegmentsDir,
    build_hierarchy,
    hierarchy_from_features,
    load_context,
    parse_click,
    read_label_png,
    render_label_map,
    segment_run,
)
from gsseg.segment.run import click_selection, parse_threshold_range
from tests.helpers.segment_fixtures import center_click


@pytest.fixture(scope="module")
def emb_run(shared_tiny_run):
    return shared_tiny_run("embedding")


@pytest.fixture(scope="module")
def logit_run(shared_tiny_run):
    return shared_tiny_run("logits")


@pytest.fixture(scope="module")
def emb_ctx(emb_run):
    return load_context(emb_run, "cpu")


@pytest.fixture(scope="module")
def segmented(emb_run):
    """The embedding run segmented with auto levels, thresholds and a region count."""
    req = SegmentRequest(auto=True, thresholds=[0.1, 0.25], regions=[5], views="test", show_progress=False)
    return segment_run(emb_run, req, device="cpu")


# ---------------------------------------------------------------------------- clicks
def test_parse_click_forms():
    c = parse_click("test_000:12,7.5")
    assert (c.view, c.x, c.y, c.positive) == ("test_000", 12.0, 7.5, True)
    p = parse_click("0.5,-1,2", positive=False)
    assert p.point == (0.5, -1.0, 2.0) and not p.positive and p.is_point
    assert parse_click("a:b:3,4").view == "a:b"  # stems may contain colons
    for bad in ["test_000:1", "1,2", "view:x,y", ":1,2", "1,2,3,4"]:
        with pytest.raises(GssegError, match="click"):
            parse_click(bad)


def test_click_selects_the_clicked_part(emb_run, emb_ctx):
    click, part = center_click(emb_ctx.dataset, "test_000")
    parts = np.load(emb_run / "gt_part.npy")
    scores, selected, thr = click_selection(emb_ctx, [click], None)
    assert scores.shape == (len(parts),) and 0.0 <= float(scores.min()) and float(scores.max()) <= 1.0
    truth = parts == part
    precision = (selected & truth).sum() / selected.sum()
    recall = (selected & truth).sum() / truth.sum()
    assert precision > 0.85 and recall > 0.9, (precision, recall)


def test_lower_threshold_selects_the_whole_object_and_negative_click_removes_a_part(emb_run, emb_ctx):
    parts, objects = np.load(emb_run / "gt_part.npy"), np.load(emb_run / "gt_object.npy")
    ds = emb_ctx.dataset
    click, part = center_click(ds, "test_000")
    obj = objects[parts == part][0]
    _, selected, _ = click_selection(emb_ctx, [click], 0.75)
    truth = objects == obj
    assert (selected & truth).sum() / selected.sum() > 0.95 and (selected & truth).sum() / truth.sum() > 0.95
    # a negative click on another visible part of the same object takes that part out
    gt = ds.gt("test_000", "part")
    others = [
        int(p)
        for p in np.unique(gt)
        if p > 0 and p != part and objects[parts == p].size and objects[parts == p][0] == obj and (gt == p).sum() >= 4
    ]
    assert others, "the test scene should show two parts of the clicked object"
    neg, other = center_click(ds, "test_000", max(others, key=lambda p: (gt == p).sum()))
    neg = Click(view=neg.view, x=neg.x, y=neg.y, positive=False)
    _, sel2, _ = click_selection(emb_ctx, [click, neg], 0.75)
    assert sel2[parts == other].mean() < 0.2 < selected[parts == other].mean()
    assert sel2[parts == part].mean() > 0.95


def test_3d_point_click_matches_pixel_click(emb_run, emb_ctx):
    click, part = center_click(emb_ctx.dataset, "test_000")
    parts = np.load(emb_run / "gt_part.npy")
    centre = emb_ctx.scene.means[torch.from_numpy(parts == part)].median(dim=0).values
    nearest = torch.cdist(centre[None], emb_ctx.scene.means[torch.from_numpy(parts == part)])[0].argmin()
    point = emb_ctx.scene.means[torch.from_numpy(parts == part)][nearest]
    _, sel_px, _ = click_selection(emb_ctx, [click], None)
    _, sel_pt, _ = click_selection(emb_ctx, [Click(point=tuple(point.tolist()))], None)
    assert (sel_px == sel_pt).mean() > 0.97


def test_click_errors(emb_ctx):
    with pytest.raises(GssegError, match="no view named"):
        click_selection(emb_ctx, [Click(view="nope", x=1, y=1)], None)
    with pytest.raises(GssegError, match="outside"):
        click_selection(emb_ctx, [Click(view="test_000", x=1000, y=1)], None)
    with pytest.raises(GssegError, match="positive click"):
        click_selection(emb_ctx, [Click(view="test_000", x=3, y=3, positive=False)], None)


def test_logit_click_and_argmax_cut(logit_run):
    ctx = load_context(logit_run, "cpu")
    parts, objects = np.load(logit_run / "gt_part.npy"), np.load(logit_run / "gt_object.npy")
    click, part = center_click(ctx.dataset, "test_000")
    _, selected, thr = click_selection(ctx, [click], None)
    assert thr == 0.5
    np.testing.assert_array_equal(selected, objects == objects[parts == part][0])
    summary = segment_run(logit_run, SegmentRequest(argmax=True, views="test", show_progress=False), device="cpu")
    assert [c["name"] for c in summary["cuts"]] == ["argmax"]
    labels = SegmentsDir(logit_run).labels("argmax", len(parts))
    np.testing.assert_array_equal(labels, objects + 1)


# ---------------------------------------------------------------------------- hierarchy
def clusters_with_a_floater(seed: int = 0):
    """Three spatial clusters (200, 200, 150) with features e0, (e0+e1)/sqrt2, e2, and five
    Gaussians of feature e3 between the first two."""
    rng = np.random.default_rng(seed)
    pts = np.concatenate(
        [
            rng.normal(0, 0.1, (200, 3)),
            rng.normal(1, 0.1, (200, 3)),
            rng.normal(2, 0.1, (150, 3)),
            rng.normal(0.5, 0.02, (5, 3)),
        ]
    )
    lab = np.repeat([0, 1, 2, 3], [200, 200, 150, 5])
    e = np.eye(8)[:4]
    e[1] = (e[0] + e[1]) / np.sqrt(2)
    f = e[lab] + rng.normal(0, 0.02, (len(lab), 8))
    return torch.tensor(pts, dtype=torch.float32), torch.tensor(f, dtype=torch.float32), lab


def test_small_regions_merged_or_dropped():
    means, feats, lab = clusters_with_a_floater()
    merged = hierarchy_from_features(means, feats, "embedding", min_size=10, small="merge").cut_threshold(0.05)
    dropped = hierarchy_from_features(means, feats, "embedding", min_size=10, small="drop").cut_threshold(0.05)
    assert (merged > 0).all() and len(np.unique(merged)) == 3
    np.testing.assert_array_equal(dropped == 0, lab == 3)
    for c in range(3):  # the three big clusters are found exactly
        assert len(np.unique(dropped[lab == c])) == 1
    assert len(np.unique(dropped[lab < 3])) == 3
    keep = hierarchy_from_features(means, feats, "embedding", min_size=1).cut_threshold(0.05)
    assert len(np.unique(keep)) == 4  # without a minimum size the floater is its own segment


def test_cut_by_region_count_and_auto_levels():
    means, feats, lab = clusters_with_a_floater()
    h = hierarchy_from_features(means, feats, "embedding", min_size=10)
    assert isinstance(h, SceneHierarchy) and len(h) == len(lab)
    labels, t = h.cut_regions(2)
    assert len(np.unique(labels)) == 2 and 0.0 < t < 1.0
    autos = h.auto_thresholds(levels=3)
    assert autos == sorted(autos, reverse=True) and len(autos) >= 1
    counts = [len(np.unique(h.cut_threshold(a))) for a in autos]
    # the 2-segment level (clusters 0 and 1 grouped) covers the scene in two: not an auto level
    assert counts == sorted(counts) and counts[0] == 3
    assert h.auto_thresholds(levels=3, min_regions=2) != autos  # it is one when asked for
    assert h.count_regions(np.array([t]))[0] == 2


def test_logit_hierarchy_separates_objects(logit_run):
    ctx = load_context(logit_run, "cpu")
    objects = np.load(logit_run / "gt_object.npy")
    labels = build_hierarchy(ctx.scene, ctx.record).cut_threshold(0.5)
    # one-hot logits per object (background included): the cut is the objects' partition itself,
    # every Gaussian labelled, one segment per object and every segment pure
    assert (labels > 0).all(), f"{int((labels == 0).sum())} of {len(labels)} Gaussians unlabelled"
    n_seg, n_obj = len(np.unique(labels)), len(np.unique(objects))
    n_pairs = np.unique(np.stack([labels, objects]), axis=1).shape[1]  # distinct (segment, object) pairs
    assert n_pairs == n_seg == n_obj >= 5, f"{n_seg} segments, {n_obj} objects, {n_pairs} (segment, object) pairs"


def test_finer_cuts_nest_in_coarser(emb_run, segmented):
    segs = SegmentsDir(emb_run)
    n = len(np.load(emb_run / "gt_part.npy"))
    cuts = {c["name"]: c for c in segs.read_index()["cuts"]}
    assert {"auto0", "t0.100", "t0.250", "n005"} <= set(cuts)
    chained = [c for c in cuts.values() if c["parent"]]
    assert len(chained) >= 3
    for c in chained:
        fine, coarse = segs.labels(c["name"], n), segs.labels(c["parent"], n)
        assert c["segments"] >= cuts[c["parent"]]["segments"]
        for sid in np.unique(fine[fine > 0]):
            inside = np.unique(coarse[fine == sid])
            assert len(inside) == 1 and inside[0] > 0, (c["name"], sid, inside)
        parents = segs.entry(c["name"])["segment_parents"]
        assert {int(k) for k in parents} == set(np.unique(fine[fine > 0]).tolist())


def test_cuts_follow_the_scene_levels(emb_run, segmented):
    """On GT-consistent features, the fine threshold cut is at the part level: it labels (nearly)
    every Gaussian, splits the objects into more segments than there are objects but no more than
    there are parts, and never mixes objects. (Measured: 13 segments for 7 objects incl. background
    and 18 parts, every Gaussian labelled, purity 1.0.)"""
    segs = SegmentsDir(emb_run)
    objects = np.load(emb_run / "gt_object.npy")
    parts = np.load(emb_run / "gt_part.npy")
    fine = segs.labels("t0.100", len(objects))
    assert (fine > 0).mean() > 0.99, f"only {(fine > 0).mean():.3f} of the Gaussians labelled"
    n_seg, n_obj, n_part = len(np.unique(fine[fine > 0])), len(np.unique(objects)), len(np.unique(parts))
    assert n_obj < n_seg <= n_part, f"{n_seg} segments for {n_obj} objects and {n_part} parts"
    purity = sum(np.bincount(objects[fine == s]).max() for s in np.unique(fine[fine > 0])) / (fine > 0).sum()
    assert purity > 0.99


# ---------------------------------------------------------------------------- label maps
def brute_force_label(table, labels: np.ndarray, pixel: int) -> int:
    acc: dict[int, float] = {}
    for i in range(int(table.offsets[pixel]), int(table.offsets[pixel + 1])):
        lab = int(labels[int(table.gaussian_ids[i])])
        acc[lab] = acc.get(lab, 0.0) + float(table.weights[i])
    return min(acc, key=lambda k: (-acc[k], k)) if acc else 0


def test_label_maps_agree_with_gaussian_labels(emb_run, emb_ctx, segmented):
    segs = SegmentsDir(emb_run)
    labels = segs.labels("t0.250", len(emb_ctx.scene))
    table = emb_ctx.tables.get("test_000")
    png = read_label_png(emb_run / "segments" / "t0.250" / "test_000.png")
    assert png.shape == (table.height, table.width)
    np.testing.assert_array_equal(png, render_label_map(table, labels))
    rng = np.random.default_rng(0)
    for pixel in rng.choice(table.width * table.height, size=200, replace=False):
        assert png.reshape(-1)[pixel] == brute_force_label(table, labels, int(pixel))
    # nearly every covered pixel shows the label of its strongest contributor
    counts = (table.offsets[1:] - table.offsets[:-1]).numpy()
    pix = np.repeat(np.arange(len(counts)), counts)
    w = table.weights.numpy()
    order = np.lexsort((-w, pix))
    first = np.ones(len(order), bool)
    first[1:] = pix[order][1:] != pix[order][:-1]
    top = order[first]
    strongest = labels[table.gaussian_ids.numpy()[top].astype(np.int64)]
    assert (png.reshape(-1)[pix[top]] == strongest).mean() > 0.9
    assert (png.reshape(-1)[counts == 0] == 0).all()
    alpha = table.alpha().numpy()
    faint = render_label_map(table, labels, min_alpha=0.9)
    assert (faint[alpha < 0.9] == 0).all() and (faint[alpha >= 0.9] == png[alpha >= 0.9]).all()
    assert (alpha < 0.9).any() and (alpha >= 0.9).any()


def test_click_run_writes_scores_and_cut(emb_run, emb_ctx):
    click, part = center_click(emb_ctx.dataset, "test_000")
    req = SegmentRequest(clicks=[click], click_threshold=0.95, views="test", show_progress=False)
    summary = segment_run(emb_run, req, device="cpu")
    assert summary["selected"] > 0 and [c["name"] for c in summary["cuts"]] == ["click"]
    for view in emb_ctx.dataset.names("test"):
        s = np.load(emb_run / "scores" / f"{view}.npy")
        assert s.dtype == np.float32 and s.shape == (48, 64) and 0.0 <= s.min() and s.max() <= 1.0
    s = np.load(emb_run / "scores" / "test_000.npy")
    gt = emb_ctx.dataset.gt("test_000", "part")
    assert s[int(click.y), int(click.x)] > 0.95
    assert s[gt == part].mean() > 0.9 > s[(gt > 0) & (gt != part)].mean()
    click_map = read_label_png(emb_run / "segments" / "click" / "test_000.png")
    # the quick-fit geometry is blurry at silhouettes: compare with the part grown by 3 pixels
    near_part = ndimage.binary_dilation(gt == part, iterations=3)
    assert (click_map[gt == part] == 1).mean() > 0.8
    assert near_part[click_map == 1].mean() > 0.9


# ---------------------------------------------------------------------------- CLI and errors
def test_cli_segment_json(emb_run, capsys):
    with pytest.raises(SystemExit) as e:
        main(["segment", str(emb_run), "--thresholds", "0.2:0.4:0.1", "--views", "test", "--json", "-q"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in out["cuts"]] == ["t0.400", "t0.300", "t0.200"]
    assert out["cuts"][1]["parent"] == "t0.400"
    index = json.loads((emb_run / "segments" / "index.json").read_text())
    assert index["last"] == ["t0.400", "t0.300", "t0.200"]
    assert (emb_run / "segments" / "t0.300" / "test_001_rot10.png").is_file()
    assert not list((emb_run / "segments").glob(".*tmp*"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--thresholds", "0.5:0.1:0.1"], "STEP > 0 and B >= A"),
        (["--threshold", "1.5"], "--threshold: must be >= 0 and <= 1, got 1.5"),
        (["--argmax"], "needs logit features"),
        (["--views", "val"], "unknown views"),
        (["--click", "test_000:5"], "expected STEM:X,Y"),
    ],
)
def test_cli_segment_user_errors(emb_run, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["segment", str(emb_run), "-q", *args])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_segment_without_features_says_what_to_run(emb_run, tmp_path):
    run = tmp_path / "nofeat"
    run.mkdir()
    for name in ("config.json", "scene.ply"):
        (run / name).write_bytes((emb_run / name).read_bytes())
    with pytest.raises(GssegError, match="no identity features"):
        segment_run(run, SegmentRequest(auto=True, show_progress=False), device="cpu")
    assert parse_threshold_range("0.1:0.3:0.1") == [0.1, 0.2, 0.3]


@pytest.mark.parametrize("n_labels", [2, 9, 40, 300])
def test_label_map_kernel_dense_and_sparse_paths_agree_with_a_pixel_loop(n_labels, monkeypatch):
    from gsseg.render.tables import ContributionTable, build_contribution_table
    from gsseg.render.testing import orbit_cameras, random_scene
    from gsseg.segment import labelmaps

    scene = random_scene(800, seed=n_labels)
    table = build_contribution_table(
        scene.means, scene.quats, scene.scales, scene.opacities, orbit_cameras(1, width=40, height=30)
    )
    weights = table.weights.clone()
    weights[: weights.numel() // 10] = 0.0  # some pixels whose weights are all zero: smallest label present wins
    table = ContributionTable(table.offsets, table.gaussian_ids, weights, table.width, table.height)
    labels = np.random.default_rng(n_labels).integers(0, n_labels, 800)
    kernel = labelmaps.render_label_map(table, labels)  # the C++ kernel where it is built
    monkeypatch.setattr(labelmaps, "load_cpu_extension", lambda: None)
    dense = labelmaps.render_label_map(table, labels)
    monkeypatch.setattr(labelmaps, "DENSE_HISTOGRAM_CELLS", 0)
    sparse = labelmaps.render_label_map(table, labels)
    np.testing.assert_array_equal(dense, sparse)
    np.testing.assert_array_equal(kernel, dense)
    alpha_cut = float(np.median(weights.numpy()))
    monkeypatch.undo()
    with_alpha = labelmaps.render_label_map(table, labels, min_alpha=alpha_cut)
    monkeypatch.setattr(labelmaps, "load_cpu_extension", lambda: None)
    np.testing.assert_array_equal(with_alpha, labelmaps.render_label_map(table, labels, min_alpha=alpha_cut))
    assert (with_alpha == 0).sum() > (dense == 0).sum()
    off, gids, w = table.offsets.numpy(), table.gaussian_ids.numpy(), weights.numpy().astype(np.float64)
    expect = np.zeros(40 * 30, np.int32)
    for p in range(40 * 30):
        acc: dict[int, float] = {}
        for k in range(off[p], off[p + 1]):
            acc[int(labels[gids[k]])] = acc.get(int(labels[gids[k]]), 0.0) + w[k]
        if acc:
            expect[p] = min(acc, key=lambda lab: (-acc[lab], lab))
    np.testing.assert_array_equal(dense.reshape(-1), expect)
