"""Prompts for prompted objectives (SANeRF-HQ style): clicks, 3D prompt points, propagation.

A prompt is a set of 3D points, each positive for one prompted object (ids 1..K) or negative
(id 0). Clicks ``STEM:X,Y`` in one view are lifted to 3D with the depth rendered from the
frozen Gaussians. Points are projected into every training view (OpenCV cameras:
``u = fx·x/z + cx``) and kept where on screen and not occluded: ``|z_cam − rendered depth|``
(median depth) within a tolerance relative to the scene scale. Each view's object mask then comes from SAM
point prompts (when a checkpoint is given) or from the mask store (the mask best covering the
projected positives while avoiding the negatives); views with too few visible prompts are
skipped.
"""

from __future__ import annotations

import functools

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gsseg.data.cameras import Cameras
from gsseg.errors import GssegError, file_error

IGNORE = -1  # label of pixels no loss should see


# ---------------------------------------------------------------------------------------------
# prompt specification


@dataclass
class Click:
    """A click at pixel (x, y) of ``view`` (dataset image coordinates, integer = pixel index).

    positive: on the object (True) or not on any object (False); obj: prompted object id (1..K).
    """

    view: str
    x: float
    y: float
    positive: bool = True
    obj: int = 1


def parse_click(text: str, positive: bool = True) -> Click:
    """``STEM:X,Y`` or ``STEM:X,Y@K`` (K = prompted object id, default 1) -> :class:`Click`."""
    body, obj = text, 1
    if "@" in text:
        body, _, obj_text = text.rpartition("@")
        try:
            obj = int(obj_text)
        except ValueError:
            raise GssegError(f"bad click {text!r}: the object after '@' must be an integer >= 1") from None
        if obj < 1:
            raise GssegError(f"bad click {text!r}: object ids start at 1")
    view, sep, coords = body.rpartition(":")
    parts = coords.split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        x = y = math.nan
    if not sep or not view or len(parts) != 2 or not (math.isfinite(x) and math.isfinite(y)):
        raise GssegError(f"bad click {text!r}: use STEM:X,Y (e.g. train_003:120,64), optionally @K for object K")
    return Click(view=view, x=x, y=y, positive=positive, obj=obj)


@dataclass
class PromptSpec:
    """Prompts before lifting: 3D points and clicks, per prompted object.

    points: [M,3] float64 world points; point_objects: [M] int64 (k >= 1 positive for object k,
    0 negative); clicks: 2D clicks still to lift; names: K object names.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    point_objects: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    clicks: list[Click] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def n_objects(self) -> int:
        ids = [int(o) for o in self.point_objects if o > 0] + [c.obj for c in self.clicks if c.positive]
        return max([len(self.names), *ids]) if ids or self.names else 0

    def object_names(self) -> list[str]:
        return [self.names[k] if k < len(self.names) else f"object_{k + 1}" for k in range(self.n_objects)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (recorded in the features file)."""
        return {
            "names": self.object_names(),
            "points": np.asarray(self.points, dtype=np.float64).tolist(),
            "point_objects": np.asarray(self.point_objects, dtype=np.int64).tolist(),
            "clicks": [{"view": c.view, "x": c.x, "y": c.y, "positive": c.positive, "object": c.obj} for c in self.clicks],
        }

    def validate(self, source: str = "prompts") -> None:
        if self.n_objects == 0:
            raise GssegError(f"{source}: no positive prompt (give at least one --click or a positive point)")
        objs = {int(o) for o in self.point_objects if o > 0} | {c.obj for c in self.clicks if c.positive}
        missing = sorted(set(range(1, self.n_objects + 1)) - objs)
        if missing:
            raise GssegError(f"{source}: object(s) {missing} have no positive prompt")


def _parse_entry(entry: Any, path: Path, obj: int, positive: bool) -> tuple[np.ndarray | None, Click | None]:
    if isinstance(entry, str):
        c = parse_click(entry, positive)
        c.obj = obj
        return None, c
    if isinstance(entry, dict) and {"view", "x", "y"} <= set(entry):
        try:
            return None, Click(str(entry["view"]), float(entry["x"]), float(entry["y"]), positive, obj)
        except (TypeError, ValueError):
            pass
    elif isinstance(entry, (list, tuple)) and len(entry) == 3:
        try:
            p = np.asarray([float(v) for v in entry], dtype=np.float64)
            if np.isfinite(p).all():
                return p, None
        except (TypeError, ValueError):
            pass
    raise file_error(path, f"bad prompt {entry!r}: use [x,y,z], \"STEM:X,Y\" or {{\"view\", \"x\", \"y\"}}")


