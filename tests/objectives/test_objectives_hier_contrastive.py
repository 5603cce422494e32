"""OmniSeg3D hierarchical ProtoNCE against a literal loop implementation of its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsseg.errors import GssegError
from gsseg.objectives import make_objective
from gsseg.objectives.base import PixelBatch
from gsseg.objectives.contrastive import level_index, proto_nce


def literal_proto_nce(f, t, corr, ignore, min_pixnum, phi_min, decay, hierarchical, normalize):
    """Straight from the formulas: loops over anchors, levels, pixels and clusters."""
    if normalize:
        f = f / f.norm(dim=1, keepdim=True).detach()
    ids = [int(v) for v in sorted(set(t.tolist())) if ignore is None or v != ignore]
    clusters = [k for k in ids if int((t == k).sum()) > min_pixnum]
    protos, phis = [], []
    for k in clusters:
        fk = f[t == k]
        u = fk.mean(0)
        nk = fk.shape[0]
        phi = sum(float((fk[i] - u).norm().detach()) for i in range(nk)) / (nk * math.log(nk + 10))
        protos.append(u)
        phis.append(min(max(10 * phi, phi_min), 1.0))
    total = f.sum() * 0
    for ki in clusters:
        fi = f[t == ki]
        a = [int(corr[ki, kk]) for kk in clusters]
        levels = sorted({v for v in a if v != 0}, reverse=True)
        if not hierarchical:
            levels = levels[:1]
        maxlog = [None] * fi.shape[0]
        for lev, value in enumerate(levels):
            pos = [k for k in range(len(clusters)) if a[k] == value]
            level_loss = 0
            for p in range(fi.shape[0]):
                d = [torch.exp(fi[p] @ protos[m] / phis[m]) for m in range(len(clusters))]
                denom = sum(d) + 1e-6
                terms = []
                for k in pos:
                    lk = -torch.log(d[k] / denom)
                    if lev > 0:
                        lk = torch.maximum(lk, maxlog[p])
                    terms.append(lk)
                level_loss = level_loss + sum(terms) / len(terms)
                maxlog[p] = torch.stack(terms).max()
            total = total + decay**lev * level_loss
    return total


def random_view(seed, n_pix=60, n_masks=5, n_patches=7, dim=4):
    rng = np.random.default_rng(seed)
    membership = rng.random((n_masks, n_patches)) < 0.5
    membership[:, 0] = False  # patch 0 = no mask
    membership[0, 1:] = True  # one mask covering everything else
    u = membership.astype(np.int64)
    corr = torch.from_numpy(u.T @ u)
    t = torch.from_numpy(rng.integers(0, n_patches, n_pix))
    f = torch.randn(n_pix, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return f, t, corr


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hierarchical", [True, False])
@pytest.mark.parametrize("normalize,phi_min,min_pix", [(True, 0.5, 3), (False, 0.1, 2)])
def test_proto_nce_matches_literal(seed, hierarchical, normalize, phi_min, min_pix):
    f, t, corr = random_view(seed)
    f1 = f.clone().requires_grad_(True)
    f2 = f.clone().requires_grad_(True)
    fast, stats = proto_nce(f1, t, corr, 0, min_pix, phi_min, 0.3, hierarchical, normalize)
    slow = literal_proto_nce(f2, t, corr, 0, min_pix, phi_min, 0.3, hierarchical, normalize)
    assert stats["clusters"] > 1
    assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-9)
    fast.backward()
    slow.backward()
    assert torch.allclose(f1.grad, f2.grad, rtol=1e-7, atol=1e-9)


def test_mean_reduction_divides_by_anchor_pixels():
    f, t, corr = random_view(4)
    s, _ = proto_nce(f, t, corr, 0, 2, 0.5, 0.5, True, True, "sum")
    m, _ = proto_nce(f, t, corr, 0, 2, 0.5, 0.5, True, True, "mean")
    counts = torch.bincount(t[t != 0])
    n_anchor = int(counts[counts > 2].sum())
    assert torch.allclose(m * n_anchor, s)


def test_real_patch_zero_is_kept_when_nothing_is_uncovered():
    f, t, corr = random_view(5)
    with_ignore, st1 = proto_nce(f, t, corr, 0, 2)
    without, st2 = proto_nce(f, t, corr + 1, None, 2)  # every patch now shares one mask
    assert st2["clusters"] == st1["clusters"] + 1


def test_level_index_drops_only_zero():
    corr = torch.tensor([[3, 2, 2, 0], [2, 2, 1, 0], [2, 1, 4, 1], [0, 0, 1, 1]])
    lv = level_index(corr)
    assert lv.tolist() == [[0, 1, 1, -1], [0, 0, 1, -1], [1, 2, 0, 2], [-1, -1, 0, 0]]


def test_objective_loss_terms_and_presets():
    obj = make_objective("contrastive", preset="omniseg3d-gs", dim=4)
    assert obj.cfg.level_decay == 0.2 and obj.feature_dim() == 4
    f, t, corr = random_view(6)
    feats = torch.randn(10, 4, requires_grad=True)
    batch = PixelBatch("v", torch.arange(len(t)), {"patch": t, "correlation": corr, "ignore": 0})
    obj.cfg.min_pixnum = 2
    loss, terms = obj.loss(batch, {"features": f.float()}, feats)
    expected = 1e-3 * proto_nce(f.float(), t, corr, 0, 2, 0.5, 0.2)[0] + 100 * ((feats.norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(loss, expected)
    assert {"nce", "norm", "clusters"} <= set(terms)
    loss.backward()
    assert feats.grad is not None and feats.grad.abs().sum() > 0
    init = obj.init_features(50, torch.Generator().manual_seed(0))
    assert torch.allclose(init.norm(dim=1), torch.ones(50))


def test_bad_settings_raise():
    with pytest.raises(GssegError):
        make_objective("contrastive", norm_loss="everywhere")
    with pytest.raises(GssegError):
        make_objective("contrastive", preset="nope")
    with pytest.raises(GssegError):
        make_objective("contrastive", colour=3)
    with pytest.raises(GssegError):
        make_objective("no-such-objective")
