"""Object builders: each returns the labelled parts of one object in its local frame.

Local frame: +z up, the object stands on z = 0 centred on the origin, its "front" faces +y.
Material arguments name entries of the recipe's material table.
"""

from __future__ import annotations

import gsseg.synth.primitives as prim
from gsseg.synth.scene import PartSpec


def table(top: str, legs: str, width: float = 1.6, depth: float = 1.0, height: float = 0.75) -> list[PartSpec]:
    """A top and four legs."""
    t = 0.07
    parts = [PartSpec("top", prim.box((0, 0, height - t / 2), (width, depth, t)), top)]
    leg_h = height - t
    inset = 0.12
    for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)], start=1):
        c = (sx * (width / 2 - inset), sy * (depth / 2 - inset), leg_h / 2)
        parts.append(PartSpec(f"leg_{i}", prim.cylinder(c, 0.055, leg_h), legs))
    return parts


def chair(seat: str, back: str, legs: str, size: float = 0.5, height: float = 0.48) -> list[PartSpec]:
    """Seat, backrest (at -y) and four legs."""
    t = 0.07
    parts = [
        PartSpec("seat", prim.box((0, 0, height - t / 2), (size, size, t)), seat),
        PartSpec("back", prim.box((0, -size / 2 + 0.04, height + 0.3), (size, 0.08, 0.6)), back),
    ]
    leg_h = height - t
    for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)], start=1):
        c = (sx * (size / 2 - 0.05), sy * (size / 2 - 0.05), leg_h / 2)
        parts.append(PartSpec(f"leg_{i}", prim.box(c, (0.07, 0.07, leg_h)), legs))
    return parts


def lamp(base: str, pole: str, shade: str, height: float = 0.9) -> list[PartSpec]:
    """Base disc, pole and conical shade."""
    return [
        PartSpec("base", prim.cylinder((0, 0, 0.03), 0.17, 0.06), base),
        PartSpec("pole", prim.cylinder((0, 0, 0.06 + (height - 0.3) / 2), 0.03, height - 0.3), pole),
        PartSpec("shade", prim.cone((0, 0, height - 0.35), 0.24, 0.38), shade),
    ]


def mug(body: str, handle: str) -> list[PartSpec]:
    """Cylindrical body and a torus handle on +x."""
    return [
        PartSpec("body", prim.cylinder((0, 0, 0.1), 0.09, 0.2), body),
        PartSpec("handle", prim.torus((0.1, 0, 0.1), 0.06, 0.022, axis="y"), handle),
    ]


def teapot(body: str, lid: str, spout: str) -> list[PartSpec]:
    """Spherical body, conical lid and a spout on +x."""
    return [
        PartSpec("body", prim.sphere((0, 0, 0.15), 0.15), body),
        PartSpec("lid", prim.cone((0, 0, 0.26), 0.09, 0.12), lid),
        PartSpec("spout", prim.cylinder((0.19, 0, 0.2), 0.035, 0.18, axis="x"), spout),
    ]


def books(covers: list[str]) -> list[PartSpec]:
    """A stack of books, one part per book, each a little rotated."""
    parts = []
    z = 0.0
    for i, mat in enumerate(covers, start=1):
        h = 0.06
        mesh = prim.box((0, 0, z + h / 2), (0.34 - 0.03 * i, 0.25 - 0.015 * i, h))
        mesh = mesh.transformed(prim.pose((0, 0, 0), yaw_deg=12.0 * (i % 2) - 6.0))
        parts.append(PartSpec(f"book_{i}", mesh, mat))
        z += h
    return parts


def ball(surface: str, radius: float = 0.2) -> list[PartSpec]:
    """A single sphere resting on the floor."""
    return [PartSpec("ball", prim.sphere((0, 0, radius), radius), surface)]


def plant(pot: str, foliage: str) -> list[PartSpec]:
    """A pot and a spherical crown of leaves."""
    return [
        PartSpec("pot", prim.cylinder((0, 0, 0.18), 0.2, 0.36), pot),
        PartSpec("foliage", prim.sphere((0, 0, 0.66), 0.34), foliage),
    ]


def sofa(frame: str, cushions: str, width: float = 1.8) -> list[PartSpec]:
    """Base, backrest (at -y), two arms and two seat cushions."""
    d = 0.8
    return [
        PartSpec("base", prim.box((0, 0, 0.2), (width, d, 0.4)), frame),
        PartSpec("back", prim.box((0, -d / 2 + 0.1, 0.6), (width, 0.2, 0.8)), frame),
        PartSpec("arm_left", prim.box((-width / 2 + 0.1, 0.1, 0.55), (0.2, d - 0.2, 0.3)), frame),
        PartSpec("arm_right", prim.box((width / 2 - 0.1, 0.1, 0.55), (0.2, d - 0.2, 0.3)), frame),
        PartSpec("cushion_left", prim.box((-width / 4 + 0.05, 0.1, 0.47), (width / 2 - 0.3, d - 0.25, 0.14)), cushions),
        PartSpec("cushion_right", prim.box((width / 4 - 0.05, 0.1, 0.47), (width / 2 - 0.3, d - 0.25, 0.14)), cushions),
    ]