def load_prompt_file(path: str | Path) -> PromptSpec:
    """Read a prompt file.

    ``{"objects": [{"name": "mug", "positive": [...], "negative": [...]}, ...], "negative": [...]}``
    where each entry is a 3D point ``[x, y, z]``, a click ``"STEM:X,Y"`` or
    ``{"view": STEM, "x": X, "y": Y}``. Negatives are "not on any prompted object".
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "prompt file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise file_error(path, f"unreadable prompt file ({e})") from None
    except json.JSONDecodeError as e:
        raise file_error(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list) or not data["objects"]:
        raise file_error(path, 'must be a JSON object with a non-empty "objects" list')
    spec = PromptSpec()
    points, objects = [], []
    groups: list[tuple[int, Any, bool]] = []
    for k, o in enumerate(data["objects"], start=1):
        if not isinstance(o, dict) or not isinstance(o.get("positive", []), list) or not isinstance(o.get("negative", []), list):
            raise file_error(path, f'object {k} must be {{"name", "positive": [...], "negative": [...]}}')
        spec.names.append(str(o.get("name", f"object_{k}")))
        groups += [(k, e, True) for e in o.get("positive", [])] + [(0, e, False) for e in o.get("negative", [])]
    if not isinstance(data.get("negative", []), list):
        raise file_error(path, '"negative" must be a list')
    groups += [(0, e, False) for e in data.get("negative", [])]
    for obj, entry, positive in groups:
        p, c = _parse_entry(entry, path, max(obj, 1), positive)
        if p is not None:
            points.append(p)
            objects.append(obj)
        else:
            spec.clicks.append(c)
    if points:
        spec.points = np.stack(points)
        spec.point_objects = np.asarray(objects, dtype=np.int64)
    spec.validate(str(path))
    return spec


def spec_from_options(clicks: list[str], negative_clicks: list[str], prompt_file: str | Path | None) -> PromptSpec:
    """Prompts from CLI ``--click`` / ``--negative-click`` strings and an optional prompt file."""
    spec = load_prompt_file(prompt_file) if prompt_file else PromptSpec()
    spec.clicks += [parse_click(c, True) for c in clicks] + [parse_click(c, False) for c in negative_clicks]
    spec.validate("--click/--prompts")
    return spec


# ---------------------------------------------------------------------------------------------
# geometry probe: rendered depth and alpha at pixels, from contribution tables


class SurfaceProbe:
    """Rendered (median) depth and opacity of frozen Gaussians at pixels of given cameras.

    means [N,3], quats [N,4], scales [N,3] (activated), opacities [N] (activated); cameras may be
    at any resolution (tables are built lazily per view, LRU-bounded).
    """

    def __init__(self, means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, cameras: Cameras,
                 max_tables: int = 4, backend: str = "auto") -> None:
        from gsseg.render.tables import TableCache

        self.means = means.detach()
        self.cameras = cameras
        self.tables = TableCache(means, quats, scales, opacities, cameras, max_tables=max_tables, backend=backend)

    @classmethod
    def from_scene(cls, scene, cameras: Cameras, **kw) -> "SurfaceProbe":
        """From a :class:`gsseg.gaussians.GaussianScene`."""
        return cls(scene.means.float(), scene.quats.float(), scene.scales.float(), scene.opacities.float(), cameras, **kw)

    def size(self, view: str) -> tuple[int, int]:
        """(width, height) of ``view`` in the probe's cameras."""
        i = self.cameras.index_of(view)
        return int(self.cameras.widths[i]), int(self.cameras.heights[i])

    def intrinsics(self, view: str) -> np.ndarray:
        """[3,3] float64 intrinsics of ``view`` in the probe's cameras."""
        return self.cameras.Ks[self.cameras.index_of(view)].double().numpy()

    def depth_map(self, view: str, min_alpha: float = 0.5) -> np.ndarray:
        """[H,W] float64 median depth of every pixel of ``view`` (0 where alpha < ``min_alpha``)."""
        w, h = self.size(view)
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        depth, alpha = self.depth_alpha(view, xs.reshape(-1), ys.reshape(-1))
        depth = depth.double().numpy()
        depth[alpha.numpy() < min_alpha] = 0.0
        return depth.reshape(h, w)

    def depth_alpha(self, view: str, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Median z-depth [P] and alpha [P] at integer pixels ``x, y [P]`` (depth 0 where alpha = 0).

        The median depth is the camera depth of the Gaussian at which the accumulated weight
        reaches half the pixel's alpha: unlike the expected depth it does not blend a foreground
        edge with the background behind it.
        """
        table = self.tables.get(view)
        i = self.cameras.index_of(view)
        viewmat = self.cameras.viewmats[i].to(self.means)
        z = self.means @ viewmat[2, :3] + viewmat[2, 3]
        pix = table.pixel_ids(x, y)
        offsets = table.offsets
        starts = offsets[pix]
        counts = offsets[pix + 1] - starts
        n = len(pix)
        seg = torch.repeat_interleave(torch.arange(n), counts)
        first = torch.cumsum(counts, 0) - counts
        pos = torch.arange(len(seg)) - first[seg] + starts[seg]
        w = table.weights[pos].double()
        alpha = torch.zeros(n, dtype=torch.float64).index_add_(0, seg, w)
        csum = torch.cat([torch.zeros(1, dtype=w.dtype), torch.cumsum(w, 0)])
        before = csum[first]  # accumulated weight of earlier pixels' entries
        csum = csum[1:]
        inside = csum - before[seg]
        reached = inside >= 0.5 * alpha[seg] - 1e-12
        big = torch.full((n,), len(seg), dtype=torch.int64)
        idx = big.scatter_reduce(0, seg[reached], torch.arange(len(seg))[reached], reduce="amin")
        depth = torch.zeros(n, dtype=z.dtype)
        ok = (counts > 0) & (idx < len(seg))
        depth[ok] = z[table.gaussian_ids[pos[idx[ok]]].long()]
        return depth, alpha.to(z.dtype)


def camera_points(cameras: Cameras, view: str, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world ``points [M,3]`` into ``view``: (pixel xy [M,2] continuous, pixel (u, v)
    with centres at +0.5; z [M] camera depth)."""
    i = cameras.index_of(view)
    vm = cameras.viewmats[i].double().numpy()
    K = cameras.Ks[i].double().numpy()
    cam = points @ vm[:3, :3].T + vm[:3, 3]
    z = cam[:, 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    uv = np.stack([K[0, 0] * cam[:, 0] / safe + K[0, 2], K[1, 1] * cam[:, 1] / safe + K[1, 2]], 1)
    return uv, z


def lift_clicks(clicks: list[Click], probe: SurfaceProbe, min_alpha: float = 0.5) -> np.ndarray:
    """3D surface points [M,3] under clicks, from the rendered depth at the clicked pixels.

    The clicked pixel's centre is unprojected at the rendered (median) depth of the probe's view;
    GssegError when a click is off the image or hits (almost) no surface.
    """
    out = np.zeros((len(clicks), 3), dtype=np.float64)
    by_view: dict[str, list[int]] = {}
    for j, c in enumerate(clicks):
        if c.view not in probe.cameras.names:
            raise GssegError(f"click {c.view}:{c.x:g},{c.y:g}: no view named {c.view!r}")
        w, h = probe.size(c.view)
        if not (0 <= c.x < w and 0 <= c.y < h):
            raise GssegError(f"click {c.view}:{c.x:g},{c.y:g} is outside the {w}x{h} image")
        by_view.setdefault(c.view, []).append(j)
    for view, idx in by_view.items():
        xs = np.array([int(math.floor(clicks[j].x)) for j in idx])
        ys = np.array([int(math.floor(clicks[j].y)) for j in idx])
        depth, alpha = probe.depth_alpha(view, torch.from_numpy(xs), torch.from_numpy(ys))
        depth, alpha = depth.double().numpy(), alpha.double().numpy()
        for a, j in zip(alpha, idx):
            if a < min_alpha:
                c = clicks[j]
                raise GssegError(f"click {c.view}:{c.x:g},{c.y:g} hits no surface (rendered opacity {a:.2f}); click on an object")
        i = probe.cameras.index_of(view)
        K = probe.cameras.Ks[i].double().numpy()
        cam = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * depth, (ys + 0.5 - K[1, 2]) / K[1, 1] * depth, depth], 1)
        c2w = np.linalg.inv(probe.cameras.viewmats[i].double().numpy())
        out[idx] = cam @ c2w[:3, :3].T + c2w[:3, 3]
    return out


