"""NC, NC dense, SI and VC of one view as UFF's official scripts compute them.

Rules (``shared/parity/README.md``): GT segments under ``min_size`` pixels and each level's
``background`` label are not scored; the prediction is a stack of C cuts (label maps) in which no
label is special for NC / NC dense / SI (an unassigned label is the segment of all unassigned
pixels of its cut); image score = plain mean over scored segments (NaN when none).

- NC: per GT segment g, draw p in g; score max_t IoU(g, seg_t(p)). Exact: the mean over all p.
- NC dense: max over cuts and labels of IoU(g, {cut_t = l}).
- SI (paper; no official code): draw p1, p2 in g; t* = the cut fitting g best at p1 (first cut on
  ties); score 1 when p1 and p2 share their cut-t* label. Exact: enumeration of all pairs.
- VC: draw p in g, t* as above; E = {x in g : V(x), V'(tau(x)), cut'_t*(tau(x)) != 0}; draw p' in E
  (iteration dropped when E is empty); score IoU(A, B) with A = {y in V : cut_t*(y) = cut_t*(p')},
  B = {y in V : cut'_t*(tau(y)) = cut'_t*(tau(p'))}. Exact: the expectation given a recorded draw,
  sum_t w_t mean_{E_t} s_t / sum_t w_t over cuts with E_t non-empty (w_t: share of g choosing t).

One pass over the cuts computes the best-fitting cut of every pixel for every level at once (per
cut: one compact relabelling and one pixel-pair count per level); a second pass computes VC (and
the sampled SI). No per-segment loop touches the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gsseg.eval.metrics.contingency import sample_in_segments
from gsseg.eval.official.geometry import PairGeometry
from gsseg.eval.official.levels import ScoredLevel

DEFAULT_SAMPLES = 100
DEFAULT_MIN_SIZE = 20
UNASSIGNED = 0
_DIRECT_LABELS = 1 << 22  # labels below this are relabelled by a lookup table instead of a sort
DENSE_TABLE = 1 << 20  # pair tables up to max(this, 4 x pixels) entries are dense, larger ones sparse


@dataclass
class ImageScore:
    """One image, one level, one metric: ``image`` (mean over scored segments, NaN when none),
    ``segments`` {gt id: score}; ``detail`` (VC, exact mode) {gt id: {"w", "n_eligible", "mean_score"}}
    per cut."""

    image: float
    segments: dict[int, float]
    detail: dict[int, dict[str, list[float]]] = field(default_factory=dict)


def compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index [P] int64 into values, values [K] sorted) of a flat integer label array."""
    flat = np.asarray(labels).ravel()
    if flat.size and np.issubdtype(flat.dtype, np.integer) and flat.min() >= 0 and flat.max() < _DIRECT_LABELS:
        present = np.bincount(flat) > 0
        lut = np.cumsum(present) - 1
        return lut[flat], np.flatnonzero(present)
    values, inv = np.unique(flat, return_inverse=True)
    return inv.ravel().astype(np.int64), values


def _dense(entries: int, pixels: int) -> bool:
    """Whether a pair table of ``entries`` cells is built dense (else sparse over occurring pairs)."""
    return DENSE_TABLE > 0 and entries <= max(4 * pixels, DENSE_TABLE)


