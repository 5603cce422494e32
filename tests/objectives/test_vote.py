"""Training-free vote: accumulation, exact recovery from consistent masks, label sources, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import maximum_filter, minimum_filter

from gsseg.data import load_dataset
from gsseg.errors import GssegError
from gsseg.objectives import FeatureContext, make_objective
from gsseg.objectives.vote import accumulate_votes, vote_probabilities
from gsseg.render.tables import ContributionTable, build_contribution_table
from gsseg.segment.labelmaps import render_label_map
from tests.helpers.objective_fixtures import surface_gaussians


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny tabletop, surface Gaussians from every training view, tables without 2D dilation."""
    from gsseg.synth import make_scene

    out = tmp_path_factory.mktemp("data") / "tiny"
    make_scene(out, scene="tabletop", seed=0, width=48, height=36, views=8, test_views=2)
    ds = load_dataset(out)
    sg = surface_gaussians(ds, ds.names("train"), size_factor=0.3)
    cams = ds.cameras("train")
    tables = {v: build_contribution_table(*sg.geometry, cams[cams.index_of(v)], eps2d=0.0) for v in cams.names}
    return ds, sg, tables


def context(ds, store=None) -> FeatureContext:
    from gsseg.masks.store import MaskStore

    w, h = ds.size(ds.names("train")[0])
    return FeatureContext(
        dataset=ds, store=store or MaskStore(ds.masks_dir), views=ds.names("train"), height=h, width=w
    )


def write_labels(folder, name: str, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels.astype(np.uint16)).save(folder / f"{name}.png")


def test_accumulate_votes_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    h, w, n, d = 3, 4, 7, 3
    counts = torch.randint(0, 4, (h * w,), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    nnz = int(offsets[-1])
    table = ContributionTable(
        offsets, torch.randint(0, n, (nnz,), generator=g, dtype=torch.int32), torch.rand(nnz, generator=g), w, h
    )
    labels = torch.randint(-1, d, (h * w,), generator=g)
    hist = accumulate_votes(table, labels, torch.zeros(n, d, dtype=torch.float64))
    expect = np.zeros((n, d))
    for p in range(h * w):
        for e in range(int(offsets[p]), int(offsets[p + 1])):
            if labels[p] >= 0:
                expect[int(table.gaussian_ids[e]), int(labels[p])] += float(table.weights[e])
    assert np.allclose(hist.numpy(), expect)
    probs = vote_probabilities(hist, background_bias=0.5, prior=1e-3)
    assert torch.allclose(probs.sum(1), torch.ones(n, dtype=probs.dtype))
    raw = hist[3].clone()
    raw[0] = raw[0] * 0.5 + 1e-3
    assert torch.allclose(probs[3], raw / raw.sum())


def test_vote_recovers_objects_exactly_from_consistent_masks(tiny, tmp_path):
    """Separate objects, masks rendered from their true identity: every Gaussian that any view
    sees gets its own object back, exactly."""
    ds, _, _ = tiny
    cams = ds.cameras("train")
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0, 0.6], [0.9, 0.3, 0.5], [-0.4, -0.9, 0.4]])
    dirs = torch.nn.functional.normalize(torch.randn(600, 3, generator=g), dim=1)
    means = (centres[:, None, :] + 0.25 * dirs.reshape(3, 200, 3)).reshape(-1, 3)
    truth = np.repeat([1, 2, 3], 200)
    quats = torch.zeros(600, 4)
    quats[:, 0] = 1
    geo = (means, quats, torch.full((600, 3), 0.03), torch.full((600,), 0.9))
    folder = tmp_path / "ids"
    tables = {}
    for v in cams.names:
        tables[v] = build_contribution_table(*geo, cams[cams.index_of(v)])
        alpha = tables[v].alpha().numpy()
        write_labels(folder, v, np.where(alpha > 0.01, render_label_map(tables[v], truth), 0))
    obj = make_objective("vote", labels_dir=str(folder))
    ctx = context(ds)
    obj.prepare(ctx)
    assert obj.channel_values == [0, 1, 2, 3]
    logp = obj.solve(ctx, tables.get, 600)
    seen = torch.zeros(600)
    for t in tables.values():
        seen.index_add_(0, t.gaussian_ids.long(), t.weights)
    seen = (seen > 0.01).numpy()
    assert seen.sum() > 500
    pred = logp.argmax(1).numpy()
    assert (pred[seen] == truth[seen]).all()
    assert (pred[~seen] == 0).all()  # nobody voted: background
    assert torch.allclose(logp.exp().sum(1), torch.ones(600), atol=1e-4)


