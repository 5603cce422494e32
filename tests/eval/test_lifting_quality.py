"""Lifting quality with perfectly consistent masks, end to end on a small scene, and the pieces
the quality fix is made of: mask coverage, the hierarchy on supervised Gaussians with average
linkage above single-linkage atoms, and the object chosen under a click among nested masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import quality  # (the suite's click protocol: one click per object)
from gsseg.config.train import FeatureStageConfig, RGBConfig, TrainConfig
from gsseg.eval.context import EvalSettings
from gsseg.eval.run_eval import evaluate_run
from gsseg.features.coverage import mask_coverage, supervised_gaussians
from gsseg.masks.click_object import is_connected, object_label_map, object_mask, surface_points
from gsseg.masks.prompt_consensus import consensus_members, consensus_view_labels
from gsseg.masks.store import ViewMasks
from gsseg.run.run_dir import RunDir
from gsseg.segment.hierarchy import hierarchy_from_features
from gsseg.train.pipeline import StageOptions, run_training
from tests.helpers.feature_stage_fixtures import make_labelled_dataset

# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def consistent(tmp_path_factory):
    """'tabletop' at 80×60, 12 training views with ground-truth label masks (part, object, group:
    perfectly consistent), and a short RGB stage (600 steps, ~20 s) for the geometry: (dataset,
    RGB run). Gaussians splatted from depth are no substitute here: they render the test views
    so poorly that the ceiling itself is ~0.5."""
    root = tmp_path_factory.mktemp("lifting")
    ds = make_labelled_dataset(root / "data", views=12, width=80, height=60, scene="tabletop")
    cfg = TrainConfig(dataset=str(ds.root), rgb=RGBConfig(iters=600, device="cpu", seed=0))
    run_training(cfg, RunDir(root / "rgb"), StageOptions(resume=False, show_progress=False), ds=ds)
    return ds, root / "rgb"


def _features(run_root: Path, ds, rgb_run: Path, objective: str, iters: int, settings: dict | None = None) -> Path:
    shutil.copytree(rgb_run, run_root)
    run = RunDir(run_root)
    cfg = run.read_config()
    cfg.stages = ["features"]
    cfg.features = FeatureStageConfig(objective=objective, iters=iters, objective_settings=settings or {}, device="cpu")
    run_training(cfg, run, StageOptions(resume=False, show_progress=False), ds=ds)
    return run_root


def _eval(run_root: Path, metrics: list[str], linkage: str = "average") -> dict:
    settings = EvalSettings(samples=50, max_cuts=24, linkage=linkage, pixel_cuts=False)
    return evaluate_run(run_root, metrics=metrics, show_progress=False, settings=settings)


@pytest.mark.slow
def test_consistent_masks_reach_the_ceiling(consistent, tmp_path):
    """With perfectly consistent masks the lifted hierarchy's NC reaches 0.9 of the ceiling (the
    ground truth put on the same Gaussians). Contrastive only: ultrametric reaches 0.95 of it at
    the benchmark's 128×96 (ladder, rung 1) but only 0.71-0.96 on this 80×60 scene, run to run."""
    ds, rgb = consistent
    root = _features(tmp_path / "run", ds, rgb, "contrastive", 400)
    ceiling = _eval(root, ["oracle"])["oracle_nc_mean"]
    lifted = _eval(root, ["hierarchy"])
    assert lifted["nc_mean"] >= 0.9 * ceiling, (lifted["nc_mean"], ceiling)
    assert lifted["hier_object_miou"] > 0.8


@pytest.mark.slow
def test_one_click_per_object_finds_the_object_not_a_part(consistent, tmp_path):
    """Masks nest part ⊂ object ⊂ group; one click per object on its largest part gives the vote
    objective each object, not its part or its group (0.88 of the ceiling here: the lamp's
    pole and the teapot's spout are a pixel wide at 80×60; taking the smallest mask, the old
    rule, lifts the parts)."""
    ds, rgb = consistent
    clicks = quality.object_clicks(ds)
    root = _features(tmp_path / "run", ds, rgb, "vote", 0, {"clicks": clicks})
    ceiling = _eval(root, ["oracle"])["oracle_object_miou"]
    result = _eval(root, ["prompted"])
    assert result["objects"] == len(clicks)
    assert result["object_miou"] >= 0.8 * ceiling, (result["object_iou_per_object"], ceiling)


# --- coverage ---------------------------------------------------------------------------------------


class _Table:
    """A contribution table stand-in: pixel p holds entries offsets[p]:offsets[p+1]."""

    def __init__(self, per_pixel: list[list[tuple[int, float]]], width: int, height: int):
        counts = [len(e) for e in per_pixel]
        self.offsets = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.int64)
        self.gaussian_ids = torch.tensor([g for e in per_pixel for g, _ in e], dtype=torch.int32)
        self.weights = torch.tensor([w for e in per_pixel for _, w in e], dtype=torch.float32)
        self.width, self.height = width, height

    def to(self, device):
        return self