@dataclass
class ProjectedPrompts:
    """Prompt points in one view: pixel xy [M,2] int64 (at the probe's resolution) and
    visible [M] bool (on screen, in front of the camera and not occluded)."""

    view: str
    xy: np.ndarray
    visible: np.ndarray


def project_prompts(points: np.ndarray, probe: SurfaceProbe, view: str, tolerance: float,
                    min_alpha: float = 0.5) -> ProjectedPrompts:
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
        depth, alpha = probe.depth_alpha(view, torch.from_numpy(xy[idx, 0]), torch.from_numpy(xy[idx, 1]))
        depth, alpha = depth.double().numpy(), alpha.double().numpy()
        visible[idx] = (alpha >= min_alpha) & (np.abs(z[idx] - depth) <= tolerance)
    return ProjectedPrompts(view=view, xy=xy, visible=visible)


# ---------------------------------------------------------------------------------------------
# per-view object masks


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


def connected_chooser(vm, depth: np.ndarray, K: np.ndarray):
    """A ``choose(k, candidates, positives)`` for :func:`view_labels`: the object among nested store
    masks by the connectivity of its surface (:func:`gsseg.objectives.click_object.object_mask`)
    from the view's rendered ``depth [H,W]`` and intrinsics ``K [3,3]``."""
    from gsseg.objectives.click_object import object_mask

    def choose(k: int, candidates: np.ndarray, positives: np.ndarray) -> int | None:
        return object_mask(vm, candidates, depth, K, positives) if len(candidates) else None

    return choose


