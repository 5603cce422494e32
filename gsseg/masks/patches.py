"""Patches: pixels that belong to exactly the same set of masks.

A view's M masks over H·W pixels are stored as a patch map ``patch_index [H,W]`` plus a
``membership [M,P]`` matrix with P ≪ H·W (OmniSeg3D's representation). These functions build
that pair from dense masks or from label maps and bring it to a canonical form: patches
sorted by their membership bits, so the all-zero ("no mask") column comes first when present.
"""

from __future__ import annotations

import numpy as np


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a C-contiguous 2D array, compared as raw bytes.

    rows: [R,K] any fixed-size dtype. Returns (unique [U,K], inverse [R] int64) with the
    unique rows in byte-lexicographic order.
    """
    rows = np.ascontiguousarray(rows)
    n_rows, n_cols = rows.shape
    if n_cols == 0:
        return rows[:1] if n_rows else rows, np.zeros(n_rows, dtype=np.int64)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * n_cols))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1).astype(np.int64)


def _canonical_columns(membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort and deduplicate the columns of ``membership [M,P]`` by their bits.

    Returns (new membership [M,P'] bool, old-to-new column map [P] int64).
    """
    m, p = membership.shape
    if m == 0:
        return np.zeros((0, min(p, 1)), dtype=bool), np.zeros(p, dtype=np.int64)
    packed = np.packbits(membership, axis=0).T  # [P, ceil(M/8)], big-endian bit order
    uniq, inverse = _unique_rows(packed)
    new_membership = np.unpackbits(uniq, axis=1, count=m).T.astype(bool)
    return np.ascontiguousarray(new_membership), inverse


def patches_from_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patch map and membership of dense masks.

    masks: [M,H,W] bool. Returns (patch_index [H,W] int32, membership [M,P] bool); the masks
    are recovered exactly as ``membership[:, patch_index]``.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"masks must be [M,H,W], got shape {masks.shape}")
    m, h, w = masks.shape
    if m == 0:
        return np.zeros((h, w), dtype=np.int32), np.zeros((0, 1), dtype=bool)
    packed = np.packbits(masks.reshape(m, h * w), axis=0).T  # [HW, ceil(M/8)]
    uniq, inverse = _unique_rows(packed)
    membership = np.unpackbits(uniq, axis=1, count=m).T.astype(bool)
    return inverse.reshape(h, w).astype(np.int32), np.ascontiguousarray(membership)


def compact_patches(patch_index: np.ndarray, membership: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop patches without pixels, merge patches with equal membership, sort canonically.

    patch_index: [H,W] int, membership: [M,P] bool. Returns (patch_index [H,W] int32,
    membership [M,P'] bool) describing the same masks.
    """
    p = membership.shape[1]
    used = np.bincount(patch_index.ravel(), minlength=p) > 0
    used_ids = np.flatnonzero(used)
    remap_used = np.full(p, -1, dtype=np.int64)
    remap_used[used_ids] = np.arange(len(used_ids))
    new_membership, col_map = _canonical_columns(membership[:, used_ids])
    new_index = col_map[remap_used[patch_index]]
    return new_index.astype(np.int32), new_membership


def patches_from_label_maps(label_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches of a stack of label maps where every distinct non-zero value is one mask.

    label_maps: [L,H,W] int (0 = no mask). Returns (patch_index [H,W] int32,
    membership [M,P] bool, mask_labels [M,2] int64 holding (map index, value) of each mask),
    masks ordered by map then value. Never builds dense [M,H,W] masks.
    """
    label_maps = np.asarray(label_maps)
    if label_maps.ndim != 3:
        raise ValueError(f"label maps must be [L,H,W], got shape {label_maps.shape}")
    n_maps, h, w = label_maps.shape
    rows = np.ascontiguousarray(label_maps.reshape(n_maps, h * w).T.astype(np.int64))  # [HW, L]
    uniq, inverse = _unique_rows(rows)  # uniq: [P, L]
    membership_rows = []
    labels = []
    for level in range(n_maps):
        values = np.unique(uniq[:, level])
        values = values[values != 0]
        if len(values):
            membership_rows.append(uniq[None, :, level] == values[:, None])
            labels.append(np.stack([np.full(len(values), level), values], axis=1))
    if not membership_rows:
        return np.zeros((h, w), dtype=np.int32), np.zeros((0, 1), dtype=bool), np.zeros((0, 2), dtype=np.int64)
    membership = np.concatenate(membership_rows, axis=0)
    patch_index, membership = compact_patches(inverse.reshape(h, w), membership)
    return patch_index, membership, np.concatenate(labels, axis=0).astype(np.int64)
