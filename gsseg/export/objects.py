"""Per-object export of a segmentation: splat files any splat viewer opens.

```
DIR/object_<id>.<ext>             the Gaussians of each selected segment (no extra properties)
DIR/scene_without_selected.<ext>  every other Gaussian (unassigned ones included)
DIR/scene_with_labels.ply         with --with-labels: the whole scene plus an int ``object_id``
                                  vertex property (0 = unassigned), kept by splat-transform/SuperSplat
DIR/labels.npy                    int32 [N] labels of the whole scene as exported (the cut's, with the
                                  outliers removed from selected objects set to 0), row = RUN/scene.ply row
DIR/segments.json                 manifest: cut, selection, formats, files written and their Gaussian
                                  counts, outlier rule and count, and per segment id, parent id,
                                  Gaussian count, outliers removed, bounding box of the means,
                                  display colour, files
```

Outliers: by default every selected object loses the Gaussians far from its bulk
(:mod:`gsseg.segment.outliers`); they go to ``scene_without_selected`` (no Gaussian of the scene
is dropped) and their count is in the manifest, per segment and in total. ``keep_outliers``
exports the cut's segments as they are.

``<ext>`` is one per requested format (``formats.py``: ply, compressed.ply, spz, splat). A file
that would hold no Gaussian is not written (a cut covering every Gaussian has no
``scene_without_selected``); the manifest lists only files that exist and says why others
are missing. The folder is written beside ``DIR`` and swapped in: an existing export is
replaced whole or not at all. ``DIR/.gsseg-export`` lists every file the export wrote; a non-empty
``DIR`` without it, or holding anything it does not list, is refused (never deleted).
"""

from __future__ import annotations

import colorsys
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gsseg.errors import GssegError, file_error
from gsseg.export.formats import check_formats, file_name, write_splats
from gsseg.gaussians.scene import GaussianScene
from gsseg.segment.cuts import replace_dir
from gsseg.segment.outliers import object_inliers
from gsseg.segment.outliers import settings as outlier_settings
from gsseg.utils.atomic import atomic_path, write_json
from gsseg.utils.progress import NullProgress, progress_bar

MANIFEST = "segments.json"
REST_STEM = "scene_without_selected"
LABELLED_FILE = "scene_with_labels.ply"
LABELS_FILE = "labels.npy"
MANIFEST_VERSION = 2
OWNER_MARK = ".gsseg-export"  # {"writer": OWNER, "files": [...]}: what the export wrote; only that is replaced
OWNER = "gsseg export"


def object_file(segment_id: int, fmt: str = "ply") -> str:
    return file_name(f"object_{segment_id}", fmt)


