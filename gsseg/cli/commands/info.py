"""``gsseg info DATA``: what a dataset folder holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer


def info(
    data: Annotated[
        Path, typer.Argument(help="Dataset folder (transforms_*.json / transforms.json or COLMAP images/ + sparse/0).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of a table.")
    ] = False,
    downscale: Annotated[
        Optional[float], typer.Option(help="Divide the native image size by this factor, as the other verbs would.")
    ] = None,
    max_size: Annotated[
        Optional[int],
        typer.Option(
            help="Cap the longest image side at this many pixels (0: no cap). Default: 480 when --downscale "
            "is not given either."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse frames whose image file is missing instead of skipping them.")
    ] = False,
    test_every: Annotated[
        int, typer.Option(help="Every N-th view is a test view when the dataset has no explicit split (0: none).")
    ] = 8,
    list_views: Annotated[
        bool, typer.Option("--list-views", help="Also list every view with its split, size and mask count.")
    ] = False,
    views: Annotated[bool, typer.Option("--views", hidden=True, help="Old spelling of --list-views.")] = False,
) -> None:
    """Show views per split, resolution and which optional data (depth, ground truth, masks, points) is present."""
    from gsseg.data import load_dataset

    ds = load_dataset(data, downscale=downscale, test_every=test_every, max_size=max_size, strict=strict)
    summary = ds.describe()
    summary["masks"] = _mask_summary(ds.masks_dir)
    if list_views or views:
        per_view = (summary["masks"].get("per_view") or {}) if isinstance(summary["masks"], dict) else {}
        summary["views"] = [
            {
                "name": n,
                "split": ds.split_of(n),
                "size": "{}x{}".format(*ds.size(n)),
                "masks": per_view.get(n, {}).get("masks"),
            }
            for n in ds.names("all")
        ]
    if as_json:
        typer.echo(json.dumps(summary, indent=None, default=str))
        return
    _print_table(summary)


def _mask_summary(masks_dir: Path) -> dict[str, Any]:
    """Mask file count, plus the mask store's per-view counts when that module is available."""
    files = sorted(p for p in masks_dir.glob("*.npz") if not p.name.startswith(".")) if masks_dir.is_dir() else []
    out: dict[str, Any] = {"dir": str(masks_dir), "files": len(files)}
    if not files:
        return out
    try:
        from gsseg.masks.store import summarize
    except ImportError:
        return out
    try:
        out.update(summarize(masks_dir))
    except Exception as e:  # a corrupt mask file must not hide the rest of the report
        out["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    return out


def _print_table(s: dict[str, Any]) -> None:
    from rich.table import Table

    from gsseg.cli.output import plain_console

    table = Table(title=f"dataset {s['path']}", show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("format", f"{s['format']} ({s['source']})")
    table.add_row("views", f"{s['train_views']} train, {s['test_views']} test; split: {s['split']}")
    if s["skipped_frames"]:
        table.add_row(
            "frames",
            f"{s['listed_frames']} listed, {s['skipped_frames']} without an image file (skipped; --strict refuses)",
        )
    table.add_row("resolution", _resolution(s))
    if s["lens"]:
        table.add_row(
            "lens", f"{'; '.join(s['lens'])}: undistorted to pinhole cameras ({s['undistorted_views']} views)"
        )
    if s["ignored_fields"]:
        table.add_row("ignored fields", ", ".join(s["ignored_fields"]) + " (not needed by Gaussian splatting)")
    table.add_row("scene scale", f"{s['scene_scale']:.4g}")
    table.add_row("depth", f"{s['depth_views']} views" if s["depth_views"] else "none")
    gt = s["gt_levels"]
    table.add_row("ground truth", ", ".join(f"{lv} ({n} views)" for lv, n in gt.items()) if gt else "none")
    table.add_row("sparse points", f"{s['points']:,}" if s["points"] else "none")
    table.add_row("view pairs", str(s["pairs"]) if s["pairs"] else "none")
    table.add_row("hierarchy.json", "yes" if s["hierarchy"] else "no")
    m = s["masks"]
    if not m["files"]:
        masks = "none"
    elif "error" in m:
        masks = f"{m['files']} files (unreadable: {m['error']})"
    elif "per_view" in m:
        counts = [v["masks"] for v in m["per_view"].values()]
        srcs = ", ".join(f"{k}: {n}" for k, n in m["sources"].items())
        masks = f"{m['files']} views, {m['total_masks']} masks (per view {min(counts)}-{max(counts)}); sources {srcs}"
    else:
        masks = f"{m['files']} files"
    table.add_row("masks", masks)
    console = plain_console()
    console.print(table)
    if "views" in s:
        vt = Table("view", "split", "size", "masks")
        for v in s["views"]:
            vt.add_row(v["name"], v["split"], v["size"], "-" if v["masks"] is None else str(v["masks"]))
        console.print(vt)


def _resolution(s: dict[str, Any]) -> str:
    """Working resolution, with the native one and the rule that chose it when they differ."""
    text = ", ".join(s["resolutions"])
    if s["resolutions"] == s["native_resolutions"]:
        return text
    if s["auto_size"]:
        why = f"longest side capped at {s['max_size']} by default; --max-size N or --downscale F to change"
    elif s["max_size"]:
        why = f"--max-size {s['max_size']}" + (f", downscale {s['downscale']:.4g}" if s["downscale"] != 1 else "")
    else:
        why = f"downscale {s['downscale']:.4g}"
    return f"{text} (native {', '.join(s['native_resolutions'])}; {why})"


def register(app: typer.Typer) -> None:
    app.command("info")(info)
