"""Procedural textures (solid, checker, stripes, value noise) evaluated at 3D surface points.

Textures are evaluated in world space or in the owning object's local frame, so a pattern
can run continuously across parts (world) or stay glued to an object (object).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Material:
    """A surface's albedo pattern.

    Attributes:
        color_a, color_b: the pattern's two linear RGB colours in [0,1].
        pattern: "solid" | "checker" | "stripes" | "noise".
        scale: pattern period in scene units (checker cell / stripe width / noise cell).
        space: "world" | "object" — which coordinates the pattern is evaluated in.
        axis: stripe direction index (0=x, 1=y, 2=z) for "stripes".
    """

    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pattern: str = "solid"
    scale: float = 0.2
    space: str = "object"
    axis: int = 0


PATTERNS = ("solid", "checker", "stripes", "noise")


def _mix32(x: np.ndarray) -> np.ndarray:
    """An integer bit mixer (uint32 in, uint32 out): fixed, platform-independent pseudo-randomness."""
    x = x.astype(np.uint32)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint32(16)
        x *= np.uint32(0x7FEB352D)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x846CA68B)
        x ^= x >> np.uint32(16)
    return x


# Constant tables of the lattice hash: a permutation of 0..255 and 256 values in [0,1).
_PERM = np.argsort(_mix32(np.arange(256) + 1), kind="stable").astype(np.int64)
_VALUES = (_mix32(np.arange(256) + 1000) >> np.uint32(8)).astype(np.float64) / float(1 << 24)


def _hash3(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0,1) per integer lattice point (period 256)."""
    return _VALUES[_PERM[(_PERM[(_PERM[ix & 255] + iy) & 255] + iz) & 255]]


def value_noise(points: np.ndarray, octaves: int = 2) -> np.ndarray:
    """Smooth fractal value noise in [0,1] at points [N,3] (lattice spacing 1 for octave 0)."""
    total = np.zeros(len(points))
    amplitude, norm = 1.0, 0.0
    p = points.astype(np.float64)
    for _ in range(octaves):
        base = np.floor(p)
        f = p - base
        w = f * f * (3.0 - 2.0 * f)
        b = base.astype(np.int64)
        acc = np.zeros(len(p))
        for dx in (0, 1):
            for dy in (0, 1):
                for dz in (0, 1):
                    weight = (
                        (w[:, 0] if dx else 1 - w[:, 0])
                        * (w[:, 1] if dy else 1 - w[:, 1])
                        * (w[:, 2] if dz else 1 - w[:, 2])
                    )
                    acc += weight * _hash3(b[:, 0] + dx, b[:, 1] + dy, b[:, 2] + dz)
        total += amplitude * acc
        norm += amplitude
        amplitude *= 0.5
        p = p * 2.0 + 17.0
    return total / norm


def pattern_mix(material: Material, points: np.ndarray) -> np.ndarray:
    """[N] weight of ``color_b`` (0 = colour a, 1 = colour b) at points [N,3] in the material's space."""
    q = points / material.scale
    if material.pattern == "solid":
        return np.zeros(len(points))
    if material.pattern == "checker":
        # Small offset keeps faces lying exactly on a cell boundary from flickering between cells.
        cells = np.floor(q + 1e-4).astype(np.int64)
        return (cells.sum(axis=1) % 2).astype(np.float64)
    if material.pattern == "stripes":
        return (np.floor(q[:, material.axis] + 1e-4).astype(np.int64) % 2).astype(np.float64)
    if material.pattern == "noise":
        return value_noise(q)
    raise ValueError(f"unknown pattern {material.pattern!r}")


def albedo(material: Material, points: np.ndarray) -> np.ndarray:
    """[N,3] albedo at points [N,3] (already expressed in the material's space)."""
    t = pattern_mix(material, points)[:, None]
    return (1.0 - t) * np.asarray(material.color_a) + t * np.asarray(material.color_b)
