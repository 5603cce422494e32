"""Average linkage above single-linkage atoms: the scene hierarchy's default tree.

Single linkage over a spatial kNN graph (the UFF 3D protocol) has two failure modes on lifted
features, both measured on the built-in scenes:

- chaining: a few Gaussians with blended features where a mug stands on the table join the
  two at a low distance, so the mug never appears as a segment of its own;
- spatially separate members of one segment (a tea set: mug and teapot; any group of
  objects that do not touch) share no kNN edge, so they can only merge after everything
  between them has.

So the tree is built in two stages. Below ``atom_threshold`` it is the single-linkage tree:
its components there ("atoms") are sets of Gaussians with nearly identical features, far
finer than any part. Above, atoms are merged by average linkage (UPGMA) on the distances
between their mean feature vectors, over all atom pairs, not only spatial neighbours: the
distance of two segments is the mean over their atom pairs, which no single bridging edge
can lower, and two objects with similar features merge wherever they stand. With perfect
masks on tabletop NC rose from 0.73 (single linkage on the same Gaussians) to 0.86; with
medium-noise masks from 0.56 to 0.70 (``benchmarks/RESULTS.md``, ladder).

Distances are the segmentation graph's: (1 − cos)/2 of unit embeddings, total variation
|p − q|₁/2 of logit probabilities, both in [0,1].
"""

from __future__ import annotations

import higra as hg
import numpy as np

DEFAULT_ATOM_THRESHOLD = 0.002
DEFAULT_MAX_ATOMS = 8000  # the dense linkage holds atoms²/2 float64 distances (256 MB at 8000)


def atom_threshold_for(
    altitudes: np.ndarray, parents: np.ndarray, num_leaves: int, threshold: float, max_atoms: int
) -> float:
    """The smallest threshold >= ``threshold`` at which the single-linkage tree has at most
    ``max_atoms`` components (a binary tree has num_leaves − m components after m merges)."""
    merges = np.sort(altitudes[num_leaves:])
    below = int(np.searchsorted(merges, threshold, side="right"))
    if num_leaves - below <= max_atoms:
        return float(threshold)
    need = num_leaves - max_atoms  # merges that must lie at or below the threshold
    return float(merges[min(need, len(merges)) - 1])


def atoms_of(tree: hg.Tree, altitudes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components of a single-linkage tree at ``threshold``.

    Returns (low [V] bool: nodes at or below the threshold, leaves included; roots [A] int64:
    the top node of each component; leaf_atom [n] int64: component of every leaf).
    """
    parents = np.asarray(tree.parents(), np.int64)
    nv, n = len(parents), tree.num_leaves()
    low = altitudes <= threshold
    low[:n] = True
    root = nv - 1
    is_top = low & ~low[parents]
    is_top[root] = low[root]
    nodes = np.arange(nv, dtype=np.int64)
    inherit = low & ~is_top
    inherit[root] = False
    top_of = np.asarray(hg.propagate_sequential(tree, nodes, inherit), np.int64)
    roots = np.flatnonzero(is_top)
    atom_index = np.full(nv, -1, np.int64)
    atom_index[roots] = np.arange(len(roots))
    return low, roots, atom_index[top_of[:n]]


def atom_centroids(space: np.ndarray, leaf_atom: np.ndarray, n_atoms: int, kind: str) -> np.ndarray:
    """Mean feature-space vector of every atom [A,D] (unit length for embeddings)."""
    sums = np.zeros((n_atoms, space.shape[1]), np.float64)
    np.add.at(sums, leaf_atom, space)
    counts = np.bincount(leaf_atom, minlength=n_atoms).astype(np.float64)
    cent = sums / np.maximum(counts, 1.0)[:, None]
    if kind == "embedding":
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent


def average_linkage_above_atoms(
    tree: hg.Tree,
    altitudes: np.ndarray,
    space: np.ndarray,
    kind: str,
    atom_threshold: float = DEFAULT_ATOM_THRESHOLD,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The two-stage tree of ``tree`` (single linkage over n leaves, ``altitudes [V]``) and the
    leaves' feature-space vectors ``space [n,D]``.

    Returns (parents [V'] int64, altitudes [V'] float64, number of atoms): nodes 0..n-1 are the
    leaves, every parent index exceeds its children's, the root is last, and altitudes never
    decrease towards the root (average linkage has no inversions; merges above the atoms are
    clamped to the atom threshold at least).
    """
    from scipy.cluster.hierarchy import linkage

    n = tree.num_leaves()
    parents0 = np.asarray(tree.parents(), np.int64)
    altitudes0 = np.asarray(altitudes, np.float64)
    threshold = atom_threshold_for(altitudes0, parents0, n, atom_threshold, max_atoms)
    low, roots, leaf_atom = atoms_of(tree, altitudes0, threshold)
    n_atoms = len(roots)
    kept = np.flatnonzero(low)  # leaves first, then the low internal nodes in topological order
    new_id = np.full(len(parents0), -1, np.int64)
    new_id[kept] = np.arange(len(kept))
    m = len(kept)
    if n_atoms > 1:
        cent = atom_centroids(space.astype(np.float64), leaf_atom, n_atoms, kind)
        z = linkage(cent, method="average", metric="cosine" if kind == "embedding" else "cityblock")
    else:
        z = np.zeros((0, 4))
    nv = m + len(z)
    parents = np.empty(nv, np.int64)
    alt = np.empty(nv, np.float64)
    inner = kept[~np.isin(kept, roots)]
    parents[new_id[inner]] = new_id[parents0[inner]]
    alt[:m] = altitudes0[kept]
    node_of = np.concatenate([new_id[roots], m + np.arange(len(z))])  # scipy's cluster ids -> ours
    # scipy: cosine distance 1 − cos and cityblock |p − q|₁, both twice ours
    for i, (a, b, d, _) in enumerate(z):
        parents[node_of[int(a)]] = parents[node_of[int(b)]] = m + i
        alt[m + i] = max(0.5 * float(d), threshold)
    parents[nv - 1] = nv - 1
    return parents, np.clip(alt, 0.0, 1.0), n_atoms
