"""The per-view mask store: ``DATA/masks/<stem>.npz``, one compressed file per view.

Each file holds the patch map, the packed mask-by-patch membership, per-mask scores and areas,
the source name, the explicit "no mask" patch and the size of the image the masks describe.
Views are loaded one at a time; dense masks are only built when asked for.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

import gsseg.masks.derive as derive
from gsseg.errors import file_error
from gsseg.masks.patches import compact_patches, patches_from_label_maps, patches_from_masks
from gsseg.utils.atomic import is_temporary, save_npz

FORMAT_VERSION = 1
_KEYS = (
    "version",
    "patch_index",
    "membership",
    "n_patches",
    "scores",
    "areas",
    "source",
    "no_mask_patch",
    "image_size",
    "info",
)


def _no_mask_patch(patch_index: np.ndarray, membership: np.ndarray) -> int | None:
    """The patch whose pixels lie in no mask, if such pixels exist."""
    empty = np.flatnonzero(~membership.any(axis=0))
    if len(empty) == 0:
        return None
    counts = np.bincount(patch_index.ravel(), minlength=membership.shape[1])
    present = empty[counts[empty] > 0]
    return int(present[0]) if len(present) else None


@dataclass
class ViewMasks:
    """All masks of one view.

    patch_index: [H,W] int32 patch id per pixel; membership: [M,P] bool (mask m covers patch p);
    scores: [M] float32; areas: [M] int64 pixels; source: name of the mask source;
    no_mask_patch: patch of the pixels covered by no mask (None if every pixel is covered);
    image_size: (height, width) of the dataset image the masks describe (the patch map may be
    smaller when the source worked on a downscaled copy); info: source settings.
    """

    patch_index: np.ndarray
    membership: np.ndarray
    scores: np.ndarray
    areas: np.ndarray
    source: str
    no_mask_patch: int | None = None
    image_size: tuple[int, int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.patch_index = np.ascontiguousarray(self.patch_index, dtype=np.int32)
        self.membership = np.ascontiguousarray(self.membership, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.areas = np.asarray(self.areas, dtype=np.int64).reshape(-1)
        if self.patch_index.ndim != 2 or self.membership.ndim != 2:
            raise ValueError("patch_index must be [H,W] and membership [M,P]")
        m, p = self.membership.shape
        if len(self.scores) != m or len(self.areas) != m:
            raise ValueError(f"scores and areas need {m} entries, got {len(self.scores)} and {len(self.areas)}")
        if self.patch_index.size and (self.patch_index.min() < 0 or self.patch_index.max() >= p):
            raise ValueError(f"patch ids must lie in [0, {p})")
        if self.image_size is None:
            self.image_size = (self.height, self.width)
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    # construction -------------------------------------------------------------------------

    @classmethod
    def from_parts(
        cls,
        patch_index: np.ndarray,
        membership: np.ndarray,
        scores: np.ndarray | None,
        source: str,
        image_size: tuple[int, int] | None = None,
        info: dict[str, Any] | None = None,
    ) -> "ViewMasks":
        """Areas and the no-mask patch computed from a patch map and membership."""
        counts = derive.patch_counts(patch_index, membership.shape[1])
        areas = derive.mask_areas(membership, counts)
        if scores is None:
            scores = np.ones(membership.shape[0], dtype=np.float32)
        return cls(
            patch_index=patch_index,
            membership=membership,
            scores=scores,
            areas=areas,
            source=source,
            no_mask_patch=_no_mask_patch(patch_index, membership),
            image_size=image_size,
            info=dict(info or {}),
        )

    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray,
        scores: np.ndarray | None = None,
        source: str = "unknown",
        image_size: tuple[int, int] | None = None,
        info: dict[str, Any] | None = None,
    ) -> "ViewMasks":
        """From dense masks [M,H,W] bool and optional scores [M]."""
        patch_index, membership = patches_from_masks(masks)
        return cls.from_parts(patch_index, membership, scores, source, image_size, info)

    @classmethod
    def from_label_maps(
        cls,
        label_maps: np.ndarray,
        source: str = "labels",
        image_size: tuple[int, int] | None = None,
        info: dict[str, Any] | None = None,
    ) -> tuple["ViewMasks", np.ndarray]:
        """Every distinct non-zero value of every label map [L,H,W] is one mask (score 1).

        Returns the masks and their (map index, value) pairs [M,2] int64.
        """
        patch_index, membership, labels = patches_from_label_maps(label_maps)
        return cls.from_parts(patch_index, membership, None, source, image_size, info), labels

    # shape --------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return int(self.patch_index.shape[0])

    @property
    def width(self) -> int:
        return int(self.patch_index.shape[1])

    @property
    def n_masks(self) -> int:
        return int(self.membership.shape[0])

    @property
    def n_patches(self) -> int:
        return int(self.membership.shape[1])

    def patch_counts(self) -> np.ndarray:
        """Pixels per patch: [P] int64."""
        return derive.patch_counts(self.patch_index, self.n_patches)

    # dense views ----------------------------------------------------------------------------

    def masks(self) -> np.ndarray:
        """Dense masks: [M,H,W] bool (memory M·H·W bytes: use per view only)."""
        return self.membership[:, self.patch_index]

    def mask(self, i: int) -> np.ndarray:
        """One dense mask: [H,W] bool."""
        return self.membership[i][self.patch_index]

    def masks_at(self, y: int, x: int) -> np.ndarray:
        """Indices of every mask containing pixel (y, x): [K] int64."""
        return np.flatnonzero(self.membership[:, self.patch_index[y, x]])

    # derived --------------------------------------------------------------------------------

    def correlation(self) -> np.ndarray:
        """OmniSeg3D correlation matrix: [P,P] int32."""
        return derive.correlation(self.membership)

    def intersections(self) -> np.ndarray:
        """Pairwise intersection areas: [M,M] int64."""
        return derive.intersections(self.membership, self.patch_counts())

    def iou(self) -> np.ndarray:
        """Pairwise IoU: [M,M] float64."""
        return derive.iou_matrix(self.membership, self.patch_counts())

    def inclusion_tree(self, p_in: float = 0.95, p_iou: float = 0.9) -> derive.InclusionTree:
        """UFF inclusion tree (child when |A∩B|/|A| > p_in and IoU < p_iou)."""
        return derive.inclusion_tree(self.membership, self.patch_counts(), p_in, p_iou)

    def nested(self, threshold: float = 0.9) -> "ViewMasks":
        """OmniSeg3D-nested copy: larger masks absorb smaller ones they cover by > threshold."""
        membership = derive.nest_masks(self.membership, self.patch_counts(), threshold)
        patch_index, membership = compact_patches(self.patch_index, membership)
        return ViewMasks.from_parts(patch_index, membership, self.scores, self.source, self.image_size, self.info)

    def subset(self, keep: np.ndarray) -> "ViewMasks":
        """Only the masks ``keep`` (indices [K] or bool [M]), patches re-canonicalised."""
        keep = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        patch_index, membership = compact_patches(self.patch_index, self.membership[keep])
        return ViewMasks.from_parts(patch_index, membership, self.scores[keep], self.source, self.image_size, self.info)

    def deduplicated(self, iou_threshold: float = 0.9) -> "ViewMasks":
        """Near-duplicates removed: by decreasing score, a mask whose IoU with an already kept
        mask exceeds ``iou_threshold`` is dropped (mask order otherwise kept)."""
        keep = derive.suppress_duplicates(self.membership, self.patch_counts(), self.scores, iou_threshold)
        return self.subset(keep)

    def label_map(
        self, granularity: derive.Granularity = "finest", tree: derive.InclusionTree | None = None
    ) -> np.ndarray:
        """Flat label map: [H,W] int32, mask index + 1, 0 = no mask (see ``derive.patch_labels``)."""
        labels = derive.patch_labels(self.membership, self.patch_counts(), granularity, tree)
        return (labels + 1).astype(np.int32)[self.patch_index]

    def masks_at_pixel(self, y: int, x: int, tree: derive.InclusionTree | None = None) -> np.ndarray:
        """The mask holding pixel (y, x) at every tree level, coarsest first: [L] int32, -1 = none."""
        if tree is None:
            tree = self.inclusion_tree()
        p = int(self.patch_index[y, x])
        column = self.membership[:, p : p + 1]
        counts = self.patch_counts()[p : p + 1]
        out = [derive.patch_labels(column, counts, k, tree, tree.areas)[0] for k in range(tree.n_levels)]
        return np.asarray(out, dtype=np.int32)

    def resized(self, height: int, width: int) -> "ViewMasks":
        """Nearest-neighbour resample of the patch map (pixel centres); patch ids unchanged."""
        rows = np.minimum(((np.arange(height) + 0.5) * self.height / height).astype(np.int64), self.height - 1)
        cols = np.minimum(((np.arange(width) + 0.5) * self.width / width).astype(np.int64), self.width - 1)
        patch_index = self.patch_index[rows[:, None], cols[None, :]]
        return ViewMasks.from_parts(patch_index, self.membership, self.scores, self.source, self.image_size, self.info)

    # files ----------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Atomically write the compressed ``.npz``."""
        save_npz(
            path,
            version=np.asarray(FORMAT_VERSION, dtype=np.int64),
            patch_index=self.patch_index,
            membership=np.packbits(self.membership, axis=1),
            n_patches=np.asarray(self.n_patches, dtype=np.int64),
            scores=self.scores,
            areas=self.areas,
            source=np.asarray(self.source),
            no_mask_patch=np.asarray(-1 if self.no_mask_patch is None else self.no_mask_patch, dtype=np.int64),
            image_size=np.asarray(self.image_size, dtype=np.int64),
            info=np.asarray(json.dumps(self.info)),
        )

    @classmethod
    def load(cls, path: str | Path) -> "ViewMasks":
        """Read a file written by :meth:`save`; ``GssegError`` naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise file_error(path, "mask file not found (run `gsseg masks` on the dataset first)")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in _KEYS if k not in data.files]
                if missing:
                    raise file_error(path, f"not a gsseg mask file (missing {', '.join(missing)})")
                version = int(data["version"])
                if version != FORMAT_VERSION:
                    raise file_error(path, f"mask file version {version} is not supported (expected {FORMAT_VERSION})")
                scores = data["scores"]
                n_patches = int(data["n_patches"])
                membership = np.unpackbits(data["membership"], axis=1, count=n_patches).astype(bool)
                membership = membership.reshape(len(scores), n_patches)
                no_mask = int(data["no_mask_patch"])
                return cls(
                    patch_index=data["patch_index"],
                    membership=membership,
                    scores=scores,
                    areas=data["areas"],
                    source=str(data["source"]),
                    no_mask_patch=None if no_mask < 0 else no_mask,
                    image_size=cast(
                        "tuple[int, int]", tuple(int(v) for v in data["image_size"])
                    ),  # [2] as written by save
                    info=json.loads(str(data["info"])),
                )
        except (OSError, ValueError, zipfile.BadZipFile, KeyError, json.JSONDecodeError, EOFError) as e:
            raise file_error(path, f"unreadable mask file ({e})") from e


class MaskStore:
    """The mask files of one dataset: ``<masks_dir>/<stem>.npz``."""

    def __init__(self, masks_dir: str | Path) -> None:
        self.root = Path(masks_dir)

    def path(self, stem: str) -> Path:
        return self.root / f"{stem}.npz"

    def has(self, stem: str) -> bool:
        return self.path(stem).is_file()

    def views(self) -> list[str]:
        """Stems with a mask file, sorted (temporary files of interrupted writes are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.npz") if not is_temporary(p.name))

    def load(self, stem: str) -> ViewMasks:
        return ViewMasks.load(self.path(stem))

    def save(self, stem: str, view_masks: ViewMasks) -> Path:
        path = self.path(stem)
        view_masks.save(path)
        return path

    def header(self, stem: str) -> dict[str, Any]:
        """Counts of one view without reading its patch map: masks, patches, source, image size."""
        path = self.path(stem)
        try:
            with np.load(path, allow_pickle=False) as data:
                h, w = (int(v) for v in data["image_size"])
                return {
                    "masks": int(len(data["scores"])),
                    "patches": int(data["n_patches"]),
                    "source": str(data["source"]),
                    "height": h,
                    "width": w,
                }
        except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError) as e:
            raise file_error(path, f"unreadable mask file ({e})") from e


def summarize(masks_dir: str | Path) -> dict[str, Any]:
    """Mask counts per view for ``gsseg info``.

    Returns ``{"views": n, "total_masks": int, "sources": {name: n_views},
    "per_view": {stem: {"masks", "patches", "source", "height", "width"}}}``.
    """
    store = MaskStore(masks_dir)
    per_view = {stem: store.header(stem) for stem in store.views()}
    sources: dict[str, int] = {}
    for h in per_view.values():
        sources[h["source"]] = sources.get(h["source"], 0) + 1
    return {
        "views": len(per_view),
        "total_masks": int(sum(h["masks"] for h in per_view.values())),
        "sources": sources,
        "per_view": per_view,
    }
