"""``make_scene``: render a recipe from an orbit of cameras and write the dataset layout.

Layout (see DESIGN.md): transforms_{train,test}.json, images/, depth/, gt/{part,object,group}/,
hierarchy.json, points3d.ply, pairs.json, scene.json. Every file is written atomically;
``scene.json`` is written first with ``"complete": false`` and rewritten at the end, so an
interrupted run is recognised as a synth output and can be re-run over.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from plyfile import PlyData, PlyElement

from gsseg.errors import GssegError, file_error
from gsseg.synth.cameras import (
    WORLD_UP,
    OrbitConfig,
    focal_length,
    framed_camera,
    rotate_about_vertical,
    test_angles,
    train_angles,
)
from gsseg.synth.raycast import SceneRaycaster
from gsseg.synth.recipes import DEFAULT_SCENE, RECIPES, SCENE_NAMES
from gsseg.synth.scene import assemble
from gsseg.synth.shading import Lighting, ViewRender, render_view
from gsseg.utils.atomic import atomic_path, write_json
from gsseg.utils.progress import progress_bar

GENERATOR = "gsseg synth"
LEVELS = ("part", "object", "group")
_STEM = re.compile(r"^(train|test)_\d+(_rot\d+)?$")


def is_synth_output(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds (possibly a partial) previous ``gsseg synth`` output."""
    try:
        meta = json.loads((out_dir / "scene.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("generator") == GENERATOR


def _check_args(
    out: Path,
    scene: str,
    seed: int,
    width: int,
    height: int,
    views: int,
    test_views: int,
    force: bool,
    supersample: int,
    n_points: int,
) -> None:
    if scene not in RECIPES:
        raise GssegError(f"unknown scene {scene!r}; choose one of: {', '.join(SCENE_NAMES)}")
    if width < 8 or height < 8:
        raise GssegError(f"image size {width}x{height} is too small (at least 8x8)")
    if views < 1:
        raise GssegError(f"--views must be at least 1, got {views}")
    if test_views < 0:
        raise GssegError(f"--test-views must be 0 or more, got {test_views}")
    if seed < 0:
        raise GssegError(f"--seed must be 0 or more, got {seed}")
    if not 1 <= supersample <= 8:
        raise GssegError(f"--supersample must be between 1 and 8, got {supersample}")
    if n_points < 1:
        raise GssegError(f"--points must be at least 1, got {n_points}")
    if out.exists() and not out.is_dir():
        raise file_error(out, "exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_synth_output(out) and not force:
        raise file_error(out, "is not empty and is not a previous gsseg synth output; pass --force to write into it")


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete per-view files of a previous synth run whose views this run does not write."""
    for pattern in ("images/*.png", "depth/*.npy", "gt/*/*.png"):
        for f in out.glob(pattern):
            if _STEM.match(f.stem) and f.stem not in keep:
                f.unlink()


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _transforms(
    names: list[str], c2ws: list[np.ndarray], width: int, height: int, fx: float, fy: float, cx: float, cy: float
) -> dict:
    frames = [
        {"file_path": f"images/{n}.png", "depth_file_path": f"depth/{n}.npy", "transform_matrix": c.tolist()}
        for n, c in zip(names, c2ws)
    ]
    return {
        "camera_model": "OPENCV",
        "camera_angle_x": float(2 * np.arctan(width / 2 / fx)),
        "w": width,
        "h": height,
        "fl_x": fx,
        "fl_y": fy,
        "cx": cx,
        "cy": cy,
        "frames": frames,
    }


def _write_points(path: Path, points: np.ndarray, colors: np.ndarray) -> None:
    """points3d.ply: x, y, z float32 and red, green, blue uchar (binary little-endian)."""
    v = np.zeros(
        len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    )
    v["x"], v["y"], v["z"] = points[:, 0], points[:, 1], points[:, 2]
    v["red"], v["green"], v["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(v, "vertex")], text=False, byte_order="<").write(str(tmp))


def _sample_points(
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_points`` surface points: half on objects, half on the floor.

    Candidates are the training views' pixel hits, so floor points spread like an SfM
    reconstruction's (by image area, reaching the distant floor), not by surface area."""
    pts = np.concatenate([s[0] for s in samples])
    cols = np.concatenate([s[1] for s in samples])
    is_obj = np.concatenate([s[2] for s in samples])
    obj_idx, floor_idx = np.flatnonzero(is_obj), np.flatnonzero(~is_obj)
    n_obj = min(len(obj_idx), n_points // 2)
    n_floor = min(len(floor_idx), n_points - n_obj)
    chosen = np.concatenate(
        [
            rng.choice(obj_idx, size=n_obj, replace=False) if n_obj else np.zeros(0, dtype=np.int64),
            rng.choice(floor_idx, size=n_floor, replace=False) if n_floor else np.zeros(0, dtype=np.int64),
        ]
    )
    chosen.sort()
    return pts[chosen], cols[chosen]


def _view_samples(view: ViewRender, rgb8: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate init points of one view: its object and floor hits (not the sky)."""
    keep = (view.part > 0) | view.floor
    return view.points[keep], rgb8[keep], view.part[keep] > 0


@dataclass
class SceneOptions:
    """What :func:`make_scene` renders (its defaults; the options of ``gsseg synth``)."""

    scene: str = DEFAULT_SCENE
    """Recipe (gsseg/synth/recipes.py)."""
    seed: int = 0
    """Random seed (sun direction, camera jitter; layout for 'random')."""
    width: int = 128
    """Image width in pixels."""
    height: int = 96
    """Image height in pixels."""
    views: int = 32
    """Number of training views."""
    test_views: int = 8
    """Number of test views (each also gets a partner rotated 10°)."""
    supersample: int = 2
    """Anti-aliasing: RGB averages NxN rays per pixel (labels and depth use the centre ray)."""
    n_points: int = 4000
    """Number of sparse init points written to points3d.ply."""


def make_scene(
    out_dir: str | Path,
    scene: str = SceneOptions.scene,
    seed: int = SceneOptions.seed,
    width: int = SceneOptions.width,
    height: int = SceneOptions.height,
    views: int = SceneOptions.views,
    test_views: int = SceneOptions.test_views,
    force: bool = False,
    *,
    supersample: int = SceneOptions.supersample,
    n_points: int = SceneOptions.n_points,
    show_progress: bool = True,
) -> Path:
    """Render recipe ``scene`` and write a dataset to ``out_dir``; returns ``out_dir`` as a Path.

    The output is a pure function of the arguments (same bytes for the same call). Raises
    ``GssegError`` for an unknown scene, bad sizes, or a non-empty ``out_dir`` that is not a
    previous synth output (unless ``force``).
    """
    out = Path(out_dir)
    _check_args(out, scene, seed, width, height, views, test_views, force, supersample, n_points)
    cfg = OrbitConfig()
    syn = assemble(RECIPES[scene](np.random.default_rng([seed, 0])))
    cam_rng = np.random.default_rng([seed, 1])
    fx = fy = float(focal_length(width, cfg.fov_x_deg))
    cx, cy = width / 2.0, height / 2.0
    vertices = np.concatenate([p.mesh.vertices for p in syn.parts])

    def frame(angles: np.ndarray) -> list[np.ndarray]:
        return [framed_camera(syn.center, az, el, vertices, fx, fy, width, height, cfg.margin) for az, el in angles]

    train_c2w = frame(train_angles(views, cfg, cam_rng))
    test_c2w = frame(test_angles(test_views, cfg, cam_rng, views))
    partner_c2w = [rotate_about_vertical(c, syn.center, cfg.partner_deg) for c in test_c2w]
    train_names = [f"train_{i:03d}" for i in range(views)]
    test_names = [f"test_{j:03d}" for j in range(test_views)]
    rot = f"rot{cfg.partner_deg:g}"
    partner_names = [f"{n}_{rot}" for n in test_names]
    all_names = train_names + test_names + partner_names
    all_c2w = train_c2w + test_c2w + partner_c2w

    meta = {
        "generator": GENERATOR,
        "format_version": 1,
        "complete": False,
        "recipe": scene,
        "seed": seed,
        "width": width,
        "height": height,
        "views": views,
        "test_views": test_views,
        "supersample": supersample,
        "up": WORLD_UP.tolist(),
        "center": syn.center.tolist(),
        "radius": syn.radius,
        "fov_x_deg": cfg.fov_x_deg,
        "partner_deg": cfg.partner_deg,
        "light_direction": syn.light_direction.tolist(),
        "n_parts": len(syn.parts),
        "n_objects": len(syn.object_names),
        "n_groups": len(syn.group_names),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "scene.json", meta)
    _remove_stale(out, set(all_names))

    lighting = Lighting()
    distance = max(float(np.linalg.norm(c[:3, 3] - syn.center)) for c in all_c2w)
    raycaster = SceneRaycaster(syn, floor_extent=4.0 * distance)
    lookup = syn.level_lookup()
    part_views = np.zeros(len(syn.parts) + 1, dtype=np.int64)
    samples = []
    progress = progress_bar() if show_progress else None
    with progress or contextlib.nullcontext():
        task = progress.add_task(f"synth {scene}", total=len(all_names), info="") if progress else None
        for i, (name, c2w) in enumerate(zip(all_names, all_c2w)):
            view = render_view(syn, raycaster, c2w, fx, fy, cx, cy, width, height, lighting, supersample)
            rgb8 = np.round(view.rgb * 255.0).astype(np.uint8)
            _save_png(out / "images" / f"{name}.png", rgb8)
            _save_npy(out / "depth" / f"{name}.npy", view.depth)
            for level in LEVELS:
                _save_png(out / "gt" / level / f"{name}.png", lookup[level][view.part].astype(np.uint16))
            if i < views:
                part_views[np.unique(view.part)] += 1
                samples.append(_view_samples(view, rgb8))
            if progress and task is not None:
                progress.update(task, advance=1, info=name)

    points, colors = _sample_points(samples, n_points, np.random.default_rng([seed, 2]))
    _write_points(out / "points3d.ply", points, colors)
    write_json(out / "transforms_train.json", _transforms(train_names, train_c2w, width, height, fx, fy, cx, cy))
    write_json(
        out / "transforms_test.json",
        _transforms(test_names + partner_names, test_c2w + partner_c2w, width, height, fx, fy, cx, cy),
    )
    write_json(out / "hierarchy.json", syn.hierarchy())
    write_json(out / "pairs.json", [{"view": v, "partner": p} for v, p in zip(test_names, partner_names)])
    meta["complete"] = True
    meta["part_train_views"] = {str(p.part_id): int(part_views[p.part_id]) for p in syn.parts}
    write_json(out / "scene.json", meta)
    return out
