"""A posed-image scene: cameras per split plus lazily read images, depth, labels and points.

Every verb sees the dataset through :func:`load_dataset` at one *working resolution* and through
pinhole cameras:

* lens distortion is removed (:mod:`gsseg.data.undistort`): the cameras are the undistorted
  pinhole ones and photos, depth, ground truth and imported label maps are resampled into them;
* the working resolution is the native one divided by ``downscale`` and capped so the longest
  side is at most ``max_size`` pixels. With neither given, photos whose longest side exceeds
  :data:`AUTO_MAX_SIZE` are capped there (a phone photo trains in minutes on a laptop CPU);
* undistorted or resized photos of at least :data:`DISK_CACHE_MIN_PIXELS` native pixels are
  computed once and kept in the user cache (:mod:`gsseg.data.cache`), and the last few hundred MB
  of them in memory, so no photo is decoded twice in a process or recomputed by a later verb.
"""

from __future__ import annotations

import json
import math
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsseg.data.cache import RasterCache, dataset_cache_dir, derived_dir, file_stamp
from gsseg.data.cameras import Cameras
from gsseg.data.images import read_depth, read_image, read_labels
from gsseg.data.points import read_points_ply
from gsseg.data.records import ParsedScene, ViewRecord, read_json
from gsseg.data.undistort import Undistorter, undistorted_camera, undistorter
from gsseg.errors import GssegError, file_error
from gsseg.utils.lru import BoundedLRU

SPLITS = ("train", "test", "all")
CANONICAL_LEVELS = ("part", "object", "group")
# Longest image side (pixels) when the user gives neither --downscale nor --max-size. A phone photo
# (1080x1920) becomes 270x480: one CPU render + backward there costs 1/2.9 of 540x960 and 1/1.7 of
# 360x640 (fox, 100k Gaussians), and a 3000-step RGB stage at this size fits the minutes a 2-core
# laptop should take (issue 28: ~13 min; 30.7 dB held-out on the fox from a COLMAP model).
AUTO_MAX_SIZE = 480
# Photos with at least this many native pixels are kept in the disk cache once undistorted/resized.
DISK_CACHE_MIN_PIXELS = 250_000
# Bytes of working-resolution photos a dataset keeps in memory.
MEMORY_CACHE_BYTES = 256 * 2**20
_warned: set[str] = set()


