"""``gsseg render RUN``: render a run's views and write one contact sheet.

```
OUT/<stem>_render.png     the render at the dataset's working size
OUT/<stem>_depth.png      its depth, colour-mapped (one scale for all views)
OUT/<stem>_labels.png     the current segments, coloured (when RUN/segments has a cut)
OUT/contact_sheet.png     rows = views (at most max_rows, spread evenly), photo | render | depth | labels
OUT/renders.json          views, PSNR per view and mean, the cut shown, depth range, files
```
OUT defaults to ``RUN/renders``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gsseg.errors import GssegError, file_error
from gsseg.eval.psnr import render_rgbd
from gsseg.report.sheet import colorize_depth, colorize_labels, contact_sheet, depth_range
from gsseg.report.views import ViewRender, label_maps, pick_views, to_uint8
from gsseg.utils.atomic import atomic_path, write_json
from gsseg.utils.progress import NullProgress, progress_bar

SHEET = "contact_sheet.png"
SUMMARY = "renders.json"


def spread(names: list[str], count: int) -> list[str]:
    """At most ``count`` of ``names``, evenly spaced, first and last included."""
    if count <= 0 or len(names) <= count:
        return list(names)
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    return [names[i] for i in dict.fromkeys(picks.tolist())]


def current_cut(run_root: Path, cut: str | None, num_gaussians: int) -> tuple[str | None, np.ndarray | None]:
    """(name, labels [N]) of ``cut``, or by default of the cut ``gsseg export`` would take (the
    coarsest auto cut of the latest segmentation); (None, None) when the run has no segments."""
    from gsseg.segment.cuts import SegmentsDir

    segments = SegmentsDir(run_root)
    if cut is None:
        if not segments.read_index()["cuts"]:
            return None, None
        cut = segments.default_cut()
    return cut, segments.labels(cut, num_gaussians)


def _save_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp)


def render_run(
    run_root: str | Path,
    views: str = "test",
    out: str | Path | None = None,
    cut: str | None = None,
    max_rows: int = 12,
    backend: str = "auto",
    show_progress: bool = True,
    data: str | Path | None = None,
) -> dict[str, Any]:
    """Render ``views`` ("test", "train" or "all") of the run into ``out`` (see module doc);
    ``data``: the dataset, when it moved since training (default: the one the run recorded).
    Returns the renders.json summary."""
    from gsseg.data import load_dataset
    from gsseg.gaussians.ply import read_ply
    from gsseg.run.run_dir import RunDir

    run = RunDir(run_root)
    if not run.root.is_dir():
        raise file_error(run.root, "run directory not found")
    cfg = run.read_config()
    if not run.scene_ply.is_file():
        raise file_error(run.scene_ply, "not found: the RGB stage has not finished (run `gsseg train`)")
    if max_rows < 1:
        raise GssegError(f"--max-rows must be at least 1, got {max_rows}")
    data_path = Path(data) if data is not None else Path(cfg.dataset)
    if not data_path.exists():
        raise file_error(data_path, "dataset directory not found (pass --data to point to its new location)")
    ds = load_dataset(data_path, downscale=cfg.downscale)
    names = pick_views(ds, views)
    scene = read_ply(run.scene_ply)
    cut_name, labels = current_cut(run.root, cut, len(scene))
    out_dir = Path(out) if out is not None else run.root / "renders"
    if out_dir.exists() and not out_dir.is_dir():
        raise file_error(out_dir, "exists and is not a folder; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    background = run.render_background()
    cams = ds.cameras("all")
    rendered: list[ViewRender] = []
    with progress_bar(transient=True) if show_progress else NullProgress() as progress:
        task = progress.add_task("render", total=len(names), info="", unit="view")
        for name in names:
            rgb, depth, alpha = render_rgbd(scene, cams[cams.index_of(name)], background, backend)
            photo = ds.image(name)
            mse = float(((rgb - photo.to(rgb.device)) ** 2).mean())
            psnr = float("inf") if mse <= 0 else -10.0 * float(np.log10(mse))
            rendered.append(
                ViewRender(name, to_uint8(photo), to_uint8(rgb), depth.cpu().numpy(), alpha.cpu().numpy(), None, psnr)
            )
            progress.update(task, advance=1, info=f"{name} {psnr:.2f} dB")
    if labels is not None and cut_name is not None:
        maps = label_maps(scene, ds, labels, run.root / "segments" / cut_name, names)
        for v in rendered:
            v.labels = maps[v.name]
    near, far = depth_range(rendered)
    files: dict[str, dict[str, str]] = {}
    for v in rendered:
        entry = {"render": f"{v.name}_render.png", "depth": f"{v.name}_depth.png"}
        _save_png(out_dir / entry["render"], v.render)
        _save_png(out_dir / entry["depth"], colorize_depth(v.depth, v.alpha, near, far))
        if v.labels is not None:
            entry["labels"] = f"{v.name}_labels.png"
            _save_png(out_dir / entry["labels"], colorize_labels(v.labels))
        files[v.name] = entry
    rows = spread(names, max_rows)
    by_name = {v.name: v for v in rendered}
    segments = int(np.unique(labels[labels > 0]).size) if labels is not None else None
    sheet = contact_sheet([by_name[n] for n in rows], cut_name, segments, near_far=(near, far))
    with atomic_path(out_dir / SHEET) as tmp:
        sheet.save(tmp)
    finite = [v.psnr for v in rendered if np.isfinite(v.psnr)]
    summary = {
        "run": str(run.root),
        "views": views,
        "psnr": float(np.mean(finite)) if finite else None,
        "psnr_per_view": {v.name: v.psnr for v in rendered},
        "cut": cut_name,
        "segments": segments,
        "depth_range": [near, far],
        "sheet": str(out_dir / SHEET),
        "sheet_rows": rows,
        "files": files,
    }
    write_json(out_dir / SUMMARY, summary)
    return summary