def test_mask_coverage_and_supervised_gaussians():
    # 2x2 view: Gaussian 0 everywhere, 1 only on the masked pixel, 2 only on unmasked ones
    table = _Table([[(0, 0.5), (1, 0.4)], [(0, 0.5), (2, 0.5)], [(0, 0.5), (2, 0.5)], [(0, 0.5)]], 2, 2)
    covered = np.array([True, False, False, False])
    cov = mask_coverage(["v", "w"], lambda v: table, lambda v: covered if v == "v" else None, 4)
    np.testing.assert_allclose(cov.numpy(), [[0.5, 2.0], [0.4, 0.4], [0.0, 1.0], [0.0, 0.0]], atol=1e-6)
    keep = supervised_gaussians(cov, 4, min_weight=0.3, min_fraction=0.5)
    assert keep.tolist() == [False, True, False, False]  # 0: mostly unmasked, 2: never masked, 3: unseen
    assert supervised_gaussians(None, 3).all()  # records without coverage: everyone
    assert supervised_gaussians(torch.zeros(3, 2), 3).all()  # never an empty tree
    assert mask_coverage(["v"], lambda v: table, lambda v: None, 4) is None


# --- hierarchy ------------------------------------------------------------------------------------


def _row(n: int, x0: float, y: float = 0.0) -> np.ndarray:
    return np.stack([x0 + 0.1 * np.arange(n), np.full(n, y), np.zeros(n)], 1)


def test_average_linkage_resists_a_bridge_and_merges_separate_members():
    """Two touching objects A, B joined by a few blended Gaussians, and a far object C with A's
    kind of features: single linkage merges A with B through the bridge first; the two-stage tree
    keeps A and B apart and merges A with C (same features, no spatial edge between them)."""
    rng = np.random.default_rng(0)
    fa, fb = np.eye(4)[0], np.eye(4)[1]
    fc = 0.9 * fa + 0.1 * np.eye(4)[2]
    means = np.concatenate([_row(30, 0.0), _row(5, 3.0), _row(30, 3.5), _row(30, 20.0)])
    steps = np.linspace(0, 1, 7)[1:-1, None]
    bridge = (1 - steps) * fa + steps * fb
    feats = np.concatenate([np.tile(fa, (30, 1)), bridge, np.tile(fb, (30, 1)), np.tile(fc, (30, 1))])
    feats = feats + 0.01 * rng.standard_normal(feats.shape)
    a, b, c = np.arange(30), np.arange(35, 65), np.arange(65, 95)
    m, f = torch.tensor(means, dtype=torch.float32), torch.tensor(feats, dtype=torch.float32)

    def first_joined(h, x, y):
        """Lowest threshold at which some member of x shares a segment with some member of y."""
        for t in np.unique(np.concatenate([[0.0], h.altitudes[h.num_leaves :]])):
            lab = h.cut_threshold(t)
            if np.intersect1d(lab[x], lab[y]).size:
                return t
        return np.inf

    single = hierarchy_from_features(m, f, "embedding", k=3, min_size=1, linkage="single")
    average = hierarchy_from_features(m, f, "embedding", k=3, min_size=1, linkage="average")
    assert first_joined(single, a, b) < first_joined(single, a, c)
    assert first_joined(average, a, c) < first_joined(average, a, b)
    # a valid tree: parents after children, altitudes never decrease towards the root
    par, alt = average.parents, average.altitudes
    assert (par[:-1] > np.arange(len(par) - 1)).all() and (alt[par] >= alt - 1e-12).all()


def test_unsupervised_gaussians_are_left_out_and_unassigned():
    means = torch.tensor(np.concatenate([_row(20, 0.0), _row(20, 5.0)]), dtype=torch.float32)
    feats = torch.tensor(
        np.concatenate([np.tile(np.eye(3)[0], (20, 1)), np.tile(np.eye(3)[1], (20, 1))]), dtype=torch.float32
    )
    keep = np.ones(40, bool)
    keep[[3, 25]] = False
    h = hierarchy_from_features(means, feats, "embedding", min_size=1, supervised=keep)
    assert len(h) == 40 and h.num_leaves == 38
    labels = h.cut_threshold(0.1)
    assert labels[3] == 0 and labels[25] == 0
    assert len(set(labels[keep].tolist())) == 2 and 0 not in labels[keep]


# --- the object under a click ---------------------------------------------------------------------


