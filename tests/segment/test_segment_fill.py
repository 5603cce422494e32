"""No Gaussian dropped for thin supervision: thinly covered Gaussians take their neighbours'
labels in every cut (nested), never-seen ones stay unassigned, and the counts are recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch

from gsseg.export import export_run
from gsseg.features import load_features, save_features
from gsseg.segment import SegmentRequest, SegmentsDir, segment_run
from gsseg.segment.fill import choose_donors, seen_gaussians
from tests.helpers.segment_fixtures import build_tiny_run


def test_donors_vote_by_distance_and_keep_cuts_nested():
    rng = np.random.default_rng(0)
    a = rng.normal(scale=0.1, size=(200, 3))
    b = rng.normal(scale=0.1, size=(200, 3)) + [1.0, 0, 0]
    thin = np.array([[0.05, 0, 0], [0.95, 0, 0], [0.3, 0, 0], [5.0, 5.0, 5.0]])
    means = np.concatenate([a, b, thin])
    fine = np.concatenate([np.where(a[:, 1] > 0, 1, 2), np.full(200, 3), np.zeros(4, int)])
    coarse = np.concatenate([np.ones(200, int), np.full(200, 2), np.zeros(4, int)])
    fillable = np.zeros(404, bool)
    fillable[400:403] = True  # the far one (index 403) was never seen
    d = choose_donors(means, fine, fillable)
    assert sorted(d.targets.tolist()) == [400, 401, 402]
    f_fine, f_coarse = d.fill(fine), d.fill(coarse)
    assert f_coarse[400] == 1 and f_coarse[401] == 2 and f_coarse[402] == 1 and f_coarse[403] == 0
    assert f_fine[401] == 3 and f_fine[400] in (1, 2) and f_fine[403] == 0
    # nested: every fine segment lies in one coarse segment
    for s in np.unique(f_fine[f_fine > 0]):
        assert len(np.unique(f_coarse[f_fine == s])) == 1
    assert seen_gaussians(None, 3).all()
    assert seen_gaussians(torch.tensor([[0.0, 0.0], [0.0, 1.0]]), 2).tolist() == [False, True]


def test_thinly_covered_gaussians_are_filled_and_counted(tmp_path):
    base = build_tiny_run(tmp_path / "tiny", "embedding")
    run = tmp_path / "run_cov"
    shutil.copytree(base, run)
    rec = load_features(run / "features.pt")
    n = rec.features.shape[0]
    rng = np.random.default_rng(1)
    cov = np.ones((n, 2), np.float32) * 4.0
    thin = rng.random(n) < 0.3  # 30 % seen but outside the masks
    never = ~thin & (rng.random(n) < 0.01)  # 1 % never rendered
    cov[thin, 0] = 0.0
    cov[never] = 0.0
    rec.coverage = torch.from_numpy(cov)
    save_features(run / "features.pt", rec)
    segment_run(run, SegmentRequest(auto=True, views="test", show_progress=False), device="cpu")
    seg = SegmentsDir(run)
    gt = np.load(run / "gt_object.npy")
    for name in seg.read_index()["last"]:
        labels = seg.labels(name, n)
        entry = seg.entry(name)
        assert entry["filled_from_neighbours"] == int(thin.sum())
        assert entry["never_seen"] == int(never.sum()) and entry["unassigned"] == int((labels == 0).sum())
        assert (labels[never] == 0).all() and (labels[thin] > 0).all()
        assert (labels > 0).mean() >= 0.95
    # the filled Gaussians mostly land in the segment of their own GT object (coarsest cut)
    labels = seg.labels(seg.default_cut(), n)
    agree = [
        np.bincount(labels[(gt == o) & thin]).argmax() == np.bincount(labels[(gt == o) & ~thin]).argmax()
        for o in np.unique(gt)
        if ((gt == o) & thin).sum() > 20
    ]
    assert all(agree)
    m = export_run(run, tmp_path / "out", device="cpu")
    assert m["source"]["filled_from_neighbours"] == int(thin.sum()) and m["source"]["never_seen"] == int(never.sum())
    assert m["unassigned_gaussians"] == int(never.sum())
    assert (
        json.loads((tmp_path / "out" / "segments.json").read_text())["unassigned_gaussians"]
        == m["unassigned_gaussians"]
    )
