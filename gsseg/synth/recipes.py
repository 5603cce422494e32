"""Scene recipes: which objects stand where, in which groups, with which materials.

Materials are deliberately shared between parts of *different* objects (and with the floor),
so colour alone cannot separate segments. The seed moves the sun in every recipe and, for
"random", also chooses the objects, their materials and their layout.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import gsseg.synth.objects as ob
from gsseg.synth.primitives import pose
from gsseg.synth.scene import ObjectSpec, SceneSpec
from gsseg.synth.textures import Material

PALETTE: dict[str, Material] = {
    "floor": Material((0.72, 0.70, 0.64), (0.52, 0.51, 0.48), "checker", 0.5, "world"),
    "wood": Material((0.58, 0.38, 0.22), (0.46, 0.29, 0.16), "stripes", 0.06, "world", axis=0),
    "dark_wood": Material((0.33, 0.21, 0.13), (0.27, 0.17, 0.10), "noise", 0.08, "object"),
    "red_check": Material((0.80, 0.16, 0.12), (0.92, 0.88, 0.80), "checker", 0.09, "object"),
    "blue": Material((0.20, 0.34, 0.75)),
    "cream": Material((0.90, 0.86, 0.72)),
    "grey": Material((0.52, 0.51, 0.48)),
    "metal": Material((0.62, 0.63, 0.66), (0.42, 0.43, 0.46), "noise", 0.05, "object"),
    "leaves": Material((0.18, 0.48, 0.18), (0.36, 0.66, 0.22), "noise", 0.07, "world"),
    "yellow_stripes": Material((0.92, 0.76, 0.18), (0.95, 0.94, 0.88), "stripes", 0.07, "object", axis=2),
    "green": Material((0.22, 0.60, 0.30)),
    "orange": Material((0.95, 0.52, 0.12)),
    "purple": Material((0.50, 0.28, 0.62)),
    "teal_check": Material((0.15, 0.55, 0.55), (0.20, 0.34, 0.75), "checker", 0.12, "world"),
    "black": Material((0.08, 0.08, 0.09)),
}


def _sun(rng: np.random.Generator) -> np.ndarray:
    """Unit direction towards a sun at a random azimuth and 40-65 degrees elevation."""
    az = rng.uniform(0.0, 2 * np.pi)
    el = np.deg2rad(rng.uniform(40.0, 65.0))
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def tabletop(rng: np.random.Generator) -> SceneSpec:
    """A table with a tea set, a reading lamp with books, and a ball on the floor."""
    h = 0.75
    objs = [
        ObjectSpec("table", ob.table("wood", "metal"), pose((0, 0, 0)), "table"),
        ObjectSpec("mug", ob.mug("red_check", "cream"), pose((0.45, 0.22, h), 30), "tea set"),
        ObjectSpec("teapot", ob.teapot("blue", "cream", "blue"), pose((0.12, 0.2, h), -20), "tea set"),
        ObjectSpec("lamp", ob.lamp("metal", "metal", "yellow_stripes"), pose((-0.55, -0.25, h)), "reading"),
        ObjectSpec("books", ob.books(["red_check", "wood", "blue"]), pose((-0.2, -0.15, h), 15), "reading"),
        ObjectSpec("ball", ob.ball("red_check", 0.22), pose((0.75, -0.85, 0)), "ball"),
    ]
    return SceneSpec("tabletop", objs, PALETTE, "floor", _sun(rng))


def livingroom(rng: np.random.Generator) -> SceneSpec:
    """A dining group (table and two chairs), a lounge (sofa and coffee table), a lamp and a plant."""
    objs = [
        ObjectSpec("dining_table", ob.table("wood", "dark_wood", 1.3, 0.9), pose((-1.1, 0.9, 0)), "dining"),
        ObjectSpec("chair_1", ob.chair("wood", "red_check", "dark_wood"), pose((-1.1, 0.1, 0), 0), "dining"),
        ObjectSpec("chair_2", ob.chair("wood", "red_check", "dark_wood"), pose((-1.1, 1.7, 0), 180), "dining"),
        ObjectSpec("sofa", ob.sofa("teal_check", "grey"), pose((1.1, -1.2, 0), 0), "lounge"),
        ObjectSpec("coffee_table", ob.table("wood", "metal", 1.0, 0.55, 0.4), pose((1.1, -0.15, 0)), "lounge"),
        ObjectSpec("lamp", ob.lamp("black", "metal", "cream", 1.4), pose((1.5, 1.1, 0)), "lamp"),
        ObjectSpec("plant", ob.plant("red_check", "leaves"), pose((-1.7, -1.1, 0)), "plant"),
    ]
    return SceneSpec("livingroom", objs, PALETTE, "floor", _sun(rng))


def toys(rng: np.random.Generator) -> SceneSpec:
    """Stacking toys, a snowman, and a car with its ball."""
    objs = [
        ObjectSpec(
            "ring_stacker",
            ob.ring_stacker("wood", "wood", ["red_check", "orange", "yellow_stripes", "green"]),
            pose((-0.6, 0.45, 0)),
            "stacking",
        ),
        ObjectSpec(
            "block_tower", ob.block_tower(["blue", "red_check", "orange"]), pose((0.1, 0.75, 0), 10), "stacking"
        ),
        ObjectSpec("snowman", ob.snowman("cream", "cream", "black"), pose((0.75, 0.05, 0)), "snowman"),
        ObjectSpec("car", ob.car("red_check", "blue", "black"), pose((-0.45, -0.55, 0), 25), "vehicles"),
        ObjectSpec("ball", ob.ball("orange", 0.16), pose((0.35, -0.7, 0)), "vehicles"),
    ]
    return SceneSpec("toys", objs, PALETTE, "floor", _sun(rng))


def kitchen(rng: np.random.Generator) -> SceneSpec:
    """Nested groups: a shelf with books standing on it, a bowl with fruit in it on a table, and
    a stool. Every level nests (parts in objects in groups) and the objects of a group touch."""
    h = 0.7
    bowl_z = h + 0.1  # fruit rests on the basin's top
    objs = [
        ObjectSpec("shelf", ob.shelf("wood"), pose((-0.9, 0.5, 0), 0), "bookcase"),
        ObjectSpec("book_1", ob.book("red_check", "cream"), pose((-1.21, 0.5, 0.545)), "bookcase"),
        ObjectSpec("book_2", ob.book("blue", "yellow_stripes", 0.12), pose((-1.09, 0.5, 0.545)), "bookcase"),
        ObjectSpec("book_3", ob.book("green", "cream", 0.09, height=0.3), pose((-0.975, 0.5, 0.545)), "bookcase"),
        ObjectSpec("table", ob.table("wood", "metal", 1.0, 0.75, h), pose((0.75, -0.2, 0)), "table"),
        ObjectSpec("bowl", ob.bowl("cream", "blue"), pose((0.75, -0.2, h)), "fruit bowl"),
        ObjectSpec("pear", ob.fruit("pear", "green", "dark_wood"), pose((0.66, -0.28, bowl_z)), "fruit bowl"),
        ObjectSpec("apple", ob.fruit("apple", "red_check", "dark_wood"), pose((0.86, -0.25, bowl_z)), "fruit bowl"),
        ObjectSpec("orange", ob.fruit("orange", "orange", "orange"), pose((0.76, -0.04, bowl_z)), "fruit bowl"),
        ObjectSpec("stool", ob.stool("dark_wood", "metal"), pose((0.2, 0.85, 0), 20), "stool"),
    ]
    return SceneSpec("kitchen", objs, PALETTE, "floor", _sun(rng))


def _random_object(kind: str, rng: np.random.Generator) -> list:
    names = [k for k in PALETTE if k != "floor"]

    def m() -> str:
        return str(rng.choice(names))

    builders: dict[str, Callable[[], list]] = {
        "table": lambda: ob.table(m(), m(), rng.uniform(0.9, 1.4), rng.uniform(0.6, 0.9), rng.uniform(0.55, 0.8)),
        "chair": lambda: ob.chair(m(), m(), m()),
        "lamp": lambda: ob.lamp(m(), m(), m(), rng.uniform(0.8, 1.3)),
        "plant": lambda: ob.plant(m(), m()),
        "snowman": lambda: ob.snowman(m(), m(), m()),
        "ring_stacker": lambda: ob.ring_stacker(m(), m(), [m() for _ in range(int(rng.integers(2, 5)))]),
        "block_tower": lambda: ob.block_tower([m() for _ in range(int(rng.integers(2, 5)))]),
        "car": lambda: ob.car(m(), m(), m()),
        "ball": lambda: ob.ball(m(), rng.uniform(0.15, 0.3)),
    }
    return builders[kind]()


RANDOM_KINDS = ("table", "chair", "lamp", "plant", "snowman", "ring_stacker", "block_tower", "car", "ball")
_FOOTPRINT = {
    "table": 0.85,
    "chair": 0.45,
    "lamp": 0.3,
    "plant": 0.4,
    "snowman": 0.35,
    "ring_stacker": 0.35,
    "block_tower": 0.3,
    "car": 0.55,
    "ball": 0.3,
}


def random(rng: np.random.Generator) -> SceneSpec:
    """2-3 spatial clusters (the groups) of 1-3 random objects each, with random materials.

    Cluster centres sit on a small circle; each object takes the free spot nearest its cluster's
    centre, keeping a wider gap to other clusters so groups stay spatially distinct.
    """
    n_groups = int(rng.integers(2, 4))
    phase = rng.uniform(0.0, 2 * np.pi)
    angles = phase + 2 * np.pi * np.arange(n_groups) / n_groups
    centers = 0.9 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    objs: list[ObjectSpec] = []
    placed: list[tuple[np.ndarray, float, int]] = []
    counts: dict[str, int] = {}
    for gi, c in enumerate(centers, start=1):
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(RANDOM_KINDS))
            radius = _FOOTPRINT[kind]
            candidates = c + rng.uniform(-1.0, 1.0, size=(96, 2))
            free = [
                xy
                for xy in candidates
                if all(np.linalg.norm(xy - p) > radius + r + (0.08 if g == gi else 0.35) for p, r, g in placed)
            ]
            if not free:
                continue
            xy = min(free, key=lambda q: float(np.linalg.norm(q - c)))
            placed.append((xy, radius, gi))
            counts[kind] = counts.get(kind, 0) + 1
            parts = _random_object(kind, rng)
            yaw = float(rng.uniform(0, 360))
            objs.append(ObjectSpec(f"{kind}_{counts[kind]}", parts, pose((xy[0], xy[1], 0.0), yaw), f"cluster_{gi}"))
    return SceneSpec("random", objs, PALETTE, "floor", _sun(rng))


RECIPES: dict[str, Callable[[np.random.Generator], SceneSpec]] = {
    "tabletop": tabletop,
    "livingroom": livingroom,
    "toys": toys,
    "random": random,
    "kitchen": kitchen,
}
SCENE_NAMES: tuple[str, ...] = tuple(RECIPES)
DEFAULT_SCENE = "tabletop"
