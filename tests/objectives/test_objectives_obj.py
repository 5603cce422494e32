"""object-field (SANeRF-HQ) and clustering (ClusteringSDF) losses against literal implementations,
their invariances, sampling, and short feature-stage runs on a built-in scene."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gsseg.errors import GssegError
from gsseg.objectives import FeatureContext, make_objective
from gsseg.objectives.clustering import ClusteringWeights, clustering_loss, comprehensive_pixels
from gsseg.objectives.object_field import ce_loss, ray_pair_loss

# --------------------------------------------------------------------------------- literal versions


def literal_probs(logit_row: torch.Tensor) -> torch.Tensor:
    e = torch.exp(logit_row - logit_row.max())
    return (e / e.sum()).clamp(1e-6, 1 - 1e-6)


def literal_ce(logits, labels):
    total, count = 0.0, 0
    for r in range(logits.shape[0]):
        if labels[r] >= 0:
            total = total - torch.log(literal_probs(logits[r])[labels[r]])
            count += 1
    return total / count


def literal_pair(logits, rgb, refs, threshold):
    terms = []
    for b in range(logits.shape[0]):
        probs = [literal_probs(logits[b, i]) for i in range(logits.shape[1])]
        for j in refs[b].tolist():
            c = int(torch.argmax(probs[j].detach()))
            num, den = 0.0, 0.0
            for i in range(logits.shape[1]):
                if float(torch.linalg.norm(rgb[b, i] - rgb[b, j])) < threshold:
                    cos = probs[i][c] / torch.linalg.norm(probs[i])
                    num = num + torch.exp(-10.0 * cos - 1e-6)
                    den += 1.0
            terms.append(num / den)
    return sum(terms) / len(terms)


def literal_clustering(o, labels, w: ClusteringWeights):
    """Instance-mode ClusteringSDF loss with Python loops over labels and pairs."""
    k = o.shape[1]
    p = torch.softmax(o, dim=1)
    ids = sorted(set(labels.tolist()))
    reg = 0.0
    centres = []
    for c in ids:
        rows = [r for r in range(len(labels)) if labels[r] == c]
        reg = reg + sum(torch.var(p[r], unbiased=True) for r in rows) / len(rows)
        centres.append(sum(p[r] for r in rows) / len(rows))
    reg = reg / len(ids)
    n = len(ids)
    diff = sum(torch.linalg.norm(centres[a] - centres[b]) for a in range(n) for b in range(a + 1, n)) / (n * (n - 1))
    total = w.clustering * (w.reg * reg - w.diff * diff)
    fg = [r for r in range(len(labels)) if labels[r] != 0]
    bg = [r for r in range(len(labels)) if labels[r] == 0]
    onehot = 0.0
    for r in fg:
        t = torch.zeros(k)
        t[int(torch.argmax(p[r]))] = 1.0
        onehot = onehot + ((o[r] - t) ** 2).sum()
    total = total + w.onehot * onehot / (len(fg) * k)
    bg_term = sum(torch.abs(o[r, 0] - 1) for r in bg) / len(bg)
    non_bg = w.non_bg * sum(torch.abs(o[r, 0]) for r in fg) / len(fg)
    return total + w.fgbg * (bg_term + non_bg)


WEIGHTS = ClusteringWeights(
    clustering=1.0, reg=1e4, diff=20.0, onehot=0.5, fgbg=0.2, non_bg=0.2, semantic=0.15, cross_view=0.0
)


def random_case(seed: int, rays: int = 40, k: int = 6, n_labels: int = 4):
    g = torch.Generator().manual_seed(seed)
    o = torch.sigmoid(torch.randn(rays, k, generator=g)).requires_grad_(True)
    labels = torch.randint(0, n_labels, (rays,), generator=g)
    labels[:3] = torch.arange(3)
    return o, labels


# --------------------------------------------------------------------------------- object-field


def test_object_field_losses_match_literal_implementation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(30, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    labels = torch.randint(-1, 3, (30,), generator=g)
    a = ce_loss(logits, labels)
    b = literal_ce(logits, labels)
    (ga,) = torch.autograd.grad(a, logits)
    (gb,) = torch.autograd.grad(b, logits)
    assert torch.allclose(a, b) and torch.allclose(ga, gb)

    patches = torch.randn(2, 16, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    rgb = torch.rand(2, 16, 3, generator=g, dtype=torch.float64) * 0.3
    refs = [torch.tensor([0, 5, 9]), torch.tensor([2, 3, 4, 15])]
    a = ray_pair_loss(patches, rgb, refs, threshold=0.15)
    b = literal_pair(patches, rgb, refs, threshold=0.15)
    (ga,) = torch.autograd.grad(a, patches)
    (gb,) = torch.autograd.grad(b, patches)
    assert torch.allclose(a, b) and torch.allclose(ga, gb)
    assert ga.abs().sum() > 0


def object_field(**kw):
    obj = make_objective("object-field", clicks=["v:1,1"], **kw)
    return obj


def test_object_field_sampling_error_map_and_pair_phase():
    h, w = 12, 16
    labels = np.zeros((h, w), np.int64)
    labels[3:9, 4:10] = 1
    labels[0, :] = -1
    obj = object_field(rays=50, patches=2, patch_size=4, references=3, error_cells=8)
    assert obj.feature_dim() == 2 and obj.needs() == {"rgb"}
    obj.set_labels({"v": labels}, h, w)
    g = torch.Generator().manual_seed(0)
    obj.begin_step(0, 100)
    batch = obj.sample("v", None, g)
    assert obj.sample("u", None, g) is None
    assert batch.pixel_ids.shape == (50,) and "patches" not in batch.targets
    assert (batch.targets["labels"] == torch.from_numpy(labels.reshape(-1))[batch.pixel_ids]).all()
    # CE step: the error map takes the EMA of the per-ray error in the sampled cells, when the
    # step's observations update the state (loss() itself leaves the state alone)
    logits = torch.randn(50, 2, generator=g)
    before = obj.error_maps["v"].clone()
    loss, terms = obj.loss(batch, {"features": logits}, torch.zeros(1, 2))
    assert set(terms) == {"ce"} and torch.equal(obj.error_maps["v"], before)
    obj.update_state([obj.observe(batch, {"features": logits})])
    lab = batch.targets["labels"]
    errors: dict[int, list[float]] = {}
    for i in range(50):
        if lab[i] >= 0:
            p = literal_probs(logits[i])
            cell = int(obj.cell_of(batch.pixel_ids[i : i + 1]))
            errors.setdefault(cell, []).append(math.exp(-10 * float(p[lab[i]] / torch.linalg.norm(p)) - 1e-6))
    expect = before.reshape(-1).clone()
    for cell, es in errors.items():  # rays sharing a cell: their mean error
        expect[cell] = 0.1 * expect[cell] + 0.9 * sum(es) / len(es)
    assert torch.allclose(obj.error_maps["v"].reshape(-1), expect)
    # pair phase from 75 % of the schedule: a one-off refresh of every cell, then patches
    obj.begin_step(75, 100)
    batch = obj.sample("v", None, g)
    a, b = batch.targets["refresh"]
    assert b - a == 8 * 8 and "v" not in obj.refreshed  # refreshed once the step's state update runs
    start, n_p, s = batch.targets["patches"]
    assert (n_p, s) == (2, 16) and len(batch.pixel_ids) == start + n_p * s
    for ref in batch.targets["refs"]:
        assert len(ref) == 3 and len(set(ref.tolist())) == 3 and int(ref.max()) < 16
    patch = batch.pixel_ids[start : start + s]
    ys, xs = patch // w, patch % w
    assert int(ys.max() - ys.min()) == 3 and int(xs.max() - xs.min()) == 3
    n = len(batch.pixel_ids)
    rendered = {"features": torch.randn(n, 2, generator=g, requires_grad=True), "rgb": torch.rand(n, 3, generator=g)}
    loss, terms = obj.loss(batch, rendered, torch.zeros(1, 2))
    assert set(terms) == {"ce", "pair"} and torch.isfinite(loss)
    loss.backward()
    assert rendered["features"].grad[start:].abs().sum() > 0
    obj.update_state([obj.observe(batch, rendered)])
    assert "v" in obj.refreshed and "refresh" not in obj.sample("v", None, g).targets  # once per view


def test_object_field_settings_round_trip_and_errors():
    obj = object_field(pair_start=0.5)
    again = make_objective("object-field", **obj.settings())
    assert again.settings() == obj.settings() and again.cfg.pair_start == 0.5
    with pytest.raises(GssegError, match="needs prompts"):
        make_objective("object-field")
    with pytest.raises(GssegError, match="bad click"):
        make_objective("object-field", clicks=["nonsense"])
    with pytest.raises(GssegError, match="pair_start"):
        object_field(pair_start=2.0)
    assert make_objective("object-field", clicks=["v:1,1", "v:2,2@2"]).feature_dim() == 3


# --------------------------------------------------------------------------------- clustering


def test_clustering_loss_matches_literal_implementation():
    o, labels = random_case(0)
    o64 = o.detach().double().requires_grad_(True)
    a, terms = clustering_loss(o64, labels, WEIGHTS)
    b = literal_clustering(o64, labels, WEIGHTS)
    (ga,) = torch.autograd.grad(a, o64)
    (gb,) = torch.autograd.grad(b, o64)
    assert torch.allclose(a, b) and torch.allclose(ga, gb)
    assert {"reg", "diff", "onehot", "bg", "non_bg"} <= set(terms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustering_loss_is_invariant_to_permuting_frame_ids(seed):
    o, labels = random_case(seed, n_labels=6)
    g = torch.Generator().manual_seed(100 + seed)
    new_ids = torch.randperm(50, generator=g)[:5] + 1  # ids 1..5 -> other arbitrary non-zero ids
    relabelled = labels.clone()
    for old in range(1, 6):
        relabelled[labels == old] = new_ids[old - 1]
    a, _ = clustering_loss(o, labels, WEIGHTS)
    (ga,) = torch.autograd.grad(a, o)
    b, _ = clustering_loss(o, relabelled, WEIGHTS)
    (gb,) = torch.autograd.grad(b, o)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5) and torch.allclose(ga, gb, rtol=1e-4, atol=1e-6)
    # and to reordering the rays
    perm = torch.randperm(len(labels), generator=g)
    c, _ = clustering_loss(o[perm], labels[perm], WEIGHTS)
    assert torch.allclose(a, c, rtol=1e-5, atol=1e-5)


def test_clustering_semantic_and_cross_view_terms():
    o, labels = random_case(3, k=8)
    w = ClusteringWeights(1.5, 1e4, 15.0, 0.5, 0.2, 0.33, 0.15, 0.5)
    loss, terms = clustering_loss(o, labels, w, mode="semantic", memory={1: torch.full((8,), 0.125)})
    assert "semantic" in terms and "cross_view" in terms and terms["bg"] == 0.0
    # semantic term by hand: background (0) is class K-1 with confidence 0.1
    cls = torch.where(labels == 0, 7, labels)
    expect = 0.0
    for c in sorted(set(cls.tolist())):
        rows = cls == c
        onehot = torch.zeros(8)
        onehot[c] = 1
        expect += float(torch.linalg.norm(o.detach()[rows].mean(0) - onehot)) * (0.1 if c == 7 else 1.0)
    assert math.isclose(terms["semantic"], expect / len(set(cls.tolist())), rel_tol=1e-5)


def test_comprehensive_pixels_cover_every_label():
    labels = torch.zeros(40 * 30, dtype=torch.int64)
    labels[:5] = 7  # a tiny label still gets its pixels
    labels[100:400] = 3
    g = torch.Generator().manual_seed(0)
    ids = comprehensive_pixels(labels, 512, 512, g)
    assert len(ids) >= 1024 and ids.max() < len(labels)
    first = ids[: len(ids) - 512]
    assert len(set(first.tolist())) == len(first)  # no duplicates in the comprehensive part
    assert (labels[first] == 7).sum() >= 3 and (labels[first] == 3).sum() >= math.ceil(300 / 1200 * 512)


def label_context(tmp_path, frames: dict[str, np.ndarray]) -> FeatureContext:
    from types import SimpleNamespace

    folder = tmp_path / "labels"
    folder.mkdir(exist_ok=True)
    for v, lab in frames.items():
        Image.fromarray(lab.astype(np.uint16)).save(folder / f"{v}.png")
    h, w = next(iter(frames.values())).shape
    ds = SimpleNamespace(masks_dir=tmp_path / "masks")
    return FeatureContext(dataset=ds, store=None, views=list(frames), height=h, width=w), str(folder)


def test_clustering_refuses_too_few_channels_and_uses_keyframes(tmp_path):
    busy = np.repeat(np.arange(6), 8).reshape(6, 8)  # labels 0..5
    empty = np.zeros((6, 8), np.int64)
    ctx, folder = label_context(tmp_path, {"a": busy, "b": empty})
    with pytest.raises(GssegError, match="5 labels but only 5 channels"):
        make_objective("clustering", dim=5, labels_dir=folder).prepare(ctx)
    obj = make_objective("clustering", dim=6, labels_dir=folder, label_pixels=16, random_pixels=8)
    obj.prepare(ctx)
    assert obj.keyframes == ["a"] and obj.weights.cross_view > 0
    g = torch.Generator().manual_seed(0)
    batch = obj.sample("b", ctx, g)  # an empty frame is replaced by a key frame
    assert batch.view == "a" and len(batch.pixel_ids) >= 24
    assert set(batch.targets["labels"].tolist()) == set(range(6))
    with pytest.raises(GssegError, match="class ids up to 5"):
        make_objective("clustering", dim=6, mode="semantic", labels_dir=folder).prepare(ctx)
    with pytest.raises(GssegError, match="semantic mode needs"):
        make_objective("clustering", mode="semantic")
    assert make_objective("clustering").weights.cross_view == 0.0  # no consistent labels: off


def test_clustering_activation_is_sigmoid():
    obj = make_objective("clustering", dim=4)
    f = obj.init_features(10, torch.Generator().manual_seed(0))
    assert f.shape == (10, 4) and torch.allclose(obj.activate(f), torch.sigmoid(f))
    assert obj.kind == "logits"