def load_dataset(
    path: str | Path,
    downscale: float | None = None,
    test_every: int = 8,
    check_images: bool = True,
    *,
    max_size: int | None = None,
    strict: bool = False,
) -> "SceneDataset":
    """Open a dataset folder: ``transforms_train.json`` / ``transforms.json`` or a COLMAP model.

    Args:
        path: the dataset folder (or a transforms JSON inside it).
        downscale: divide native image sizes by this factor (images, depth, labels and intrinsics).
        test_every: for ``transforms.json`` without filename lists and for COLMAP, every
            ``test_every``-th view by sorted name is a test view (0: no test split).
        check_images: read every image header now so mis-sized images fail early.
        max_size: cap the longest image side at this many pixels after ``downscale`` (0: no cap).
            With neither ``downscale`` nor ``max_size`` given the cap is :data:`AUTO_MAX_SIZE`.
        strict: refuse a dataset that lists frames whose image file is missing (by default they
            are skipped with one warning line on stderr).
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
    if parsed.missing:
        n, what = len(parsed.missing), "frames" if parsed.format == "transforms" else "posed images"
        first, where = parsed.missing[0]
        if strict:
            raise file_error(
                first, f"image file not found ({where}); {n} of {parsed.listed} {what} have no image file (--strict)"
            )
        key = str(parsed.source.resolve())
        if key not in _warned:
            _warned.add(key)
            rel = parsed.source.relative_to(root).as_posix() if parsed.source.is_relative_to(root) else parsed.source
            where_listed = rel if parsed.format == "transforms" else f"the COLMAP model {rel}"
            print(
                f"warning: {n} of {parsed.listed} {what} in {where_listed} have no image file; "
                "skipped (--strict refuses)",
                file=sys.stderr,
            )
    return SceneDataset(root, parsed, downscale, max_size=max_size)


def _check_factor(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise GssegError(f"{name} must be a positive number, got {value!r}")


class SceneDataset:
    """Cameras per split and per-view data read on demand (see ``load_dataset``).

    Attributes:
        root: the dataset folder.
        format: "transforms" or "colmap".
        downscale: the native-size divisor applied to everything returned (``max_size`` included).
        max_size: the longest-side cap in pixels that was applied (0: none).
        train, test: pinhole :class:`Cameras` of each split at the working resolution.
    """

    def __init__(
        self, root: Path, parsed: ParsedScene, downscale: float | None = None, max_size: int | None = None
    ) -> None:
        if downscale is not None:
            _check_factor("downscale", downscale)
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0):
            raise GssegError(f"max_size must be a whole number of pixels >= 0 (0: no cap), got {max_size!r}")
        self.root = Path(root)
        self.format = parsed.format
        self.source = parsed.source
        self._parsed = parsed
        self._views: dict[str, ViewRecord] = {v.name: v for v in parsed.views}
        self._split_names = {s: [v.name for v in parsed.views if v.split == s] for s in ("train", "test")}
        self._split_names["all"] = self._split_names["train"] + self._split_names["test"]
        self._pinhole = {v.name: self._undistorted_native(v) for v in parsed.views}
        longest = max(max(w, h) for _K, w, h in self._pinhole.values())
        self.requested_downscale = downscale
        self.max_size = int(max_size) if max_size is not None else (AUTO_MAX_SIZE if downscale is None else 0)
        factor = 1.0 if downscale is None else float(downscale)
        self.auto_capped = False
        if self.max_size > 0 and longest / factor > self.max_size:
            factor = longest / self.max_size
            self.auto_capped = max_size is None
        self.downscale = float(factor)
        self._cameras = {s: self._build_cameras(names) for s, names in self._split_names.items()}
        all_cams = self._cameras["all"]
        self._sizes = {
            n: (int(w), int(h)) for n, w, h in zip(all_cams.names, all_cams.widths.tolist(), all_cams.heights.tolist())
        }
        # the distorted photos at the working scale: source size and intrinsics of each undistortion
        distorted = self._build_cameras(self._split_names["all"], distorted=True)
        self._src = {
            n: ((int(w), int(h)), distorted.Ks[i].double().numpy())
            for i, (n, w, h) in enumerate(zip(distorted.names, distorted.widths.tolist(), distorted.heights.tolist()))
        }
        self._memory: BoundedLRU[np.ndarray] = BoundedLRU(lambda a: int(a.nbytes), max_bytes=MEMORY_CACHE_BYTES)
        self._disk = RasterCache(self._cache_dir("images"))

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
        """RGB float32 ``[H,W,3]`` in [0,1] at the working size, undistorted."""
        rec = self._view(name)
        size = self.size(name)
        if rec.distortion is None and size == (rec.width, rec.height):
            return read_image(rec.image_path, size=size, expected=(rec.width, rec.height), source=self.source.name)
        arr = self._memory.get(rec.name, lambda: self._working_image(rec))
        if arr.dtype == np.uint8:
            return torch.from_numpy(arr.astype(np.float32) / np.float32(255.0))
        return torch.from_numpy(np.array(arr, dtype=np.float32))

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
        src_size = self._src[rec.name][0]
        arr = read_depth(path, (rec.width, rec.height), src_size, scale=rec.depth_scale).numpy()
        warp = self._undistorter(rec)
        return torch.from_numpy(np.ascontiguousarray(arr if warp is None else warp.nearest(arr, 0.0)))

    def resample_labels(self, name: str, labels: np.ndarray, path: str | Path) -> np.ndarray:
        """A label map of view ``name`` (``[H,W]`` integers at the native or working size of its photo,
        as distorted as the photo) at the working size and undistorted, nearest-neighbour; 0 outside.

        ``path`` is the file it came from (named in the error when its size matches neither).
        """
        rec = self._view(name)
        src_size = self._src[rec.name][0]
        got = (labels.shape[1], labels.shape[0])
        if labels.ndim != 2 or got not in ((rec.width, rec.height), src_size):
            raise file_error(
                path,
                f"label image is {got[0]}x{got[1]} but the view's image is {rec.width}x{rec.height}"
                + (
                    f" ({src_size[0]}x{src_size[1]} at the working size)" if src_size != (rec.width, rec.height) else ""
                ),
            )
        from gsseg.data.images import nearest_resize

        arr = nearest_resize(labels, src_size)
        warp = self._undistorter(rec)
        return np.ascontiguousarray(arr if warp is None else warp.nearest(arr, 0))

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
        labels = read_labels(path, (rec.width, rec.height), self._src[rec.name][0])
        warp = self._undistorter(rec)
        return labels if warp is None else np.ascontiguousarray(warp.nearest(labels, 0))

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
        """``DATA/masks``; for a read-only dataset folder without one, ``masks`` in its cache folder."""
        return self.derived_dir("masks")

    def derived_dir(self, name: str) -> Path:
        """Where to keep data derived from this dataset (masks, triangulated points, ...):
        ``DATA/<name>`` when it exists or the dataset folder is writable, else
        ``<cache>/datasets/<dataset>/<name>`` (see :mod:`gsseg.data.cache`)."""
        return derived_dir(self.root, name)

    @property
    def skipped_frames(self) -> int:
        """Listed frames (posed images) left out because their image file is missing."""
        return len(self._parsed.missing)

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
        """JSON-friendly summary: split sizes and rule, resolutions, lens, and which optional data is present."""
        sizes = sorted(set(self._sizes.values()))
        native = sorted({(v.width, v.height) for v in self._views.values()})
        n_depth = sum(self.depth_path(n).is_file() for n in self._views)
        gt = {lv: sum((self.root / "gt" / lv / f"{n}.png").is_file() for n in self._views) for lv in self.gt_levels}
        pts = self.points
        lenses = sorted({v.distortion.describe() for v in self._views.values() if v.distortion is not None})
        return {
            "path": str(self.root),
            "format": self.format,
            "source": str(self.source),
            "downscale": self.downscale,
            "max_size": self.max_size,
            "auto_size": self.auto_capped,
            "train_views": len(self.train),
            "test_views": len(self.test),
            "split": self._parsed.split_rule,
            "listed_frames": self._parsed.listed or len(self._views),
            "skipped_frames": self.skipped_frames,
            "resolutions": [f"{w}x{h}" for w, h in sizes],
            "native_resolutions": [f"{w}x{h}" for w, h in native],
            "lens": lenses,
            "undistorted_views": sum(v.distortion is not None for v in self._views.values()),
            "ignored_fields": list(self._parsed.ignored),
            "scene_scale": self.scene_scale,
            "depth_views": n_depth,
            "gt_levels": gt,
            "points": 0 if pts is None else int(len(pts[0])),
            "pairs": len(self.pairs),
            "hierarchy": self.hierarchy is not None,
            "masks_dir": str(self.masks_dir),
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

    def _undistorted_native(self, rec: ViewRecord) -> tuple[np.ndarray, int, int]:
        """(K [3,3], width, height) of the pinhole camera ``rec`` is used through, at native size."""
        if rec.distortion is None:
            return np.asarray(rec.K, dtype=np.float64), rec.width, rec.height
        try:
            return undistorted_camera(rec.K, rec.distortion, rec.width, rec.height)
        except GssegError as e:
            raise file_error(self.source, f"view {rec.name}: {e}") from None
        except Exception as e:  # pycolmap / OpenCV raise their own types with C++ messages
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise file_error(
                self.source, f"view {rec.name}: cannot undistort {rec.distortion.describe()} ({msg})"
            ) from None

    def _build_cameras(self, names: list[str], distorted: bool = False) -> Cameras:
        """Cameras of ``names`` at the working scale: the pinhole ones, or (``distorted``) the photos' own."""
        recs = [self._views[n] for n in names]
        if not recs:
            return Cameras(torch.zeros(0, 4, 4), torch.zeros(0, 3, 3), torch.zeros(0), torch.zeros(0), [])
        cams = [(r.K, r.width, r.height) if distorted else self._pinhole[r.name] for r in recs]
        out = Cameras(
            torch.from_numpy(np.stack([r.viewmat for r in recs])),
            torch.from_numpy(np.stack([np.asarray(K, dtype=np.float64) for K, _w, _h in cams])),
            torch.as_tensor([w for _K, w, _h in cams], dtype=torch.int64),
            torch.as_tensor([h for _K, _w, h in cams], dtype=torch.int64),
            names,
        )
        return out if self.downscale == 1.0 else out.scaled(1.0 / self.downscale)

    def _undistorter(self, rec: ViewRecord) -> Undistorter | None:
        """The working-size undistortion of ``rec``'s rasters (None for a pinhole camera)."""
        if rec.distortion is None:
            return None
        src_size, K_src = self._src[rec.name]
        index = self._split_names["all"].index(rec.name)
        K_dst = self._cameras["all"].Ks[index].double().numpy()
        return undistorter(K_src, rec.distortion, src_size, K_dst, self.size(rec.name), (rec.width, rec.height))

    def _working_image(self, rec: ViewRecord) -> np.ndarray:
        """``rec``'s photo at the working size, undistorted: uint8 ``[H,W,3]`` when it comes from (or goes
        to) the disk cache and the photo is 8-bit, else float32 in [0,1]."""
        src_size, _K = self._src[rec.name]
        alt = self._downscaled_copy(rec)
        file = alt if alt is not None else rec.image_path
        on_disk = rec.width * rec.height >= DISK_CACHE_MIN_PIXELS
        key: list[Any] = []
        if on_disk:
            key = [
                file_stamp(file) if file.is_file() else str(file),
                np.asarray(rec.K).tolist(),
                None if rec.distortion is None else [rec.distortion.model, list(rec.distortion.coeffs)],
                [rec.width, rec.height],
                list(src_size),
                list(self.size(rec.name)),
            ]
            hit = self._disk.get(rec.name, key)
            if hit is not None and hit.shape[:2] == self.size(rec.name)[::-1]:
                return np.array(hit)
        if alt is not None:
            img = read_image(alt, expected=src_size, source=f"{self.source.name} with downscale {self.downscale:g}")
        else:
            img = read_image(rec.image_path, size=src_size, expected=(rec.width, rec.height), source=self.source.name)
        arr = img.numpy()
        warp = self._undistorter(rec)
        if warp is not None:
            arr = warp.image(arr)
        if on_disk:
            if _eight_bit(file):
                arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
            self._disk.put(rec.name, key, arr)
        return arr

    def _cache_dir(self, name: str) -> Path | None:
        base = dataset_cache_dir(self.root)
        return None if base is None else base / name

    def _downscaled_copy(self, rec: ViewRecord) -> Path | None:
        """``<images>_<d>/<file>`` when downscaling by an integer ``d`` and that copy exists."""
        if self.downscale == 1.0 or not self.downscale.is_integer():
            return None
        folder = rec.image_path.parent
        alt = folder.with_name(f"{folder.name}_{int(self.downscale)}") / rec.image_path.name
        return alt if alt.is_file() else None


def _eight_bit(path: Path) -> bool:
    """Whether the photo has 8 bits per channel (then the cache keeps uint8 and loses nothing)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "RGBX")
    except OSError:
        return False