def segment_color(segment_id: int) -> list[int]:
    """A display colour [r,g,b] 0..255 per id: golden-ratio hue steps, so neighbouring ids differ."""
    hue = (segment_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
    return [int(round(r * 255)), int(round(g * 255)), int(round(b * 255))]


def owned_files(out_dir: Path) -> set[str] | None:
    """Names listed by ``out_dir``'s :data:`OWNER_MARK` (the files an export wrote there), or None
    when the folder has no readable mark of gsseg's."""
    try:
        mark = json.loads((out_dir / OWNER_MARK).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(mark, dict) or mark.get("writer") != OWNER or not isinstance(mark.get("files"), list):
        return None
    return {str(f) for f in mark["files"]} | {OWNER_MARK}


def check_out_dir(out_dir: Path) -> None:
    """GssegError unless ``out_dir`` is absent, empty, or an earlier export holding only the files
    that export wrote (its :data:`OWNER_MARK` lists them): an export replaces nothing else."""
    if out_dir.exists() and not out_dir.is_dir():
        raise file_error(out_dir, "exists and is not a folder; choose another --out")
    if not out_dir.is_dir():
        return
    entries = sorted(p.name for p in out_dir.iterdir())
    if not entries:
        return
    owned = owned_files(out_dir)
    if owned is None:
        raise file_error(
            out_dir, f"is not empty and not a gsseg export (no {OWNER_MARK} mark of gsseg's); choose another --out"
        )
    foreign = [e for e in entries if e not in owned]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise file_error(
            out_dir, f"holds files the earlier export did not write ({shown}); move them or choose another --out"
        )


def group_by_label(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Segment id (> 0) -> indices [n] of its Gaussians, in one sort (not one pass per segment)."""
    order = np.argsort(labels, kind="stable")
    ids, starts = np.unique(labels[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    return {int(i): order[s:e] for i, s, e in zip(ids, starts, ends) if i > 0}


def segment_summary(
    scene: GaussianScene,
    groups: dict[int, np.ndarray],
    parents: dict[int, int] | None,
    files: dict[int, dict[str, str]],
    removed: dict[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Manifest rows of every segment in ``groups`` (id -> Gaussian indices); ``files``: id -> format -> file;
    ``removed``: id -> outliers taken out of it (None in the row: not checked)."""
    means = scene.means.detach().cpu().numpy()
    rows = []
    for sid, idx in groups.items():
        pts = means[idx]
        written = files.get(sid, {})
        rows.append(
            {
                "id": sid,
                "parent": None if parents is None or sid not in parents else int(parents[sid]),
                "gaussians": int(len(idx)),
                "outliers_removed": None if removed is None or sid not in removed else int(removed[sid]),
                "bbox": {"min": pts.min(0).astype(float).tolist(), "max": pts.max(0).astype(float).tolist()},
                "color": segment_color(sid),
                "file": next(iter(written.values()), None),
                "files": written,
            }
        )
    return rows


def export_segments(
    scene: GaussianScene,
    labels: np.ndarray,
    out_dir: str | Path,
    selected: list[int] | None = None,
    parents: dict[int, int] | None = None,
    cut: str | None = None,
    source: dict[str, Any] | None = None,
    show_progress: bool = False,
    formats: list[str] | None = None,
    with_labels: bool = False,
    keep_outliers: bool = False,
) -> dict[str, Any]:
    """Write the export of ``scene`` segmented by ``labels [N]`` into ``out_dir``; returns the manifest.

    selected: segment ids to write as objects (default: every id > 0; a cut without segments
    exports only the rest of the scene); parents: id -> parent id in the next coarser cut;
    cut, source: recorded in the manifest; formats: file formats (default ``["ply"]``);
    with_labels: also write the whole scene with an ``object_id`` property; keep_outliers: export
    the selected segments whole (default: their outliers go to the rest of the scene, see module doc).
    """
    out_dir = Path(out_dir)
    formats = check_formats(formats)
    labels = np.asarray(labels).astype(np.int32)
    if labels.shape != (len(scene),):
        raise ValueError(f"labels must be [{len(scene)}], got {list(labels.shape)}")
    if len(scene) == 0:
        raise GssegError("nothing to export: the scene has no Gaussians")
    groups = group_by_label(labels)
    present = set(groups)
    chosen = sorted(present) if selected is None else sorted(set(int(s) for s in selected))
    if selected is not None and not chosen:
        raise GssegError("nothing to export: no segment selected")
    missing = [s for s in chosen if s not in present]
    if missing:
        shown = f"{min(present)}..{max(present)}" if present else "none"
        raise GssegError(f"segment ids {', '.join(map(str, missing))} are not in cut {cut!r} (ids present: {shown})")
    check_out_dir(out_dir)
    unassigned = int((labels == 0).sum())
    removed: dict[int, int] | None = None
    if not keep_outliers:
        labels, removed = remove_outliers(scene, labels, groups, chosen)
    scene = scene.with_features(None, None)
    in_selection = np.isin(labels, chosen)
    rest_index = np.flatnonzero(~in_selection)
    notes: list[str] = []
    if not chosen:
        notes.append(f"cut {cut!r} has no segments (every Gaussian is unassigned): no object files")
    if rest_index.size == 0:
        notes.append("the selection covers every Gaussian: no scene_without_selected file")
    if removed and sum(removed.values()):
        notes.append(
            f"{sum(removed.values())} outlier Gaussians of the selected objects (far from their bulk) are in "
            "scene_without_selected, not in the object files (--keep-outliers keeps them)"
        )
    written: dict[str, int] = {}
    object_files: dict[int, dict[str, str]] = {}
    rest_files: dict[str, str] = {}
    with replace_dir(out_dir) as tmp:
        jobs = [(sid, fmt) for sid in chosen for fmt in formats] + [(0, fmt) for fmt in formats]
        with progress_bar(transient=True) if show_progress else NullProgress() as bar:
            task = bar.add_task("export", total=len(jobs) + int(with_labels), info="")
            for sid, fmt in jobs:
                part = scene.subset(torch.from_numpy(np.sort(groups[sid]) if sid else rest_index))
                name = object_file(sid, fmt) if sid else file_name(REST_STEM, fmt)
                count = write_splats(tmp / name, part, fmt) if len(part) else 0
                if count:
                    written[name] = count
                    (object_files.setdefault(sid, {}) if sid else rest_files)[fmt] = name
                elif len(part):
                    notes.append(f"{name}: no Gaussian is visible enough for {fmt} (opacity <= 1/255): not written")
                bar.update(task, advance=1, info=name)
            if with_labels:
                written[LABELLED_FILE] = write_splats(tmp / LABELLED_FILE, scene, "ply", extra={"object_id": labels})
                bar.update(task, advance=1, info=LABELLED_FILE)
        manifest = {
            "version": MANIFEST_VERSION,
            "cut": cut,
            "source": source or {},
            "num_gaussians": int(len(scene)),
            "labelled_gaussians": int((labels > 0).sum()),
            "unassigned_gaussians": unassigned,
            "outliers": {
                **outlier_settings(),
                "enabled": not keep_outliers,
                "removed": 0 if removed is None else int(sum(removed.values())),
                "kept_in": "scene_without_selected",
            },
            "selected": chosen,
            "selected_gaussians": int(in_selection.sum()),
            "sh_degree": scene.sh_degree,
            "formats": formats,
            "files": {
                "labels": LABELS_FILE,
                "scene_without_selected": rest_files,
                "scene_with_labels": LABELLED_FILE if with_labels else None,
            },
            "written": written,
            "notes": notes,
            "segments": segment_summary(scene, groups, parents, object_files, removed),
        }
        with atomic_path(tmp / LABELS_FILE) as p:
            np.save(p, labels)
        write_json(tmp / MANIFEST, manifest)
        write_json(tmp / OWNER_MARK, {"writer": OWNER, "files": sorted(p.name for p in tmp.iterdir())})
    return manifest


def remove_outliers(
    scene: GaussianScene, labels: np.ndarray, groups: dict[int, np.ndarray], chosen: list[int]
) -> tuple[np.ndarray, dict[int, int]]:
    """Labels [N] with the outliers of the ``chosen`` segments set to 0, and id -> count removed;
    ``groups`` (id -> Gaussian indices) is updated in place to the kept Gaussians."""
    means = scene.means.detach().cpu().numpy()
    out = labels.copy()
    removed: dict[int, int] = {}
    for sid in chosen:
        idx = groups[sid]
        keep = object_inliers(means[idx])
        out[idx[~keep]] = 0
        groups[sid] = idx[keep]
        removed[sid] = int((~keep).sum())
    return out, removed