@dataclass
class PropagationSettings:
    """How prompts become per-view masks.

    tolerance: occlusion tolerance as a fraction of the scene scale; min_visible: visible
    positives needed per object (-1: ⌊0.8·n⌋+1 as SANeRF-HQ); min_mask_pixels: smaller masks
    are treated as not found; min_alpha: rendered opacity needed at a prompt's pixel;
    consensus_rounds: times every view's store mask is chosen again against the 3D consensus of
    the previous choices (:mod:`gsseg.objectives.prompt_consensus`; 0 = the first choice stays).
    """

    tolerance: float = 0.02
    min_visible: int = -1
    min_mask_pixels: int = 10
    min_alpha: float = 0.5
    consensus_rounds: int = 2


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
    :func:`best_store_mask`; see :func:`connected_chooser` and
    :func:`gsseg.objectives.prompt_consensus.consensus_chooser`).
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
            best = best_store_mask(masks, pos, neg) if choose is None else \
                choose(k, store_candidates(masks, pos, neg), pos)
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
    objects = np.concatenate([np.asarray(spec.point_objects, dtype=np.int64).reshape(-1),
                              np.asarray([c.obj if c.positive else 0 for c in clicks], dtype=np.int64)])
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
            out.append(view_labels(view, projected[view], objects, spec.n_objects, probe.size(view), settings, masks,
                                   sam, image, choose))
        return out

    results = label_views(lambda view, masks: connected_chooser(masks, probe.depth_map(view), probe.intrinsics(view)))
    if sam is None and masks_of is not None and settings.consensus_rounds > 0:
        from gsseg.objectives.prompt_consensus import consensus_members, consensus_view_labels

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
                lab, shown, chosen = consensus_view_labels(masks, probe.tables.get(view), members, known,
                                                           spec.n_objects, found.get(view), settings.min_mask_pixels)
                results.append(PromptView(view, lab, shown, "" if lab is not None else "no prompted object shows here",
                                          found=chosen))
    return points, objects, results


# ---------------------------------------------------------------------------------------------
# one call for objectives: prompts of a run -> per-view labels at the table resolution


@dataclass
class PromptOptions:
    """Prompt settings shared by prompted objectives (JSON-serialisable).

    clicks / negative_clicks: ``STEM:X,Y[@K]`` strings; prompts: a prompt file (see
    :func:`load_prompt_file`); sam_checkpoint / sam_model_type: SAM point prompts instead of the
    mask store; tolerance: occlusion tolerance as a fraction of the scene scale; min_visible:
    visible positives a view needs per object (-1: ⌊0.8·n⌋+1); min_mask_pixels: smaller masks
    count as not found; consensus_rounds: see :class:`PropagationSettings`.
    """

    clicks: list[str] = field(default_factory=list)
    negative_clicks: list[str] = field(default_factory=list)
    prompts: str | None = None
    sam_checkpoint: str | None = None
    sam_model_type: str | None = None
    tolerance: float = 0.05
    min_visible: int = -1
    min_mask_pixels: int = 10
    consensus_rounds: int = 2

    def given(self) -> bool:
        return bool(self.clicks or self.prompts)

    def spec(self) -> PromptSpec:
        return spec_from_options(list(self.clicks), list(self.negative_clicks), self.prompts)

    def propagation(self) -> PropagationSettings:
        return PropagationSettings(tolerance=self.tolerance, min_visible=self.min_visible,
                                   min_mask_pixels=self.min_mask_pixels, consensus_rounds=self.consensus_rounds)


