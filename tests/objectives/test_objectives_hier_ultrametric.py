"""Ultrametric Feature Fields objective: tree distances, pair sampling and the loss against
literal implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gsseg.objectives import make_objective
from gsseg.objectives.ultrametric import (
    UltrametricSettings,
    build_units,
    connect_components,
    depth_continuity,
    knn_edges,
    merge_edges,
    pixel_knn_graph,
    sample_from_patch_sets,
    uff_loss,
    ultrametric_distance,
)


def random_connected_graph(rng, n, extra):
    """A random spanning tree plus ``extra`` random edges, distinct random weights."""
    perm = rng.permutation(n)
    src = [perm[i] for i in range(1, n)]
    dst = [perm[rng.integers(0, i)] for i in range(1, n)]
    for _ in range(extra):
        a, b = rng.integers(0, n, 2)
        if a != b:
            src.append(a)
            dst.append(b)
    w = rng.permutation(len(src)).astype(np.float64) + rng.random(len(src)) * 0.5
    return np.asarray(src), np.asarray(dst), w


def minimax_brute_force(n, src, dst, w):
    """d[u,v] = min over paths of the max edge weight (Floyd–Warshall in the (min, max) semiring)."""
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0.0)
    for a, b, x in zip(src, dst, w):
        d[a, b] = min(d[a, b], x)
        d[b, a] = min(d[b, a], x)
    for k in range(n):
        d = np.minimum(d, np.maximum(d[:, k : k + 1], d[k : k + 1, :]))
    return d


@pytest.mark.parametrize("seed", range(5))
def test_ultrametric_distance_is_minimax_path_distance(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 30))
    src, dst, w = random_connected_graph(rng, n, int(rng.integers(0, 3 * n)))
    u, v = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    got = ultrametric_distance(n, src, dst, w, u.ravel(), v.ravel()).reshape(n, n)
    assert np.allclose(got, minimax_brute_force(n, src, dst, w))


def test_merge_edge_is_heaviest_edge_on_mst_path():
    rng = np.random.default_rng(7)
    n = 12
    src, dst, w = random_connected_graph(rng, n, 20)
    u = rng.integers(0, n, 40)
    v = rng.integers(0, n, 40)
    e = merge_edges(n, src, dst, w, u, v)
    ref = minimax_brute_force(n, src, dst, w)
    same = u == v
    assert (e[same] == -1).all()
    assert np.allclose(w[e[~same]], ref[u[~same], v[~same]])


def test_knn_edges_and_bridges():
    xy = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [10, 10], [11, 10], [10, 11], [10, 11]], dtype=np.float64)
    src, dst = knn_edges(xy, 2)
    assert (src < dst).all() and len(set(zip(src.tolist(), dst.tolist()))) == len(src)
    degree = np.bincount(np.concatenate([src, dst]), minlength=8)
    assert (degree >= 2).all()  # every point keeps its 2 nearest neighbours
    d = np.linalg.norm(xy[src] - xy[dst], axis=1)
    assert d.max() < 2  # never across the two clusters with k = 2
    b_src, b_dst, n_comp = connect_components(8, src, dst)
    assert n_comp == 2 and len(b_src) == 1
    all_src, all_dst = np.concatenate([src, b_src]), np.concatenate([dst, b_dst])
    assert connect_components(8, all_src, all_dst)[2] == 1


def brute_force_knn(ids, width, k):
    """{sample: its k nearest other samples} by (squared distance, index), by sorting all of them."""
    x, y = ids % width, ids // width
    out = {}
    for i in range(len(ids)):
        d2 = (x - x[i]) ** 2 + (y - y[i]) ** 2
        others = [j for j in np.lexsort((np.arange(len(ids)), d2)) if j != i]
        out[i] = set(others[:k])
    return out


def check_knn_graph(ids, width, height, k, src, dst, n_bridges):
    n = len(ids)
    kk = min(k, n - 1)
    knn_src, knn_dst = src[: len(src) - n_bridges], dst[: len(dst) - n_bridges]
    assert (knn_src < knn_dst).all() and len(set(zip(knn_src.tolist(), knn_dst.tolist()))) == len(knn_src)
    edges = set(zip(knn_src.tolist(), knn_dst.tolist()))
    # ties are broken by sample index on both sides, so the edge sets agree exactly
    truth = {(min(i, j), max(i, j)) for i, nbrs in brute_force_knn(ids, width, kk).items() for j in nbrs}
    assert edges == truth
    assert connect_components(n, src, dst)[2] == 1  # bridges connect everything
    assert connect_components(n, knn_src, knn_dst)[2] == n_bridges + 1


@pytest.mark.parametrize(
    "width,height,n,k",
    [(32, 24, 256, 10), (16, 12, 60, 3), (64, 64, 40, 10), (7, 5, 6, 10), (9, 7, 1, 3), (20, 10, 30, 0)],
)
def test_pixel_knn_graph_is_exact(width, height, n, k):
    from gsseg.render.extensions import load_cpu_extension

    if load_cpu_extension() is None:
        pytest.skip("no C++ extension")
    rng = np.random.default_rng(width * 1000 + n)
    ids = rng.integers(0, width * height, n)  # repeats included
    src, dst, n_bridges = pixel_knn_graph(ids, width, height, k)
    if k == 0 or n == 1:
        assert n_bridges == n - 1 and len(src) == n - 1
        return
    check_knn_graph(ids, width, height, k, src, dst, n_bridges)


def test_pixel_knn_graph_without_the_extension(monkeypatch):
    """The k-d tree fallback links every sample to k samples at its k nearest distances."""
    from gsseg.render import extensions

    monkeypatch.setattr(extensions, "load_cpu_extension", lambda *a, **kw: None)
    rng = np.random.default_rng(3)
    ids = np.concatenate([rng.integers(0, 100, 50), rng.integers(1000, 1100, 20)])  # two clusters
    src, dst, n_bridges = pixel_knn_graph(ids, 50, 40, 4)
    assert n_bridges >= 1
    x, y = ids % 50, ids // 50
    knn = len(src) - n_bridges
    for i in range(len(ids)):
        d2 = np.sort((x - x[i]) ** 2 + (y - y[i]) ** 2)[1:5]
        mine = np.concatenate([dst[:knn][src[:knn] == i], src[:knn][dst[:knn] == i]])
        got = np.sort((x[mine] - x[i]) ** 2 + (y[mine] - y[i]) ** 2)
        assert len(got) >= 4 and (got[:4] <= d2[-1]).all()
    assert connect_components(len(ids), src, dst)[2] == 1


def test_build_units_walks_the_tree():
    # patches 0..3: mask A = {0,1,2}, B = {1,2}, C = {2}; patch 3 in no mask
    membership = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]], dtype=bool)
    parent = np.array([-1, 0, 1])
    pos_a, pos_b, neg_a, neg_b, owner, region = build_units(membership, parent, True)
    units = {
        (
            tuple(np.flatnonzero(pa)),
            tuple(np.flatnonzero(pb)),
            tuple(np.flatnonzero(na)),
            tuple(np.flatnonzero(nb)),
            int(o),
        )
        for pa, pb, na, nb, o in zip(pos_a, pos_b, neg_a, neg_b, owner)
    }
    expected = {
        ((0, 1, 2), (0, 1, 2), (0, 1, 2), (3,), 0),  # A: inside / outside
        ((0,), (0,), (0,), (3,), 0),  # A minus its child B
        ((1, 2), (1, 2), (1, 2), (0, 3), 1),  # B
        ((1,), (1,), (1,), (0, 3), 1),  # B minus its child C
        ((2,), (2,), (2,), (0, 1, 3), 2),  # C
        ((2,), (2,), (2,), (1,), 2),  # C split from B \ C
        ((2,), (1,), (1, 2), (0,), 2),  # that split is positive at B; B split from A \ B
        ((1, 2), (0,), (0, 1, 2), (3,), 2),  # positive at the root A, negative against outside
    }
    assert units == expected
    assert int(region.sum()) == 2
    flat = build_units(membership, parent, False)
    assert len(flat[4]) == 3


def test_sample_from_patch_sets_is_uniform_over_member_samples():
    g = torch.Generator().manual_seed(0)
    sample_patch = torch.randint(0, 6, (40,), generator=g)
    sample_patch[sample_patch == 5] = 4  # patch 5 has no samples
    sets = torch.tensor(
        [[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0]], dtype=torch.bool
    )
    idx, counts = sample_from_patch_sets(sets, sample_patch, 4000, g)
    member = sets[:, sample_patch]  # [S,P]
    assert counts.tolist() == member.sum(1).tolist()
    for row in (0, 2, 3):
        assert member[row, idx[row]].all()
        hits = torch.bincount(idx[row], minlength=40)[member[row]].double()
        assert (hits > 0).all()
        expected = 4000 / int(counts[row])
        assert (hits - expected).abs().max() < 5 * expected**0.5 + 5  # uniform within sampling noise


def literal_uff_loss(f_raw, src, dst, boundary, bridge, pos, neg, cfg):
    """Loops straight from the formulas (Kruskal MST, path search for the heaviest edge)."""
    n = f_raw.shape[0]
    norms = [f_raw[i].norm() for i in range(n)]
    f = [f_raw[i] / (norms[i] + 1e-6) for i in range(n)]
    norm_loss = sum((x - 1) ** 2 for x in norms) / n
    edges = []
    for e in range(len(src)):
        a, b = int(src[e]), int(dst[e])
        if bool(bridge[e]):
            w = 1e3
        else:
            w = 1 - float((f[a] @ f[b]).detach()) + cfg.boundary_penalty * float(boundary[e])
        edges.append((w, e, a, b))
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    mst = {i: [] for i in range(n)}
    for w, e, a, b in sorted(edges):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            mst[a].append((b, w, e))
            mst[b].append((a, w, e))

    def heaviest(u, v):
        stack = [(u, -1, None)]
        seen = {u: None}
        while stack:
            node, _, _ = stack.pop()
            for nxt, w, e in mst[node]:
                if nxt not in seen:
                    seen[nxt] = (node, w, e)
                    stack.append((nxt, w, e))
        best, node = None, v
        while node != u:
            prev, w, e = seen[node]
            if best is None or w > best[0]:
                best = (w, e)
            node = prev
        return best[1]

    def ultra(u, v):
        if u == v:
            return torch.tensor(1.0, dtype=f_raw.dtype)
        e = heaviest(u, v)
        if bool(bridge[e]):
            return torch.tensor(-1.0, dtype=f_raw.dtype)
        return f[int(src[e])] @ f[int(dst[e])]

    def ce(sp, sn):
        logits = [sp / cfg.tau] + [x / cfg.tau for x in sn]
        return -(logits[0] - torch.logsumexp(torch.stack(logits), 0))

    lu, le = 0, 0
    for j in range(len(pos)):
        a, b = int(pos[j, 0]), int(pos[j, 1])
        lu = lu + ce(ultra(a, b), [ultra(int(x), int(y)) for x, y in neg[j]])
        le = le + ce(f[a] @ f[b], [f[int(x)] @ f[int(y)] for x, y in neg[j]])
    return cfg.norm_weight * norm_loss + cfg.ultra_weight * lu / len(pos) + cfg.euclid_weight * le / len(pos)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("neg_ratio", [1, 2])
def test_uff_loss_matches_literal(seed, neg_ratio):
    g = torch.Generator().manual_seed(seed)
    n, dim = 30, 5
    f = torch.randn(n, dim, generator=g, dtype=torch.float64)
    xy = torch.randint(0, 8, (n, 2), generator=g).double().numpy()
    src, dst = knn_edges(xy, 3)
    b_src, b_dst, _ = connect_components(n, src, dst)
    src_t = torch.from_numpy(np.concatenate([src, b_src]))
    dst_t = torch.from_numpy(np.concatenate([dst, b_dst]))
    bridge = torch.zeros(len(src_t), dtype=torch.bool)
    bridge[len(src) :] = True
    boundary = torch.rand(len(src_t), generator=g) < 0.3
    pos = torch.randint(0, n, (12, 2), generator=g)
    pos[0, 1] = pos[0, 0]  # u == v pair: similarity 1
    neg = torch.randint(0, n, (12, neg_ratio, 2), generator=g)
    cfg = UltrametricSettings(neg_ratio=neg_ratio, norm_weight=0.7, ultra_weight=1.3, euclid_weight=0.9, tau=0.2)
    f1 = f.clone().requires_grad_(True)
    f2 = f.clone().requires_grad_(True)
    fast, terms = uff_loss(f1, src_t, dst_t, boundary, bridge, pos, neg, cfg)
    slow = literal_uff_loss(f2, src_t, dst_t, boundary, bridge, pos, neg, cfg)
    assert terms["pairs"] == 12
    assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-10)
    fast.backward()
    slow.backward()
    assert torch.allclose(f1.grad, f2.grad, rtol=1e-7, atol=1e-10)


def test_depth_continuity_matches_formula():
    g = torch.Generator().manual_seed(3)
    d = torch.rand(20, 4, generator=g, dtype=torch.float64) * 2 + 1
    a = torch.rand(20, 4, generator=g, dtype=torch.float64) * 0.2 + 0.85
    d.requires_grad_(True)
    got = depth_continuity(d, a, 0.9)
    terms = []
    for t in range(20):
        if all(float(x) > 0.9 for x in a[t]):
            val = abs(d[t, 0] - 3 * d[t, 1] + 3 * d[t, 2] - d[t, 3]) / (float(d[t].max().detach()) + 1e-2) ** 3 - 0.1
            terms.append(torch.clamp(val, min=0))
    assert torch.allclose(got, sum(terms) / len(terms))
    linear = torch.arange(4, dtype=torch.float64)[None].repeat(3, 1) + 2
    assert float(depth_continuity(linear, torch.ones(3, 4))) == 0.0


def test_settings_and_presets():
    obj = make_objective("ultrametric", preset="paper")
    assert obj.feature_dim() == 128 and obj.cfg.p_iou == 0.85
    assert make_objective("ultrametric", dim=8).feature_dim() == 8
    from gsseg.errors import GssegError

    with pytest.raises(GssegError):
        make_objective("ultrametric", tau=0)
    with pytest.raises(GssegError):
        make_objective("ultrametric", knn_size=3)
    assert math.isclose(obj.settings()["tau"], 0.1)