def _nested_view():
    """A 20×30 view: two boxes at depth 2 (object A made of parts A1, A2; object B) with a gap of
    floor between them; masks: A1, A, A∪B (a group), a floor mask and B. Returns (ViewMasks, depth, K)."""
    h, w = 20, 30
    depth = np.full((h, w), 6.0)  # floor, far behind
    a1 = np.zeros((h, w), bool)
    a1[5:15, 3:8] = True
    a2 = np.zeros((h, w), bool)
    a2[5:15, 8:12] = True
    b = np.zeros((h, w), bool)
    b[5:15, 18:26] = True
    depth[a1 | a2 | b] = 2.0
    floor = ~(a1 | a2 | b)
    masks = np.stack([a1, a1 | a2, a1 | a2 | b, floor, b])
    K = np.array([[30.0, 0, 15], [0, 30.0, 10], [0, 0, 1]])
    return ViewMasks.from_masks(masks), depth, K


def test_click_chooses_the_object_not_its_part_nor_its_group():
    vm, depth, K = _nested_view()
    points, foot = surface_points(depth, K), depth / K[0, 0]
    assert is_connected(vm.mask(1), points, foot) and not is_connected(vm.mask(2), points, foot)
    click = np.array([[4, 9]])  # (x, y) on part A1
    holding = np.flatnonzero(vm.membership[:, vm.patch_index[9, 4]])
    assert sorted(holding.tolist()) == [0, 1, 2]
    assert object_mask(vm, holding, depth, K, click) == 1  # A: not A1, not the group
    # a group whose big member dominates is still a group seen from a click on its small member
    vm2 = ViewMasks.from_masks(np.stack([vm.mask(0), vm.mask(2)]))
    assert object_mask(vm2, np.array([0, 1]), depth, K, click) == 0
    # the flat object-level map: A and B (the group falls apart into them); the floor is one piece too
    objects = object_label_map(vm, depth, K)
    a, b = vm.mask(1), vm.mask(4)
    assert len(np.unique(objects[a])) == 1 and len(np.unique(objects[b])) == 1
    assert objects[a][0] != objects[b][0] and 0 not in (objects[a][0], objects[b][0])


def test_consensus_outvotes_a_wrong_view():
    """Three views of the same two 'Gaussians per pixel' scene: two choose object A's mask, one
    wrongly the group; the consensus is A and the wrong view takes A's mask again."""
    w, h = 4, 1
    # pixel i shows Gaussian i (A = Gaussians 0, 1; B = 2; floor = 3)
    table = _Table([[(i, 1.0)] for i in range(4)], w, h)
    a = np.array([[True, True, False, False]])
    group = np.array([[True, True, True, False]])
    found = {"v0": {1: a}, "v1": {1: a}, "v2": {1: group}}
    members, known = consensus_members(found, lambda v: table, 4, 1)
    assert members.tolist() == [1, 1, 0, 0] and known[:, 1].all()
    vm = ViewMasks.from_masks(np.stack([a[0], group[0]]).reshape(2, h, w))
    labels, shown, chosen = consensus_view_labels(vm, table, members, known, 1, min_pixels=1)
    assert labels.tolist() == [[1, 1, 0, 0]] and shown == [2]


def test_sliver_patches_are_the_seams_between_disagreeing_masks():
    """A 1-px seam where two masks' boundaries disagree is a sliver; parts 3 px wide are not, nor
    is a patch cut by the image border."""
    from gsseg.objectives.sampling import sliver_patches

    patch = np.zeros((12, 12), np.int64)
    patch[:, 6:] = 1  # a large region touching the border
    patch[:, 5] = 2  # a seam, one pixel wide
    patch[2:9, 1:4] = 3  # a thin part, 3 px wide
    patch[0, 0:2] = 4  # a 1×2 speck on the border
    assert sliver_patches(patch, 1).tolist() == [False, False, True, False, True]
    assert sliver_patches(patch, 2).tolist() == [False, False, True, True, True]
    assert not sliver_patches(patch, 0).any()


def test_seams_are_one_mask_overshoots_not_thin_parts():
    """A floor mask grown one pixel into an object leaves a seam (floor + object: one mask more
    than the object beside it); a pole one pixel wide (its own part mask instead of the shade's)
    is a thin part, not a seam."""
    from gsseg.objectives.sampling import seam_patches

    h, w = 12, 12
    floor = np.zeros((h, w), bool)
    floor[:, :5] = True
    obj = np.zeros((h, w), bool)
    obj[:, 4:] = True  # column 4: floor overshoots into the object
    shade, pole = obj & (np.arange(h)[:, None] < 6), np.zeros((h, w), bool)
    pole[6:, 8] = True
    body = obj & ~shade & ~pole
    vm = ViewMasks.from_label_maps(np.stack([floor * 1, obj * 1, shade * 1, pole * 1, body * 1]).astype(np.int64))[0]
    seam = seam_patches(vm.patch_index, vm.membership, 1)
    assert seam[vm.patch_index[0, 4]] and seam[vm.patch_index[8, 4]]
    assert not seam[vm.patch_index[8, 8]]  # the pole
    assert not seam[vm.patch_index[0, 0]] and not seam[vm.patch_index[0, 10]]