def split_prompt_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], PromptOptions]:
    """Separate :class:`PromptOptions` keys from an objective's other settings."""
    names = set(PromptOptions.__dataclass_fields__)
    own = {k: v for k, v in settings.items() if k not in names}
    return own, PromptOptions(**{k: v for k, v in settings.items() if k in names})


@dataclass
class RunPrompts:
    """Prompts propagated over a run's training views.

    spec: the prompts as given; points [M,3] and point_objects [M] after lifting clicks;
    labels: view -> [H,W] int64 at the table resolution (-1 ignore, 0 background, k object);
    skipped: view -> reason.
    """

    spec: PromptSpec
    points: np.ndarray
    point_objects: np.ndarray
    labels: dict[str, np.ndarray]
    skipped: dict[str, str]

    def summary(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "lifted_points": self.points.tolist(),
                "lifted_objects": self.point_objects.tolist(), "views": sorted(self.labels),
                "skipped": dict(self.skipped)}


def resized_cameras(cameras: Cameras, width: int, height: int) -> Cameras:
    """``cameras`` (one image size) for images resized to exactly ``width`` x ``height``."""
    w0, h0 = int(cameras.widths[0]), int(cameras.heights[0])
    if (w0, h0) == (width, height):
        return cameras
    Ks = cameras.Ks.clone()
    Ks[:, 0, :] *= width / w0
    Ks[:, 1, :] *= height / h0
    n = len(cameras)
    return Cameras(cameras.viewmats.clone(), Ks, [width] * n, [height] * n, list(cameras.names))


def load_run_geometry(run_root: Path | None):
    """The frozen scene of a run (``RUN/scene.ply``); GssegError when there is none."""
    from gsseg.gaussians.ply import read_ply

    if run_root is None:
        raise GssegError("prompted objectives need a run directory with a trained scene (RUN/scene.ply)")
    ply = Path(run_root) / "scene.ply"
    if not ply.is_file():
        raise file_error(ply, "not found: prompts are lifted with the rendered depth of the trained scene; run the rgb stage first")
    return read_ply(ply)


def _photo_uint8(ds, view: str) -> np.ndarray:
    """[H,W,3] uint8 training photo of ``view`` (what SAM takes)."""
    return np.clip(np.rint(ds.image(view).numpy() * 255.0), 0, 255).astype(np.uint8)


def propagate_for_run(ctx, options: PromptOptions, scene=None) -> RunPrompts:
    """Lift and propagate ``options``' prompts to every view of ``ctx`` (a FeatureContext).

    Clicks (in any view, train or test) are lifted at the dataset's image resolution; masks are built at the table resolution
    (``ctx.height`` x ``ctx.width``) from SAM (when a checkpoint is given) or ``ctx.masks(view)``.
    ``scene`` defaults to ``RUN/scene.ply``.
    """
    spec = options.spec()
    if scene is None:
        scene = load_run_geometry(ctx.run_root)
    scene = scene.to("cpu")
    ds = ctx.dataset
    full = ds.cameras("train")
    full = full[[full.index_of(v) for v in ctx.views]]
    table_cams = resized_cameras(full, ctx.width, ctx.height)
    probe = SurfaceProbe.from_scene(scene, table_cams)
    lift_probe = SurfaceProbe.from_scene(scene, ds.cameras("all"), max_tables=2)  # clicks in any view
    sam, image_of = None, None
    if options.sam_checkpoint:
        from gsseg.masks.sources.sam_model import load_sam
        from gsseg.masks.sources.sam_prompts import SamPrompter

        device = "cuda" if torch.device(ctx.device).type == "cuda" else "cpu"
        sam = SamPrompter(load_sam(options.sam_checkpoint, options.sam_model_type, device=device))

        image_of = functools.partial(_photo_uint8, ds)

    elif ctx.store is None or not any(ctx.store.has(v) for v in ctx.views):
        raise GssegError(f"{ds.masks_dir}: prompted objectives need masks (run `gsseg masks DATA`) or --sam-checkpoint")
    points, objects, results = propagate(spec, probe, list(ctx.views), float(ds.scene_scale), options.propagation(),
                                         masks_of=ctx.masks, sam=sam, image_of=image_of, lift_probe=lift_probe)
    labels = {r.view: r.labels for r in results if r.labels is not None}
    skipped = {r.view: r.reason for r in results if r.labels is None}
    if not labels:
        raise GssegError("no training view sees enough of the prompts to build an object mask "
                         f"({len(skipped)} views skipped); click on a visible object or lower --set min_visible")
    return RunPrompts(spec, points, objects, labels, skipped)
