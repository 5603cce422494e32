"""Prompt points propagated to every training view, and each view's object mask.

Points are projected into every view and kept where on screen and not occluded:
``|z_cam − rendered depth|`` (median depth) within a tolerance relative to the scene scale.
Each view's object mask then comes from SAM point prompts (when a checkpoint is given) or from
the mask store (the mask best covering the projected positives while avoiding the negatives,
then chosen again against the 3D consensus of all views); views with too few visible prompts
are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gsseg.prompts.lifting import SurfaceProbe, camera_points, lift_clicks
from gsseg.prompts.spec import PromptSpec, PropagationSettings

IGNORE = -1  # label of pixels no loss should see


@dataclass
class ProjectedPrompts:
    """Prompt points in one view: pixel xy [M,2] int64 (at the probe's resolution) and
    visible [M] bool (on screen, in front of the camera and not occluded)."""

    view: str
    xy: np.ndarray
    visible: np.ndarray


def project_prompts(
    points: np.ndarray, probe: SurfaceProbe, view: str, tolerance: float, min_alpha: float = 0.5
) -> ProjectedPrompts:
    """Project ``points [M,3]`` into ``view`` with a depth-occlusion test.

    A point is visible when its pixel is on screen, its camera depth z > 0, the rendered
    opacity there is at least ``min_alpha`` and ``|z − rendered depth| <= tolerance`` (world units).
    """
    w, h = probe.size(view)
    uv, z = camera_points(probe.cameras, view, np.asarray(points, dtype=np.float64))
    xy = np.floor(uv).astype(np.int64) if len(uv) else np.zeros((0, 2), dtype=np.int64)
    on = (z > 1e-6) & (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    visible = np.zeros(len(points), dtype=bool)
    idx = np.flatnonzero(on)
    if len(idx):
        depth_t, alpha_t = probe.depth_alpha(view, torch.from_numpy(xy[idx, 0]), torch.from_numpy(xy[idx, 1]))
        depth, alpha = depth_t.double().numpy(), alpha_t.double().numpy()
        visible[idx] = (alpha >= min_alpha) & (np.abs(z[idx] - depth) <= tolerance)
    return ProjectedPrompts(view=view, xy=xy, visible=visible)


def required_visible(n_positive: int, min_visible: int) -> int:
    """Visible positives a view needs: ``min_visible``, or SANeRF-HQ's ⌊0.8·n⌋+1 when it is -1."""
    need = int(0.8 * n_positive) + 1 if min_visible < 0 else min_visible
    return max(1, min(need, n_positive))


def store_candidates(vm, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Masks of ``vm`` (a ViewMasks) that best cover pixel ``positives [A,2]`` (x, y) while avoiding
    ``negatives [B,2]``: those with the most (#positives − #negatives) covered, at least one
    positive: [C] int64 mask indices (empty when no mask holds a positive)."""
    if vm.n_masks == 0 or len(positives) == 0:
        return np.zeros(0, np.int64)
    pos = vm.membership[:, vm.patch_index[positives[:, 1], positives[:, 0]]].sum(1)
    neg = vm.membership[:, vm.patch_index[negatives[:, 1], negatives[:, 0]]].sum(1) if len(negatives) else 0
    score = pos.astype(np.int64) - neg
    best = np.flatnonzero((score == score.max()) & (pos > 0))
    return best.astype(np.int64)


def best_store_mask(vm, positives: np.ndarray, negatives: np.ndarray) -> int | None:
    """Index of the smallest of :func:`store_candidates` (the tightest mask holding the prompts),
    None when no mask holds a positive."""
    cands = store_candidates(vm, positives, negatives)
    if len(cands) == 0:
        return None
    return int(cands[np.lexsort((cands, vm.areas[cands]))][0])


def level_chooser(vm, depth: np.ndarray, K: np.ndarray, level: str = "object"):
    """A ``choose(k, candidates, positives)`` for :func:`view_labels`: the mask of ``level`` (part,
    object or group) among the nested store masks holding the prompts, from how the view's masks
    nest and the connectivity of their surface (:func:`gsseg.masks.click_object.level_mask`)
    with the view's rendered ``depth [H,W]`` and intrinsics ``K [3,3]``."""
    from gsseg.masks.click_object import level_mask

    def choose(k: int, candidates: np.ndarray, positives: np.ndarray) -> int | None:
        return level_mask(vm, candidates, depth, K, positives, level) if len(candidates) else None

    return choose


@dataclass
class PromptView:
    """Result for one view: labels [H,W] int64 at the probe's resolution (-1 ignore,
    0 background, k object k), or None when the view was skipped; visible counts per object."""

    view: str
    labels: np.ndarray | None
    visible: list[int]
    reason: str = ""
    found: dict[int, np.ndarray] = field(default_factory=dict)  # object k -> its mask [H,W] bool


def view_labels(
    view: str,
    projected: ProjectedPrompts,
    point_objects: np.ndarray,
    n_objects: int,
    size: tuple[int, int],
    settings: PropagationSettings,
    masks=None,
    sam=None,
    image: np.ndarray | None = None,
    choose=None,
) -> PromptView:
    """Object labels of one view from the projected prompts.

    size: (width, height) of the probe; masks: the view's ViewMasks at that size (store path);
    sam: a ``SamPrompter`` and image [H',W',3] uint8 (SAM path; masks come back at image size
    and are resampled to the probe's); choose(k, candidates [C], positives [A,2]) -> mask index or
    None picks object k's mask among the store masks holding its prompts (default: the smallest,
    :func:`best_store_mask`; see :func:`level_chooser` and
    :func:`gsseg.masks.prompt_consensus.consensus_chooser`).
    Objects with too few visible positives leave their pixels unknown: where some object is
    not found, pixels outside the found masks are ignored instead of called background.
    """
    w, h = size
    vis = projected.visible
    counts = [int((vis & (point_objects == k)).sum()) for k in range(1, n_objects + 1)]
    found: dict[int, np.ndarray] = {}
    encoded = False
    for k in range(1, n_objects + 1):
        n_pos = int((point_objects == k).sum())
        if counts[k - 1] < required_visible(n_pos, settings.min_visible):
            continue
        pos = projected.xy[vis & (point_objects == k)]
        neg = projected.xy[vis & (point_objects != k)]
        if sam is not None:
            if image is None:
                raise ValueError("view_labels with a SAM prompter needs the view's image")
            if not encoded:
                sam.set_image(image)
                encoded = True
            ih, iw = image.shape[:2]
            pts = np.concatenate([pos, neg]).astype(np.float64) + 0.5
            pts *= np.array([iw / w, ih / h])
            lab = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.int64)
            full = sam.predict(pts, lab).mask
            rows = np.minimum(((np.arange(h) + 0.5) * ih / h).astype(np.int64), ih - 1)
            cols = np.minimum(((np.arange(w) + 0.5) * iw / w).astype(np.int64), iw - 1)
            mask = full[rows[:, None], cols[None, :]]
        elif masks is not None:
            best = (
                best_store_mask(masks, pos, neg)
                if choose is None
                else choose(k, store_candidates(masks, pos, neg), pos)
            )
            if best is None:
                continue
            mask = masks.mask(best)
        else:
            raise ValueError("view_labels needs mask-store masks or a SAM prompter")
        if int(mask.sum()) >= settings.min_mask_pixels:
            found[k] = mask
    if not found:
        return PromptView(view, None, counts, "too few visible prompts or no mask found")
    labels = np.zeros((h, w), dtype=np.int64)
    claimed = np.zeros((h, w), dtype=np.int64)
    for k, mask in found.items():
        labels[mask] = k
        claimed += mask
    labels[claimed > 1] = IGNORE  # two prompted objects claim the pixel
    if len(found) < n_objects:
        labels[claimed == 0] = IGNORE
    return PromptView(view, labels, counts, found=found)


def propagate(
    spec: PromptSpec,
    probe: SurfaceProbe,
    views: list[str],
    scene_scale: float,
    settings: PropagationSettings,
    masks_of=None,
    sam=None,
    image_of=None,
    lift_probe: SurfaceProbe | None = None,
) -> tuple[np.ndarray, np.ndarray, list[PromptView]]:
    """Lift clicks, project every prompt into ``views`` and build per-view labels.

    masks_of(view) -> ViewMasks at the probe's resolution (store path) or None; sam: a
    SamPrompter with image_of(view) -> [H,W,3] uint8 (SAM path); lift_probe: probe at the
    click resolution (default ``probe``). Returns (points [M,3], point_objects [M], per-view results).
    """
    spec.validate()
    clicks = spec.clicks
    lifted = lift_clicks(clicks, lift_probe or probe, settings.min_alpha) if clicks else np.zeros((0, 3))
    points = np.concatenate([np.asarray(spec.points, dtype=np.float64).reshape(-1, 3), lifted])
    objects = np.concatenate(
        [
            np.asarray(spec.point_objects, dtype=np.int64).reshape(-1),
            np.asarray([c.obj if c.positive else 0 for c in clicks], dtype=np.int64),
        ]
    )
    tol = settings.tolerance * scene_scale
    projected = {view: project_prompts(points, probe, view, tol, settings.min_alpha) for view in views}

    def label_views(chooser_of) -> list[PromptView]:
        out = []
        for view in views:
            masks = None if sam is not None or masks_of is None else masks_of(view)
            if sam is None and masks is None:
                out.append(PromptView(view, None, [0] * spec.n_objects, "no masks for this view"))
                continue
            image = image_of(view) if sam is not None else None
            choose = chooser_of(view, masks) if masks is not None else None
            out.append(
                view_labels(
                    view,
                    projected[view],
                    objects,
                    spec.n_objects,
                    probe.size(view),
                    settings,
                    masks,
                    sam,
                    image,
                    choose,
                )
            )
        return out

    results = label_views(
        lambda view, masks: level_chooser(masks, probe.depth_map(view), probe.intrinsics(view), settings.level)
    )
    if sam is None and masks_of is not None and settings.consensus_rounds > 0:
        from gsseg.masks.prompt_consensus import consensus_members, consensus_view_labels

        for _ in range(settings.consensus_rounds):
            found = {r.view: r.found for r in results if r.found}
            if not found:
                break
            members, known = consensus_members(found, probe.tables.get, len(probe.means), spec.n_objects)
            results = []
            for view in views:
                masks = masks_of(view)
                if masks is None:
                    results.append(PromptView(view, None, [0] * spec.n_objects, "no masks for this view"))
                    continue
                lab, shown, chosen = consensus_view_labels(
                    masks,
                    probe.tables.get(view),
                    members,
                    known,
                    spec.n_objects,
                    found.get(view),
                    settings.min_mask_pixels,
                )
                results.append(
                    PromptView(
                        view, lab, shown, "" if lab is not None else "no prompted object shows here", found=chosen
                    )
                )
    return points, objects, results
