"""Per-view prompt masks made consistent through 3D: vote, take the consensus, choose again.

Choosing a prompted object's mask view by view (:mod:`gsseg.masks.click_object`) goes
wrong in some views: the object's own mask is missing (dropped, merged with a neighbour, split)
and a part, a group or a floor region holding the projected click wins instead. Every view's
choice is a vote on the Gaussians (their rendering weight ``T·α`` per label, the training-free
``vote`` objective's rule); a Gaussian belongs to object k in the consensus when most of its
votes say k. Each view then takes, among the masks holding the object's prompts, the one that
best matches the consensus rendered into that view (IoU with the pixels the consensus object
covers), and none when no mask matches it well: a minority of wrong views is outvoted, and a
view without a good mask no longer teaches a wrong one. The consensus also reaches the views
where the click itself is hidden (the back of the object), so every view that shows the object
takes part, and the background is known everywhere else in it.

Measured on the built-in scenes with medium simulated masks, one click per object: see
``benchmarks/RESULTS.md`` (prompted objects).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

MIN_MATCH_IOU = 0.5
MIN_SEEN_WEIGHT = 0.1  # summed T·α below which a Gaussian counts as unseen (occluded ones keep tiny weights)


def accumulate_votes(table, labels: Tensor, hist: Tensor) -> Tensor:
    """Add one view's votes into ``hist [N,D]`` in place and return it.

    table: the view's ContributionTable; labels: [H*W] int64 channel per pixel (-1 = no vote).
    """
    device = hist.device
    offsets = table.offsets.to(device)
    counts = offsets[1:] - offsets[:-1]
    pix = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    lab = labels.to(device)[pix]
    keep = lab >= 0
    gids = table.gaussian_ids.to(device)[keep].long()
    w = table.weights.to(device=device, dtype=hist.dtype)[keep]
    flat = hist.view(-1)
    flat.index_add_(0, gids * hist.shape[1] + lab[keep], w)
    return hist


def consensus_members(
    found: dict[str, dict[int, np.ndarray]], table_of: Callable[[str], object], num_gaussians: int, n_objects: int
) -> tuple[np.ndarray, np.ndarray]:
    """Object of every Gaussian in the consensus of per-view object masks.

    found: view -> {object k: mask [H,W] bool} (the views where k was found). Per object, a
    Gaussian's weight inside k's masks is weighed against its weight outside them in the same
    views; it belongs to k when inside holds more than half (to the object with the larger share
    when several do). Returns (members [N] int64, 0 = none; known [N,K+1] bool: the Gaussians
    the views where k was found saw, with at least ``MIN_SEEN_WEIGHT`` of weight)."""
    inside = torch.zeros(num_gaussians, n_objects + 1, dtype=torch.float64)
    seen = torch.zeros(num_gaussians, n_objects + 1, dtype=torch.float64)
    for view, masks in found.items():
        table = table_of(view)
        for k, mask in masks.items():
            m = torch.from_numpy(np.asarray(mask, bool).reshape(-1).astype(np.int64))
            both = torch.zeros(num_gaussians, 2, dtype=torch.float64)
            accumulate_votes(table, m, both)  # channel 1 = inside, channel 0 = outside
            inside[:, k] += both[:, 1]
            seen[:, k] += both.sum(1)
    share = inside / seen.clamp_min(1e-12)
    share[:, 0] = 0.0
    known = seen >= MIN_SEEN_WEIGHT
    share = torch.where(known, share, torch.zeros_like(share))
    best = share.argmax(1)
    ok = share.gather(1, best[:, None])[:, 0] > 0.5
    return torch.where(ok, best, torch.zeros_like(best)).numpy(), known.numpy()


def silhouette(table, member: np.ndarray, min_alpha: float = 0.5) -> np.ndarray:
    """[H,W] bool: pixels whose rendered weight is mostly from Gaussians with ``member [N]`` set."""
    from gsseg.render.tables import render_features_from_table

    m = torch.as_tensor(np.asarray(member, np.float32))
    pix = torch.arange(table.width * table.height, dtype=torch.int64)
    out = render_features_from_table(table.to("cpu"), pix, torch.stack([m, torch.ones_like(m)], dim=1))
    alpha = out[:, 1]
    sil = (alpha >= min_alpha) & (out[:, 0] >= 0.5 * alpha)
    return sil.reshape(table.height, table.width).numpy()


def consensus_view_labels(
    masks,
    table,
    members: np.ndarray,
    known: np.ndarray,
    n_objects: int,
    fallback: dict[int, np.ndarray] | None = None,
    min_pixels: int = 10,
    min_iou: float = MIN_MATCH_IOU,
) -> tuple[np.ndarray | None, list[int], dict[int, np.ndarray]]:
    """Labels [H,W] int64 of one view (-1 ignore, 0 background, k object) from the consensus.

    Object k's consensus (``members == k``) is rendered into the view; the mask of ``masks``
    (ViewMasks at the table's size) with the best IoU with that silhouette becomes object k when
    the IoU reaches ``min_iou``. The IoU counts only pixels the consensus knows about (mostly
    rendered by Gaussians ``known[:, k]``): the side of an object no earlier choice saw neither
    helps nor hurts a mask. Without a match the view's earlier choice (``fallback``: {k: mask})
    stays; where an object's silhouette shows but it has neither, every pixel outside the chosen
    masks is unknown (as when a prompt is not found), else it is background. Returns (labels, or
    None when no object is chosen in the view; silhouette pixels per object; the chosen masks
    {k: [H,W] bool}).
    """
    h, w = table.height, table.width
    covered = masks.membership[:, masks.patch_index.reshape(-1)] if masks.n_masks else np.zeros((0, h * w), bool)
    labels = np.zeros(h * w, np.int64)
    claimed = np.zeros(h * w, np.int64)
    unknown = False
    shown = []
    chosen: dict[int, np.ndarray] = {}
    for k in range(1, n_objects + 1):
        sil = silhouette(table, members == k).reshape(-1)
        shown.append(int(sil.sum()))
        if sil.sum() < min_pixels:
            continue
        seen = silhouette(table, known[:, k]).reshape(-1)
        best_iou, best = 0.0, -1
        if len(covered):
            inter = (covered & sil[None]).sum(1)
            iou = inter / np.maximum(((covered & seen[None]) | sil[None]).sum(1), 1)
            best = int(np.argmax(iou))
            best_iou = float(iou[best])
        pick = covered[best] if best_iou >= min_iou else None
        if pick is None and fallback and k in fallback:
            pick = np.asarray(fallback[k], bool).reshape(-1)
        if pick is not None:
            labels[pick] = k
            claimed += pick
            chosen[k] = pick.reshape(h, w)
        else:
            unknown = True
    if not chosen:
        return None, shown, chosen
    labels[claimed > 1] = -1
    if unknown:  # an object shows but has no mask here: where it is is unknown, so is the background
        labels[claimed == 0] = -1
    return labels.reshape(h, w), shown, chosen
