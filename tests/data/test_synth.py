"""Tests of the built-in synthetic scenes (``gsseg.synth`` and ``gsseg synth``).

Everything is checked from the written files directly (JSON, PNG, NPY, PLY), independent of the
dataset loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData

from gsseg.errors import GssegError
from gsseg.synth import SCENE_NAMES, make_scene
from gsseg.synth.recipes import RECIPES

TINY = dict(width=64, height=48, views=6, test_views=2)
LEVELS = ("part", "object", "group")


def _read_png(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _frames(root: Path, split: str) -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    return meta, {Path(f["file_path"]).stem: np.array(f["transform_matrix"]) for f in meta["frames"]}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> dict[str, Path]:
    """One tiny dataset per recipe."""
    root = tmp_path_factory.mktemp("synth")
    return {name: make_scene(root / name, name, seed=1, show_progress=False, **TINY) for name in SCENE_NAMES}


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_every_recipe_writes_the_layout(scenes, name):
    root = scenes[name]
    hier = json.loads((root / "hierarchy.json").read_text())
    n_parts = len(hier["parts"])
    assert hier["levels"] == list(LEVELS)
    assert sorted(int(k) for k in hier["parts"]) == list(range(1, n_parts + 1))
    n_obj, n_grp = len(hier["objects"]), len(hier["groups"])
    assert {p["object"] for p in hier["parts"].values()} == set(range(1, n_obj + 1))
    assert {p["group"] for p in hier["parts"].values()} == set(range(1, n_grp + 1))
    assert n_parts > n_obj >= n_grp >= 1

    train_meta, train = _frames(root, "train")
    test_meta, test = _frames(root, "test")
    assert list(train) == [f"train_{i:03d}" for i in range(TINY["views"])]
    pairs = json.loads((root / "pairs.json").read_text())
    assert [p["view"] for p in pairs] == [f"test_{j:03d}" for j in range(TINY["test_views"])]
    assert set(test) == {p["view"] for p in pairs} | {p["partner"] for p in pairs}
    for meta in (train_meta, test_meta):
        assert (meta["w"], meta["h"]) == (TINY["width"], TINY["height"])
        assert meta["fl_x"] > 0 and meta["fl_y"] > 0
    for stem in list(train) + list(test):
        rgb = _read_png(root / "images" / f"{stem}.png")
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
        depth = np.load(root / "depth" / f"{stem}.npy")
        assert depth.shape == (48, 64) and depth.dtype == np.float32 and (depth >= 0).all()
        for level in LEVELS:
            gt = _read_png(root / "gt" / level / f"{stem}.png")
            assert gt.shape == (48, 64) and gt.dtype == np.uint16
        part = _read_png(root / "gt" / "part" / f"{stem}.png")
        assert part.max() <= n_parts and (part > 0).mean() > 0.05  # objects fill a good share
        border = np.concatenate([part[0], part[-1], part[:, 0], part[:, -1]])
        if "_rot" not in stem:  # partners keep their test view's distance, so may crop a little
            assert (border == 0).all()  # ... and are framed whole
        assert ((depth == 0) <= (part == 0)).all()  # no depth only where no part (sky)

    ply = PlyData.read(str(root / "points3d.ply"))["vertex"]
    assert 1000 <= ply.count <= 4000
    assert [p.name for p in ply.properties] == ["x", "y", "z", "red", "green", "blue"]
    assert ply["red"].dtype == np.uint8 and ply["x"].dtype == np.float32
    scene = json.loads((root / "scene.json").read_text())
    # sparse points spread like SfM's, by image area: the distant floor the cameras see gets points too
    xy = np.stack([ply["x"], ply["y"]], axis=1) - np.asarray(scene["center"][:2])
    assert (np.linalg.norm(xy, axis=1) > 2.0 * scene["radius"]).mean() > 0.05
    assert scene["complete"] and scene["recipe"] == name and scene["seed"] == 1


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_label_levels_follow_the_hierarchy(scenes, name):
    root = scenes[name]
    parts = json.loads((root / "hierarchy.json").read_text())["parts"]
    to_obj = np.zeros(len(parts) + 1, dtype=np.int64)
    to_grp = np.zeros(len(parts) + 1, dtype=np.int64)
    for k, v in parts.items():
        to_obj[int(k)], to_grp[int(k)] = v["object"], v["group"]
    seen = set()
    for f in sorted((root / "gt" / "part").glob("*.png")):
        part = _read_png(f).astype(np.int64)
        obj = _read_png(root / "gt" / "object" / f.name).astype(np.int64)
        grp = _read_png(root / "gt" / "group" / f.name).astype(np.int64)
        np.testing.assert_array_equal(obj, to_obj[part])
        np.testing.assert_array_equal(grp, to_grp[part])
        seen |= set(np.unique(part).tolist())
    assert 0 in seen and len(seen) > 3


def test_same_seed_same_bytes_and_seed_matters(tmp_path):
    a = make_scene(tmp_path / "a", "random", seed=5, show_progress=False, **TINY)
    b = make_scene(tmp_path / "b", "random", seed=5, show_progress=False, **TINY)
    c = make_scene(tmp_path / "c", "random", seed=6, show_progress=False, **TINY)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 40
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "images" / "train_000.png").read_bytes() != (c / "images" / "train_000.png").read_bytes()


def _unproject(c2w_gl: np.ndarray, meta: dict, u: np.ndarray, v: np.ndarray, z: np.ndarray) -> np.ndarray:
    """World points [N,3] of pixels (u, v) with z-depth z (pixel centres at +0.5)."""
    x = (u + 0.5 - meta["cx"]) / meta["fl_x"] * z
    y = (v + 0.5 - meta["cy"]) / meta["fl_y"] * z
    cam_cv = np.stack([x, y, z], axis=1)
    rot_cv = c2w_gl[:3, :3] * np.array([1.0, -1.0, -1.0])
    return cam_cv @ rot_cv.T + c2w_gl[:3, 3]


def _project(c2w_gl: np.ndarray, meta: dict, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rot_cv = c2w_gl[:3, :3] * np.array([1.0, -1.0, -1.0])
    cam = (pts - c2w_gl[:3, 3]) @ rot_cv
    z = cam[:, 2]
    return meta["fl_x"] * cam[:, 0] / z + meta["cx"] - 0.5, meta["fl_y"] * cam[:, 1] / z + meta["cy"] - 0.5, z


def test_depth_agrees_with_cameras_across_views(tmp_path):
    root = make_scene(
        tmp_path / "d", "tabletop", seed=2, width=96, height=72, views=8, test_views=1, show_progress=False
    )
    meta, frames = _frames(root, "train")
    hw = (meta["h"], meta["w"])
    v, u = np.indices(hw)
    checked = 0
    for a, b in [("train_000", "train_001"), ("train_003", "train_004"), ("train_006", "train_005")]:
        da, db = np.load(root / "depth" / f"{a}.npy"), np.load(root / "depth" / f"{b}.npy")
        part_a = _read_png(root / "gt" / "part" / f"{a}.png")
        part_b = _read_png(root / "gt" / "part" / f"{b}.png")
        m = da > 0
        pts = _unproject(frames[a], meta, u[m].astype(float), v[m].astype(float), da[m].astype(float))
        # The floor is the plane z = 0: an exact check of depth, intrinsics and pose together.
        floor = part_a[m] == 0
        assert np.abs(pts[floor, 2]).max() < 1e-3
        ub, vb, zb = _project(frames[b], meta, pts)
        ui, vi = np.round(ub).astype(int), np.round(vb).astype(int)
        inside = (ui >= 0) & (ui < hw[1]) & (vi >= 0) & (vi < hw[0]) & (zb > 0)
        ui, vi, zb, lab = ui[inside], vi[inside], zb[inside], part_a[m][inside]
        dbv = db[vi, ui]
        same = (dbv > 0) & (part_b[vi, ui] == lab) & (lab > 0)  # the same object part, seen from B
        rel = np.abs(dbv[same] - zb[same]) / zb[same]
        assert same.sum() > 200
        assert np.median(rel) < 0.01 and np.mean(rel < 0.03) > 0.9
        checked += same.sum()
    assert checked > 1000


def test_partners_are_test_views_rotated_10_degrees_about_world_up(scenes):
    root = scenes["toys"]
    center = np.array(json.loads((root / "scene.json").read_text())["center"])
    _, frames = _frames(root, "test")
    a = np.deg2rad(10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    for pair in json.loads((root / "pairs.json").read_text()):
        c, p = frames[pair["view"]], frames[pair["partner"]]
        np.testing.assert_allclose(p[:3, :3], rz @ c[:3, :3], atol=1e-9)
        np.testing.assert_allclose(p[:3, 3], rz @ (c[:3, 3] - center) + center, atol=1e-9)
        assert abs(p[2, 3] - c[2, 3]) < 1e-9  # same height
        rel_c, rel_p = c[:2, 3] - center[:2], p[:2, 3] - center[:2]
        ang = np.degrees(np.arctan2(rel_p[1], rel_p[0]) - np.arctan2(rel_c[1], rel_c[0]))
        assert abs((ang + 180) % 360 - 180 - 10.0) < 1e-6
        # The partner image differs from the view, but it sees the scene.
        img_c = _read_png(root / "images" / f"{pair['view']}.png")
        img_p = _read_png(root / "images" / f"{pair['partner']}.png")
        assert not np.array_equal(img_c, img_p)


@pytest.mark.parametrize("name", [n for n in SCENE_NAMES if n != "random"])
def test_every_part_visible_in_several_training_views(tmp_path, name):
    root = make_scene(
        tmp_path / name,
        name,
        seed=0,
        width=128,
        height=96,
        views=16,
        test_views=0,
        supersample=1,
        n_points=500,
        show_progress=False,
    )
    counts = json.loads((root / "scene.json").read_text())["part_train_views"]
    n_parts = len(json.loads((root / "hierarchy.json").read_text())["parts"])
    assert len(counts) == n_parts
    assert min(counts.values()) >= 3, counts
    # scene.json's counts agree with the label maps.
    recount = np.zeros(n_parts + 1, dtype=int)
    for f in (root / "gt" / "part").glob("train_*.png"):
        recount[np.unique(_read_png(f))] += 1
    assert [counts[str(k)] for k in range(1, n_parts + 1)] == recount[1:].tolist()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_colour_alone_does_not_separate_objects(name):
    """Some material is shared by parts of different objects in every recipe (random: most seeds)."""
    from gsseg.synth.scene import assemble

    shared = 0
    for seed in range(3):
        scene = assemble(RECIPES[name](np.random.default_rng([seed, 0])))
        owners: dict[int, set[int]] = {}
        for p in scene.parts:
            owners.setdefault(id(p.material), set()).add(p.object_id)
        shared += any(len(o) > 1 for o in owners.values())
    assert shared >= 2


def test_refuses_foreign_folder_and_reruns_over_own_output(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(GssegError, match="foreign"):
        make_scene(foreign, "toys", show_progress=False, **TINY)
    make_scene(foreign, "toys", force=True, show_progress=False, **TINY)
    assert (foreign / "notes.txt").read_text() == "mine"

    own = make_scene(tmp_path / "own", "toys", show_progress=False, **TINY)
    assert (own / "images" / "train_005.png").exists()
    make_scene(own, "toys", show_progress=False, **{**TINY, "views": 4})
    assert not (own / "images" / "train_005.png").exists()
    assert not (own / "gt" / "group" / "train_004.png").exists()
    assert len(json.loads((own / "transforms_train.json").read_text())["frames"]) == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scene": "castle"}, "unknown scene"),
        ({"width": 4}, "too small"),
        ({"views": 0}, "views"),
        ({"test_views": -1}, "test-views"),
        ({"supersample": 0}, "supersample"),
        ({"n_points": 0}, "points"),
    ],
)
def test_bad_arguments_raise_user_errors(tmp_path, kwargs, message):
    with pytest.raises(GssegError, match=message):
        make_scene(tmp_path / "x", show_progress=False, **kwargs)


def test_shadow_rays_darken_the_floor_under_an_object():
    from gsseg.synth import primitives as prim
    from gsseg.synth.raycast import SceneRaycaster
    from gsseg.synth.scene import ObjectSpec, PartSpec, SceneSpec, assemble
    from gsseg.synth.shading import Lighting, shade
    from gsseg.synth.textures import Material

    mats = {"white": Material((1.0, 1.0, 1.0))}
    roof = ObjectSpec(
        "roof", [PartSpec("slab", prim.box((0, 0, 1.0), (1.0, 1.0, 0.1)), "white")], prim.pose((0, 0, 0)), "g"
    )
    scene = assemble(SceneSpec("t", [roof], mats, "white", np.array([0.0, 0.0, 1.0])))
    rc = SceneRaycaster(scene, floor_extent=10.0)
    origins = np.array([[0.0, 0.0, 0.5], [3.0, 0.0, 0.5]])
    down = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    hits = rc.cast(origins, down)
    assert hits.surface.tolist() == [0, 0] and np.allclose(hits.t, 0.5)
    rgb = shade(scene, rc, hits, down, Lighting(ambient=0.25, sun=0.75))
    np.testing.assert_allclose(rgb[0], 0.25, atol=1e-6)  # shadowed: ambient only
    np.testing.assert_allclose(rgb[1], 1.0, atol=1e-6)  # lit: ambient + sun


def test_cli_writes_scene_and_reports_errors(tmp_path, capsys):
    from gsseg.cli.app import main
    from gsseg.cli.commands.synth import SCENES_HELP

    assert [s.split()[0] for s in SCENES_HELP.split(", ")] == list(SCENE_NAMES)
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as ok:
        main(
            [
                "synth",
                str(out),
                "--scene",
                "toys",
                "--width",
                "32",
                "--height",
                "24",
                "--views",
                "4",
                "--test-views",
                "1",
                "--supersample",
                "1",
                "--points",
                "300",
            ]
        )
    assert ok.value.code == 0
    assert (out / "images" / "test_000_rot10.png").exists()
    assert PlyData.read(str(out / "points3d.ply"))["vertex"].count == 300
    assert json.loads((out / "scene.json").read_text())["supersample"] == 1
    with pytest.raises(SystemExit) as bad:
        main(["synth", str(tmp_path / "y"), "--scene", "castle"])
    assert bad.value.code == 1
    assert "unknown scene" in capsys.readouterr().err


def test_random_recipe_is_seeded_and_well_formed():
    from gsseg.synth.scene import assemble

    layouts = set()
    for seed in range(40):
        scene = assemble(RECIPES["random"](np.random.default_rng([seed, 0])))
        again = assemble(RECIPES["random"](np.random.default_rng([seed, 0])))
        assert [p.name for p in scene.parts] == [p.name for p in again.parts]
        assert np.array_equal(scene.center, again.center)
        assert len(scene.object_names) >= 1 and 1 <= len(scene.group_names) <= 3
        assert sorted({p.group_id for p in scene.parts}) == list(range(1, len(scene.group_names) + 1))
        # Objects do not overlap: footprints (xy bounding boxes shrunk a little) are disjoint.
        boxes = []
        for oid in range(1, len(scene.object_names) + 1):
            v = np.concatenate([p.mesh.vertices for p in scene.parts if p.object_id == oid])
            boxes.append((v[:, :2].min(0) + 0.05, v[:, :2].max(0) - 0.05))
        for i in range(len(boxes)):
            for j in range(i):
                (lo_a, hi_a), (lo_b, hi_b) = boxes[i], boxes[j]
                assert not (np.all(lo_a < hi_b) and np.all(lo_b < hi_a)), (seed, i, j)
        layouts.add(tuple(scene.object_names))
    assert len(layouts) > 10


def test_corner_normals_are_smooth_on_curves_and_sharp_on_edges():
    from gsseg.synth import primitives as prim

    s = prim.sphere((1.0, 2.0, 3.0), 0.5)
    corners = s.vertices[s.triangles] - np.array([1.0, 2.0, 3.0])
    radial = corners / np.linalg.norm(corners, axis=2, keepdims=True)
    assert np.abs(s.corner_normals() - radial).max() < 0.05
    b = prim.box((0, 0, 0), (1.0, 2.0, 0.5))
    v = b.vertices[b.triangles]
    face = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    face /= np.linalg.norm(face, axis=1, keepdims=True)
    np.testing.assert_allclose(b.corner_normals(), np.repeat(face[:, None], 3, axis=1), atol=1e-12)
    c = prim.cylinder((0, 0, 0), 0.5, 1.0)
    top = c.corner_normals()[np.all(c.vertices[c.triangles][:, :, 2] > 0.49, axis=1)]
    np.testing.assert_allclose(top, np.broadcast_to([0.0, 0.0, 1.0], top.shape), atol=1e-12)  # rims stay sharp
