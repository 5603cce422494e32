"""A posed-image scene: cameras per split plus lazily read images, depth, labels and points."""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsseg.data.cameras import Cameras
from gsseg.data.images import read_depth, read_image, read_labels
from gsseg.data.points import read_points_ply
from gsseg.data.records import ParsedScene, ViewRecord, read_json
from gsseg.errors import GssegError, file_error

SPLITS = ("train", "test", "all")
CANONICAL_LEVELS = ("part", "object", "group")


def load_dataset(
    path: str | Path, downscale: float = 1, test_every: int = 8, check_images: bool = True
) -> "SceneDataset":
    """Open a dataset folder: ``transforms_train.json`` / ``transforms.json`` or a COLMAP model.

    Args:
        path: the dataset folder (or a transforms JSON inside it).
        downscale: divide image sizes by this factor (images, depth, labels and intrinsics).
        test_every: for ``transforms.json`` without filename lists and for COLMAP, every
            ``test_every``-th view by sorted name is a test view (0: no test split).
        check_images: read every image header now so missing or mis-sized images fail early.
    """
    from gsseg.data.colmap import find_model_dir, load_colmap
    from gsseg.data.transforms_json import is_transforms_dataset, load_transforms

    path = Path(path).expanduser()
    if not path.exists():
        raise file_error(path, "dataset folder not found")
    root = path.parent if path.is_file() else path
    if is_transforms_dataset(root):
        parsed = load_transforms(root, test_every=test_every, check_images=check_images)
    elif find_model_dir(root) is not None:
        parsed = load_colmap(root, test_every=test_every, check_images=check_images)
    else:
        raise file_error(
            root,
            "not a dataset: no transforms_train.json or transforms.json, and no COLMAP model in sparse/0 or sparse",
        )
    return SceneDataset(root, parsed, downscale)