def test_vote_on_scene_with_ground_truth_labels(tiny):
    """Built-in scene, surface Gaussians, gt/object as consistent labels: Gaussians off object
    boundaries get their object back (> 99.9 %; blur across a boundary in other views can still
    flip one), > 99 % of all Gaussians."""
    ds, sg, tables = tiny
    obj = make_objective("vote", labels_dir=str(ds.root / "gt" / "object"))
    ctx = context(ds)
    obj.prepare(ctx)
    logp = obj.solve(ctx, tables.get, len(sg.means))
    pred = np.asarray(obj.channel_values)[logp.argmax(1).numpy()]
    truth = sg.labels["object"]
    interior = []
    for v in ds.names("train"):
        o, d = ds.gt(v, "object"), ds.depth(v).numpy()
        keep = (d > 0) & (d < 1.5 * ds.scene_scale)
        interior.append((minimum_filter(o, 5) == maximum_filter(o, 5))[keep])
    interior = np.concatenate(interior)
    assert interior.sum() > 0.5 * len(truth)
    assert (pred[interior] == truth[interior]).mean() > 0.999
    assert (pred == truth).mean() > 0.99
    assert obj.extras()["voted_views"] == 8 and obj.extras()["classes"][0] == "background"


def test_vote_from_an_imported_labels_store_equals_the_folder(tiny, tmp_path):
    import shutil

    from gsseg.masks.runner import make_source, run_source
    from gsseg.masks.store import MaskStore

    ds, sg, tables = tiny
    data = tmp_path / "copy"
    shutil.copytree(ds.root, data, ignore=shutil.ignore_patterns("masks"))
    for v in ds.names("all"):
        write_labels(data / "label_masks" / v, "object", ds.gt(v, "object"))
    ds2 = load_dataset(data)
    run_source(ds2, make_source("labels"), show_progress=False)
    by_store = make_objective("vote")
    ctx = context(ds2, MaskStore(ds2.masks_dir))
    by_store.prepare(ctx)
    by_dir = make_objective("vote", labels_dir=str(ds.root / "gt" / "object"))
    by_dir.prepare(context(ds))
    assert by_store.channel_values == by_dir.channel_values
    a = by_store.solve(ctx, tables.get, len(sg.means))
    b = by_dir.solve(context(ds), tables.get, len(sg.means))
    assert torch.allclose(a, b)


def test_background_bias_and_errors(tiny, tmp_path):
    ds, sg, tables = tiny
    labels = str(ds.root / "gt" / "object")
    fg = []
    for bias in (0.0, 1.0, 5.0):
        obj = make_objective("vote", labels_dir=labels, background_bias=bias)
        obj.prepare(context(ds))
        fg.append(int((obj.solve(context(ds), tables.get, len(sg.means)).argmax(1) > 0).sum()))
    assert fg[0] > fg[1] > fg[2] > 0
    with pytest.raises(GssegError, match="label folder not found"):
        make_objective("vote", labels_dir=str(tmp_path / "none")).prepare(context(ds))
    with pytest.raises(GssegError, match="no cross-view-consistent labels"):
        make_objective("vote").prepare(context(ds))  # no masks at all
    with pytest.raises(GssegError, match="background_bias"):
        make_objective("vote", background_bias=-1)