def tv(stand: str, screen: str) -> list[PartSpec]:
    """A low cabinet and a screen standing on it."""
    return [
        PartSpec("stand", prim.box((0, 0, 0.22), (1.2, 0.4, 0.44)), stand),
        PartSpec("screen", prim.box((0, 0, 0.44 + 0.35), (1.0, 0.08, 0.62)), screen),
    ]


def snowman(body: str, head: str, hat: str) -> list[PartSpec]:
    """Two body spheres, a head and a hat."""
    return [
        PartSpec("bottom", prim.sphere((0, 0, 0.28), 0.28), body),
        PartSpec("middle", prim.sphere((0, 0, 0.7), 0.2), body),
        PartSpec("head", prim.sphere((0, 0, 1.0), 0.14), head),
        PartSpec("hat", prim.cylinder((0, 0, 1.19), 0.1, 0.14), hat),
    ]


def ring_stacker(base: str, pole: str, rings: list[str]) -> list[PartSpec]:
    """A base, a pole and torus rings of decreasing size."""
    parts = [
        PartSpec("base", prim.cylinder((0, 0, 0.05), 0.3, 0.1), base),
        PartSpec("pole", prim.cylinder((0, 0, 0.45), 0.045, 0.7), pole),
    ]
    z = 0.1
    for i, mat in enumerate(rings, start=1):
        tube = 0.075 - 0.01 * i
        z += tube
        parts.append(PartSpec(f"ring_{i}", prim.torus((0, 0, z), 0.22 - 0.035 * i, tube), mat))
        z += tube
    return parts


def block_tower(blocks: list[str], size: float = 0.32) -> list[PartSpec]:
    """Cubes stacked with alternating twists."""
    parts = []
    z = 0.0
    for i, mat in enumerate(blocks, start=1):
        s = size * (1.0 - 0.12 * (i - 1))
        mesh = prim.box((0, 0, z + s / 2), (s, s, s)).transformed(prim.pose((0, 0, 0), yaw_deg=25.0 * (i - 1)))
        parts.append(PartSpec(f"block_{i}", mesh, mat))
        z += s
    return parts


def car(body: str, cabin: str, wheels: str) -> list[PartSpec]:
    """Body, cabin and four wheels (front towards +x)."""
    parts = [
        PartSpec("body", prim.box((0, 0, 0.2), (0.9, 0.44, 0.2)), body),
        PartSpec("cabin", prim.box((-0.08, 0, 0.4), (0.46, 0.38, 0.2)), cabin),
    ]
    for i, (sx, sy) in enumerate([(-1, -1), (1, -1), (1, 1), (-1, 1)], start=1):
        parts.append(PartSpec(f"wheel_{i}", prim.cylinder((sx * 0.28, sy * 0.24, 0.11), 0.11, 0.08, axis="y"), wheels))
    return parts


def shelf(frame: str, width: float = 1.1, depth: float = 0.36, height: float = 1.05, boards: int = 3) -> list[PartSpec]:
    """Two sides and ``boards`` shelf boards (bottom, middle(s), top); open front at +y."""
    t = 0.045
    parts = [
        PartSpec("side_left", prim.box((-width / 2 + t / 2, 0, height / 2), (t, depth, height)), frame),
        PartSpec("side_right", prim.box((width / 2 - t / 2, 0, height / 2), (t, depth, height)), frame),
    ]
    for i in range(boards):
        z = t / 2 + i * (height - t) / (boards - 1)
        parts.append(PartSpec(f"board_{i + 1}", prim.box((0, 0, z), (width - 2 * t, depth, t)), frame))
    return parts


def book(cover: str, band: str, thickness: float = 0.1, depth: float = 0.26, height: float = 0.34) -> list[PartSpec]:
    """An upright book (spine towards +y) and a label band around its middle, standing on z = 0."""
    return [
        PartSpec("cover", prim.box((0, 0, height / 2), (thickness, depth, height)), cover),
        PartSpec("band", prim.box((0, 0.004, height / 2), (thickness + 0.008, depth, 0.09)), band),
    ]


def bowl(basin: str, rim: str, radius: float = 0.27, height: float = 0.1) -> list[PartSpec]:
    """A low round basin and the torus rim around its top."""
    return [
        PartSpec("basin", prim.cylinder((0, 0, height / 2), radius, height), basin),
        PartSpec("rim", prim.torus((0, 0, height), radius, 0.028), rim),
    ]


def fruit(kind: str, skin: str, detail: str, size: float = 0.095) -> list[PartSpec]:
    """One fruit resting on z = 0: "pear" (body and neck), "apple" (body and stalk) or "orange"
    (one sphere)."""
    body = PartSpec("body", prim.sphere((0, 0, size), size), skin)
    if kind == "pear":
        return [body, PartSpec("neck", prim.sphere((0, 0, 2 * size + 0.03), 0.62 * size), detail)]
    if kind == "apple":
        return [body, PartSpec("stalk", prim.cylinder((0, 0, 2 * size + 0.02), 0.022, 0.07), detail)]
    if kind == "orange":
        return [PartSpec("orange", prim.sphere((0, 0, size), size), skin)]
    raise ValueError(f"unknown fruit {kind!r}")


def stool(seat: str, legs: str, size: float = 0.4, height: float = 0.5) -> list[PartSpec]:
    """A chair without its backrest: seat and four legs."""
    return [p for p in chair(seat, seat, legs, size, height) if p.name != "back"]