class SceneDataset:
    """Cameras per split and per-view data read on demand (see ``load_dataset``).

    Attributes:
        root: the dataset folder.
        format: "transforms" or "colmap".
        downscale: image size divisor applied to everything returned.
        train, test: :class:`Cameras` of each split (already scaled by ``downscale``).
    """

    def __init__(self, root: Path, parsed: ParsedScene, downscale: float = 1) -> None:
        if (
            isinstance(downscale, bool)
            or not isinstance(downscale, (int, float))
            or not math.isfinite(downscale)
            or downscale <= 0
        ):
            raise GssegError(f"downscale must be a positive number, got {downscale!r}")
        self.root = Path(root)
        self.format = parsed.format
        self.source = parsed.source
        self.downscale = float(downscale)
        self._parsed = parsed
        self._views: dict[str, ViewRecord] = {v.name: v for v in parsed.views}
        self._split_names = {s: [v.name for v in parsed.views if v.split == s] for s in ("train", "test")}
        self._split_names["all"] = self._split_names["train"] + self._split_names["test"]
        self._cameras = {s: self._build_cameras(names) for s, names in self._split_names.items()}
        all_cams = self._cameras["all"]
        self._sizes = {
            n: (int(w), int(h)) for n, w, h in zip(all_cams.names, all_cams.widths.tolist(), all_cams.heights.tolist())
        }

    def __repr__(self) -> str:
        return (
            f"SceneDataset({str(self.root)!r}, {self.format}, train={len(self.train)}, test={len(self.test)}, "
            f"downscale={self.downscale:g})"
        )

    # --- cameras -----------------------------------------------------------------------------

    @property
    def train(self) -> Cameras:
        return self._cameras["train"]

    @property
    def test(self) -> Cameras:
        return self._cameras["test"]

    def cameras(self, split: str = "train") -> Cameras:
        """Cameras of ``split`` ("train", "test" or "all" = train then test)."""
        return self._cameras[self._check_split(split)]

    def names(self, split: str = "train") -> list[str]:
        """Image stems of ``split``, in camera order."""
        return list(self._split_names[self._check_split(split)])

    def split_of(self, name: str) -> str:
        """ "train" or "test"."""
        return self._view(name).split

    def size(self, name: str) -> tuple[int, int]:
        """(width, height) of ``name`` after downscaling."""
        return self._sizes[self._view(name).name]

    @cached_property
    def scene_scale(self) -> float:
        """Largest distance of a training camera centre from their mean (1.0 for a single camera)."""
        centers = torch.linalg.inv(self.train.viewmats.double())[:, :3, 3]
        radius = float((centers - centers.mean(0)).norm(dim=-1).max())
        return radius if radius > 1e-9 else 1.0

    # --- per-view rasters --------------------------------------------------------------------

    def image_path(self, name: str) -> Path:
        """The file ``image(name)`` reads: a pre-downscaled ``<folder>_<d>/`` copy if present."""
        rec = self._view(name)
        alt = self._downscaled_copy(rec)
        return alt if alt is not None else rec.image_path

    def image(self, name: str) -> torch.Tensor:
        """RGB float32 ``[H,W,3]`` in [0,1] at the downscaled size."""
        rec = self._view(name)
        size = self.size(name)
        alt = self._downscaled_copy(rec)
        if alt is not None:
            return read_image(alt, expected=size, source=f"{self.source.name} with downscale {self.downscale:g}")
        return read_image(rec.image_path, size=size, expected=(rec.width, rec.height), source=self.source.name)

    def depth_path(self, name: str) -> Path:
        """The depth file of ``name``: the one the dataset lists, else ``depth/<name>.npy``."""
        rec = self._view(name)
        return rec.depth_path if rec.depth_path is not None else self.root / "depth" / f"{rec.name}.npy"

    def depth(self, name: str) -> torch.Tensor | None:
        """z-depth float32 ``[H,W]`` (0 = no surface) from ``depth_path(name)``, or None if absent."""
        path = self.depth_path(name)
        if not path.is_file():
            return None
        rec = self._view(name)
        return read_depth(path, (rec.width, rec.height), self.size(name), scale=rec.depth_scale)

    @cached_property
    def gt_levels(self) -> list[str]:
        """Ground-truth label levels present in ``gt/``, finest first (``hierarchy.json`` order if given)."""
        gt_dir = self.root / "gt"
        if not gt_dir.is_dir():
            return []
        present = sorted(d.name for d in gt_dir.iterdir() if d.is_dir() and any(d.glob("*.png")))
        declared = [str(x) for x in (self.hierarchy or {}).get("levels", []) if isinstance(x, str)]
        order = [lv for lv in declared if lv in present]
        order += [lv for lv in CANONICAL_LEVELS if lv in present and lv not in order]
        order += [lv for lv in present if lv not in order]
        return order

    def gt(self, name: str, level: str) -> np.ndarray | None:
        """Ground-truth labels int64 ``[H,W]`` (0 = background) at ``level``, or None if this view has none."""
        if level not in self.gt_levels:
            raise GssegError(
                f"{self.root}: no ground-truth level '{level}' (available: {', '.join(self.gt_levels) or 'none'})"
            )
        rec = self._view(name)
        path = self.root / "gt" / level / f"{rec.name}.png"
        if not path.is_file():
            return None
        return read_labels(path, (rec.width, rec.height), self.size(name))

    # --- scene-level extras ------------------------------------------------------------------

    @cached_property
    def points(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Sparse points: ([P,3] float32 xyz, [P,3] float32 rgb in [0,1]), or None."""
        if self._parsed.points is not None:
            return self._parsed.points
        if self._parsed.points_file is not None:
            return read_points_ply(self._parsed.points_file)
        return None

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    @cached_property
    def hierarchy(self) -> dict[str, Any] | None:
        """``hierarchy.json`` (levels and part → object → group map), or None."""
        path = self.root / "hierarchy.json"
        if not path.is_file():
            return None
        data = read_json(path)
        if not isinstance(data, dict):
            raise file_error(path, "top level must be a JSON object")
        return data

    @cached_property
    def pairs(self) -> list[tuple[str, str]]:
        """(test view, partner view) pairs from ``pairs.json``; [] if absent."""
        path = self.root / "pairs.json"
        if not path.is_file():
            return []
        data = read_json(path)
        forms = 'a list of ["view", "partner"] pairs or of {"view": ..., "partner": ...} objects'
        if not isinstance(data, list):
            raise file_error(path, f"must be {forms}")
        out = []
        for i, item in enumerate(data):
            if isinstance(item, dict):
                pair = (item.get("view"), item.get("partner"))
            elif isinstance(item, list) and len(item) == 2:
                pair = (item[0], item[1])
            else:
                pair = (None, None)
            view, partner = pair
            if not (isinstance(view, str) and isinstance(partner, str)):
                raise file_error(path, f"entry {i} is {json.dumps(item)[:80]}; expected two view names, as {forms}")
            for key, name in zip(("view", "partner"), pair):
                if name not in self._views:
                    raise file_error(path, f"entry {i}: {key} '{name}' is not a view of this dataset")
            out.append((view, partner))
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary: split sizes, resolutions and which optional data is present."""
        sizes = sorted(set(self._sizes.values()))
        n_depth = sum(self.depth_path(n).is_file() for n in self._views)
        gt = {lv: sum((self.root / "gt" / lv / f"{n}.png").is_file() for n in self._views) for lv in self.gt_levels}
        pts = self.points
        return {
            "path": str(self.root),
            "format": self.format,
            "source": str(self.source),
            "downscale": self.downscale,
            "train_views": len(self.train),
            "test_views": len(self.test),
            "resolutions": [f"{w}x{h}" for w, h in sizes],
            "scene_scale": self.scene_scale,
            "depth_views": n_depth,
            "gt_levels": gt,
            "points": 0 if pts is None else int(len(pts[0])),
            "pairs": len(self.pairs),
            "hierarchy": self.hierarchy is not None,
        }

    # --- internals ---------------------------------------------------------------------------

    def _view(self, name: str) -> ViewRecord:
        rec = self._views.get(name)
        if rec is None:
            shown = ", ".join(list(self._views)[:5]) + (", ..." if len(self._views) > 5 else "")
            raise GssegError(f"{self.root}: no view named '{name}' (views: {shown})")
        return rec

    def _check_split(self, split: str) -> str:
        if split not in SPLITS:
            raise GssegError(f"unknown split '{split}' (choose train, test or all)")
        return split

    def _build_cameras(self, names: list[str]) -> Cameras:
        recs = [self._views[n] for n in names]
        if not recs:
            return Cameras(torch.zeros(0, 4, 4), torch.zeros(0, 3, 3), torch.zeros(0), torch.zeros(0), [])
        cams = Cameras(
            torch.from_numpy(np.stack([r.viewmat for r in recs])),
            torch.from_numpy(np.stack([r.K for r in recs])),
            torch.as_tensor([r.width for r in recs], dtype=torch.int64),
            torch.as_tensor([r.height for r in recs], dtype=torch.int64),
            names,
        )
        return cams if self.downscale == 1.0 else cams.scaled(1.0 / self.downscale)

    def _downscaled_copy(self, rec: ViewRecord) -> Path | None:
        """``<images>_<d>/<file>`` when downscaling by an integer ``d`` and that copy exists."""
        if self.downscale == 1.0 or not self.downscale.is_integer():
            return None
        folder = rec.image_path.parent
        alt = folder.with_name(f"{folder.name}_{int(self.downscale)}") / rec.image_path.name
        return alt if alt.is_file() else None