def pair_counts(
    x: np.ndarray, y: np.ndarray, kx: int, ky: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Joint counts of compact labels x, y [P]: (count of each pixel's (x, y) pair [P], and over the
    Q pairs that occur: x ids [Q], y ids [Q], counts [Q])."""
    key = x * ky + y
    if _dense(kx * ky, key.size):
        table = np.bincount(key, minlength=kx * ky)
        nz = np.flatnonzero(table)
        return table[key], nz // ky, nz % ky, table[nz]
    uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    return counts[inv.ravel()], uniq // ky, uniq % ky, counts


class _Level:
    """Per-level state: compact GT, scored segments, and each pixel's best cut so far."""

    def __init__(self, level: ScoredLevel, size: int, min_size: int) -> None:
        self.g, self.values = compact(level.labels)
        if self.g.size != size:
            raise ValueError(f"ground truth has {self.g.size} pixels, the cuts {size}")
        self.n = len(self.values)
        self.area = np.bincount(self.g, minlength=self.n)
        keep = self.area >= max(min_size, 1)
        if level.background is not None:
            keep &= self.values != level.background
        self.segs = np.flatnonzero(keep)
        self.best = np.full(size, -1.0)
        self.tstar = np.zeros(size, dtype=np.int64)
        self.si = np.zeros(size)
        self.dense = np.zeros(self.n)

    def fit(self, t: int, k: np.ndarray, n_k: int, k_area: np.ndarray) -> None:
        """Fold cut ``t`` (compact labels k [P], n_k of them, areas k_area) into the running best."""
        key = self.g * n_k + k
        if _dense(self.n * n_k, key.size):  # dense (segment, label) table
            joint = np.bincount(key, minlength=self.n * n_k).reshape(self.n, n_k)
            union = self.area[:, None] + k_area[None, :] - joint
            table = np.divide(joint, union, out=np.zeros(joint.shape), where=union > 0)
            self.dense = np.maximum(self.dense, table.max(axis=1))
            iou = table.ravel()[key]
            share = (joint / np.maximum(self.area, 1)[:, None]).ravel()
            pair = key
        else:  # sparse: only the pairs that occur
            uniq, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
            gx, ky = uniq // n_k, uniq % n_k
            pair_iou = counts / (self.area[gx] + k_area[ky] - counts)
            np.maximum.at(self.dense, gx, pair_iou)
            pair = inv.ravel()
            iou = pair_iou[pair]
            share = counts / self.area[gx]
        better = iou > self.best  # strict: the first cut keeps ties
        np.copyto(self.best, iou, where=better)
        np.copyto(self.tstar, t, where=better)
        np.copyto(self.si, share[pair], where=better)

    def per_segment(self, pixel_values: np.ndarray) -> np.ndarray:
        """Mean of a per-pixel value over each segment: [n]."""
        return np.bincount(self.g, weights=pixel_values, minlength=self.n) / np.maximum(self.area, 1)


def group_order(index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels grouped by compact label: (order [P] positions sorted by label, starts [k+1]); a radix
    sort on 16-bit keys when the labels fit."""
    flat = np.asarray(index).ravel()
    keys = flat.astype(np.uint16) if k <= 1 << 16 else flat
    order = np.argsort(keys, kind="stable")
    starts = np.zeros(k + 1, dtype=np.int64)
    starts[1:] = np.cumsum(np.bincount(flat, minlength=k))
    return order, starts


def _scores(values: np.ndarray, segs: np.ndarray, per_seg: np.ndarray, ok: np.ndarray | None = None) -> ImageScore:
    keep = segs if ok is None else segs[ok[segs]]
    out = {int(values[s]): float(per_seg[s]) for s in keep}
    return ImageScore(float(np.mean(list(out.values()))) if out else float("nan"), out)


def score_view(
    levels: dict[str, ScoredLevel],
    cuts: np.ndarray,
    partner_cuts: np.ndarray | None = None,
    geometry: PairGeometry | None = None,
    exact: bool = True,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
) -> dict[str, dict[str, ImageScore]]:
    """{metric: {level: ImageScore}} for metrics ``nc``, ``nc_dense``, ``si`` and (with a partner)
    ``vc`` of one view.

    levels: GT maps [H,W] per level; cuts: [C,H,W] integer label maps (0 = unassigned); partner_cuts:
    [C,H',W'] the same cuts in the partner view; geometry: tau / V / V' of the pair. ``exact``
    enumerates the official expectation; otherwise ``samples`` seeded draws per segment.
    """
    stack = np.asarray(cuts)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError(f"cuts must be [C,H,W] with C >= 1, got {list(stack.shape)}")
    size = stack.shape[1] * stack.shape[2]
    states = {name: _Level(lv, size, min_size) for name, lv in levels.items()}
    for name, lv in levels.items():
        if np.shape(lv.labels) != stack.shape[1:]:
            raise ValueError(f"level {name}: ground truth {list(np.shape(lv.labels))} and cuts {list(stack.shape[1:])}")
    compacted = []  # (compact labels [P] int32, count) of each cut, reused by VC
    for t in range(stack.shape[0]):
        k, kv = compact(stack[t])
        k_area = np.bincount(k, minlength=len(kv))
        for st in states.values():
            st.fit(t, k, len(kv), k_area)
        compacted.append((k.astype(np.int32), len(kv)))

    out: dict[str, dict[str, ImageScore]] = {"nc": {}, "nc_dense": {}, "si": {}}
    draws: dict[str, dict[str, np.ndarray]] = {}
    for name, st in states.items():
        out["nc_dense"][name] = _scores(st.values, st.segs, st.dense)
        if exact:
            out["nc"][name] = _scores(st.values, st.segs, st.per_segment(st.best))
            out["si"][name] = _scores(st.values, st.segs, st.per_segment(st.si))
            continue
        rng = np.random.default_rng(seed)
        if len(st.segs):
            order, starts = group_order(st.g, st.n)
            p = sample_in_segments(order, starts, st.segs, samples, rng)
            p2 = sample_in_segments(order, starts, st.segs, samples, rng)
            u = rng.random(p.shape)
            draws[name] = {"p": p, "p2": p2, "u": u, "order": order, "starts": starts}
        else:
            p = np.zeros((0, samples), dtype=np.int64)
            draws[name] = {"p": p, "p2": p, "u": np.zeros((0, samples))}
        nc = np.zeros(st.n)
        nc[st.segs] = st.best[p].mean(axis=1)
        out["nc"][name] = _scores(st.values, st.segs, nc)

    with_vc = partner_cuts is not None and geometry is not None
    if not with_vc and exact:
        return out
    if with_vc:
        assert partner_cuts is not None and geometry is not None
        pstack = np.asarray(partner_cuts)
        pstack = pstack[None] if pstack.ndim == 2 else pstack
        if pstack.ndim != 3 or pstack.shape[0] != stack.shape[0]:
            raise ValueError(f"partner cuts must be [{stack.shape[0]},H,W], got {list(pstack.shape)}")
        if geometry.tau.size != size or geometry.visible_partner.size != pstack.shape[1] * pstack.shape[2]:
            raise ValueError("pair geometry and cut sizes differ")
        vis = geometry.visible
        tau = geometry.tau
        seen_back = vis & geometry.visible_partner[tau]
        n_cuts = stack.shape[0]
        n_elig = {name: np.zeros((st.n, n_cuts), dtype=np.int64) for name, st in states.items()}
        sum_s = {name: np.zeros((st.n, n_cuts)) for name, st in states.items()}
        weight = {  # w[g, t]: share of g's pixels whose best-fitting cut is t
            name: np.bincount(st.g * n_cuts + st.tstar, minlength=st.n * n_cuts).reshape(st.n, n_cuts)
            / np.maximum(st.area, 1)[:, None]
            for name, st in states.items()
        }
        vc_sum = {name: np.zeros(len(st.segs)) for name, st in states.items()}
        vc_rec = {name: np.zeros(len(st.segs), dtype=np.int64) for name, st in states.items()}
    si_hits = {name: np.zeros(len(st.segs)) for name, st in states.items()}

    for t in range(stack.shape[0]):
        cut = stack[t].ravel()
        if not exact:
            for name, st in states.items():
                d = draws[name]
                chose = st.tstar[d["p"]] == t
                si_hits[name] += (chose & (cut[d["p"]] == cut[d["p2"]])).sum(axis=1)
        if not with_vc:
            continue
        p_raw = pstack[t].ravel()
        kp, kpv = compact(p_raw)
        unassigned = np.flatnonzero(kpv == UNASSIGNED)
        pulled = kp[tau]  # the partner's compact label pulled back to every view pixel
        elig = seen_back if not len(unassigned) else seen_back & (pulled != unassigned[0])
        a = compacted[t][0][vis].astype(np.int64)
        b = pulled[vis]
        n_a, n_b = compacted[t][1], len(kpv)
        joint, _, _, _ = pair_counts(a, b, n_a, n_b)
        ra = np.bincount(a, minlength=n_a)
        cb = np.bincount(b, minlength=n_b)
        s_vis = joint / (ra[a] + cb[b] - joint)
        elig_vis = elig[vis]
        elig_ids = np.flatnonzero(vis)[elig_vis]
        s_elig = s_vis[elig_vis]
        if not exact:
            s_full = np.zeros(size)
            s_full[elig_ids] = s_elig
        for name, st in states.items():
            if exact:
                ge = st.g[elig_ids]
                n_elig[name][:, t] = np.bincount(ge, minlength=st.n)
                sum_s[name][:, t] = np.bincount(ge, weights=s_elig, minlength=st.n)
                continue
            if not len(st.segs):
                continue
            # p' = the r-th eligible pixel of g (pixel order), found by a running count over g's pixels
            d = draws[name]
            rows, cols = np.nonzero(st.tstar[d["p"]] == t)
            order, starts = d["order"], d["starts"]
            running = np.cumsum(elig[order])
            before = np.concatenate([[0], running])
            seg = st.segs[rows]
            cnt = before[starts[seg + 1]] - before[starts[seg]]
            ok = cnt > 0
            rank = np.floor(d["u"][rows[ok], cols[ok]] * cnt[ok]).astype(np.int64)
            pos = np.searchsorted(running, before[starts[seg[ok]]] + rank + 1)
            got = s_full[order[pos]]
            np.add.at(vc_sum[name], rows[ok], got)
            np.add.at(vc_rec[name], rows[ok], 1)

    if not exact:
        for name, st in states.items():
            si = np.zeros(st.n)
            si[st.segs] = si_hits[name] / samples
            out["si"][name] = _scores(st.values, st.segs, si)
    if not with_vc:
        return out
    out["vc"] = {}
    for name, st in states.items():
        if not exact:
            vc = np.zeros(st.n)
            rec = np.zeros(st.n, dtype=np.int64)
            vc[st.segs] = vc_sum[name] / np.maximum(vc_rec[name], 1)
            rec[st.segs] = vc_rec[name]
            out["vc"][name] = _scores(st.values, st.segs, vc, rec > 0)
            continue
        has = n_elig[name] > 0
        mean = np.divide(sum_s[name], n_elig[name], out=np.zeros_like(sum_s[name]), where=has)
        w = weight[name] * has
        den = w.sum(axis=1)
        vc = np.divide((w * mean).sum(axis=1), den, out=np.zeros(st.n), where=den > 0)
        score = _scores(st.values, st.segs, vc, den > 0)
        score.detail = {
            int(st.values[s]): {
                "w": weight[name][s].tolist(),
                "n_eligible": n_elig[name][s].astype(float).tolist(),
                "mean_score": mean[s].tolist(),
            }
            for s in st.segs
        }
        out["vc"][name] = score
    return out
