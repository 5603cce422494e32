"""Score any method's label maps with the official protocols, no run needed (``gsseg eval --labels``).

Layout (that of ``RUN/segments``): ``DIR/<cut>/<stem>.png``, one folder per cut (a horizontal cut
of the method's hierarchy, or its single flat segmentation), a uint8 / uint16 label map per view,
0 = unassigned. Cuts are taken in sorted folder-name order (the official scripts load their cut
files sorted; the first cut wins ties). Every test view and every partner view (``pairs.json``)
needs a map in every cut. GT comes from ``DATA/gt/<level>/<stem>.png``, depth from the dataset.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gsseg.errors import GssegError, file_error
from gsseg.eval.official.dataset import eval_views_of, score_dataset
from gsseg.eval.official.panoptic import panoptic_quality_official
from gsseg.eval.official.protocols import DEFAULT_MIN_SIZE, DEFAULT_SAMPLES


def label_cuts(labels_dir: Path) -> list[str]:
    """Sorted names of the cut folders of ``labels_dir`` (those holding a PNG)."""
    if not labels_dir.is_dir():
        raise file_error(labels_dir, "label folder not found (expected DIR/<cut>/<view>.png)")
    cuts = sorted(d.name for d in labels_dir.iterdir() if d.is_dir() and any(d.glob("*.png")))
    if not cuts:
        raise file_error(labels_dir, "holds no cut folder with PNG label maps (expected DIR/<cut>/<view>.png)")
    return cuts


def read_label_map(path: Path, size: tuple[int, int], view: str) -> np.ndarray:
    """One label map [H,W] int64 of ``view``, whose image is ``size = (W, H)``; GssegError otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise file_error(path, f"not found: every cut needs a label map of view {view}")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise file_error(path, f"cannot read label image ({e})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise file_error(
            path, f"must be a single-channel 8/16-bit integer PNG, got shape {list(arr.shape)} {arr.dtype}"
        )
    if (arr.shape[1], arr.shape[0]) != tuple(size):
        raise file_error(path, f"is {arr.shape[1]}x{arr.shape[0]} but view {view} is {size[0]}x{size[1]}")
    return arr.astype(np.int64)


def evaluate_labels(
    data: str | Path,
    labels_dir: str | Path,
    exact: bool = False,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    min_size: int = DEFAULT_MIN_SIZE,
    progress=None,
) -> dict:
    """Official NC / NC dense / SI / VC per level (+ fgbg) and PQ^scene per cut of the label maps in
    ``labels_dir`` on the dataset ``data``; one JSON-friendly dict with ``per_view``."""
    from gsseg.data import load_dataset

    if samples < 1 or min_size < 1:
        raise GssegError("--samples and --min-size must be >= 1")
    labels_dir = Path(labels_dir)
    cuts = label_cuts(labels_dir)
    ds = load_dataset(data, downscale=1)  # label maps are scored at the native image size
    if not ds.gt_levels:
        raise file_error(ds.root, "has no ground truth (gt/<level>/<view>.png): nothing to score labels against")
    views, partners = eval_views_of(ds)
    for view, partner in partners.items():
        if view in views:
            for cut in cuts:
                path = labels_dir / cut / f"{partner}.png"
                if not path.is_file():
                    raise file_error(
                        path, f"not found: view {view} is scored against its partner {partner} (pairs.json)"
                    )
    t0 = time.perf_counter()
    cache: dict[str, np.ndarray] = {}

    def stack_of(view: str) -> np.ndarray:
        if view not in cache:
            size = ds.size(view)
            cache[view] = np.stack([read_label_map(labels_dir / c / f"{view}.png", size, view) for c in cuts])
        return cache[view]

    task = progress.add_task("views", total=len(views), info="", unit="view") if progress is not None else None

    def advance(view: str) -> None:
        cache.clear()  # a view's maps are read again if it is another view's partner: memory stays flat
        if progress is not None:
            progress.update(task, advance=1, info=view)

    result: dict = {
        "protocol": "official",
        "mode": "exact" if exact else "sampled",
        "samples": None if exact else samples,
        "seed": None if exact else seed,
        "dataset": str(Path(ds.root).resolve()),
        "labels": str(labels_dir.resolve()),
        "cuts": cuts,
        "levels": list(ds.gt_levels) + ["fgbg"],
    }
    result.update(score_dataset(ds, stack_of, exact, samples, seed, min_size, advance=advance))
    if "object" in ds.gt_levels:
        result["pq_scene_per_cut"] = _pq_per_cut(ds, views, cuts, labels_dir)
    result["timings"] = {"eval_s": time.perf_counter() - t0}
    return result


def _pq_per_cut(ds, views: list[str], cuts: list[str], labels_dir: Path) -> dict[str, dict[str, float]]:
    """PQ^scene / SQ / RQ of each cut against the object level over the scored views."""
    gts, names = [], []
    for v in views:
        g = ds.gt(v, "object")
        if g is not None:
            gts.append(g.astype(np.int32))
            names.append(v)
    out = {}
    for c in cuts:
        preds = [read_label_map(labels_dir / c / f"{v}.png", ds.size(v), v).astype(np.int32) for v in names]
        r = panoptic_quality_official(gts, preds)
        out[c] = {"pq": r.pq, "sq": r.sq, "rq": r.rq, "tp": r.tp, "fp": r.fp, "fn": r.fn}
    return out
