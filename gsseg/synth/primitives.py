"""Triangle-mesh primitives for synthetic scenes, built with Open3D and returned as arrays.

Every builder returns a :class:`Mesh` in object-local coordinates with +z up; objects are
placed in the world later by :func:`Mesh.transformed`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh.

    Attributes:
        vertices: [V,3] float64 positions.
        triangles: [T,3] int32 vertex indices (counter-clockwise seen from outside).
    """

    vertices: np.ndarray
    triangles: np.ndarray

    def transformed(self, matrix: np.ndarray) -> "Mesh":
        """The mesh moved by a [4,4] rigid (or scaling) transform."""
        v = self.vertices @ matrix[:3, :3].T + matrix[:3, 3]
        return Mesh(v, self.triangles)

    def corner_normals(self, crease_deg: float = 40.0) -> np.ndarray:
        """[T,3,3] smooth shading normal at each triangle corner.

        A corner averages (area-weighted) the normals of the faces around its vertex that lie
        within ``crease_deg`` of its own face, so curved surfaces shade smoothly while box
        edges and cylinder rims stay sharp.
        """
        v, t = self.vertices, self.triangles
        cross = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
        double_area = np.linalg.norm(cross, axis=1)
        face_n = cross / np.maximum(double_area, 1e-30)[:, None]
        # Faces around each vertex, padded with -1: [V, max degree].
        vert = t.ravel()
        face = np.repeat(np.arange(len(t)), 3)
        order = np.argsort(vert, kind="stable")
        vert, face = vert[order], face[order]
        degree = np.bincount(vert, minlength=len(v))
        start = np.concatenate([[0], np.cumsum(degree)[:-1]])
        ring = np.full((len(v), max(int(degree.max()), 1)), -1, dtype=np.int64)
        ring[vert, np.arange(len(vert)) - start[vert]] = face
        cand = ring[t]  # [T,3,D]
        valid = cand >= 0
        cand_n = face_n[np.where(valid, cand, 0)]  # [T,3,D,3]
        close = np.einsum("tkdc,tc->tkd", cand_n, face_n) > np.cos(np.deg2rad(crease_deg))
        w = np.where(valid & close, double_area[np.where(valid, cand, 0)], 0.0)
        n = np.einsum("tkd,tkdc->tkc", w, cand_n)
        norm = np.linalg.norm(n, axis=2, keepdims=True)
        return np.where(norm > 1e-30, n / np.maximum(norm, 1e-30), face_n[:, None, :])

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned ([3] min, [3] max)."""
        return self.vertices.min(axis=0), self.vertices.max(axis=0)


def _from_legacy(mesh: o3d.geometry.TriangleMesh) -> Mesh:
    return Mesh(np.asarray(mesh.vertices, dtype=np.float64).copy(), np.asarray(mesh.triangles, dtype=np.int32).copy())


def _axis_rotation(axis: str) -> np.ndarray:
    """[3,3] rotation taking +z onto the named axis ("x", "y", "z", or "-z")."""
    if axis == "z":
        return np.eye(3)
    if axis == "-z":
        return np.diag([1.0, -1.0, -1.0])
    if axis == "x":
        return np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    if axis == "y":
        return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    raise ValueError(f"unknown axis {axis!r}")


def _place(mesh: Mesh, center, axis: str = "z") -> Mesh:
    m = np.eye(4)
    m[:3, :3] = _axis_rotation(axis)
    m[:3, 3] = np.asarray(center, dtype=np.float64)
    return mesh.transformed(m)


def box(center, size) -> Mesh:
    """Axis-aligned box with the given centre [3] and edge lengths [3]."""
    sx, sy, sz = (float(s) for s in size)
    mesh = _from_legacy(o3d.geometry.TriangleMesh.create_box(sx, sy, sz))
    return _place(Mesh(mesh.vertices - np.array([sx, sy, sz]) / 2, mesh.triangles), center)


def cylinder(center, radius: float, height: float, axis: str = "z", resolution: int = 32) -> Mesh:
    """Closed cylinder centred at ``center`` along ``axis``."""
    mesh = _from_legacy(o3d.geometry.TriangleMesh.create_cylinder(radius, height, resolution=resolution, split=1))
    return _place(mesh, center, axis)


def sphere(center, radius: float, resolution: int = 24) -> Mesh:
    """Sphere centred at ``center``."""
    return _place(_from_legacy(o3d.geometry.TriangleMesh.create_sphere(radius, resolution=resolution)), center)


def cone(base_center, radius: float, height: float, axis: str = "z", resolution: int = 32) -> Mesh:
    """Cone whose base disc is centred at ``base_center``, apex ``height`` along ``axis``."""
    mesh = _from_legacy(o3d.geometry.TriangleMesh.create_cone(radius, height, resolution=resolution, split=1))
    return _place(mesh, base_center, axis)


def torus(center, radius: float, tube_radius: float, axis: str = "z", resolution: int = 32) -> Mesh:
    """Torus centred at ``center`` whose ring lies in the plane normal to ``axis``."""
    mesh = _from_legacy(
        o3d.geometry.TriangleMesh.create_torus(radius, tube_radius, radial_resolution=resolution, tubular_resolution=16)
    )
    return _place(mesh, center, axis)


def quad(center, size_x: float, size_y: float) -> Mesh:
    """Horizontal rectangle (two triangles, normal +z), e.g. a floor."""
    hx, hy = size_x / 2, size_y / 2
    v = np.array([[-hx, -hy, 0.0], [hx, -hy, 0.0], [hx, hy, 0.0], [-hx, hy, 0.0]]) + np.asarray(
        center, dtype=np.float64
    )
    return Mesh(v, np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32))


def pose(position, yaw_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """[4,4] object-to-world transform: uniform scale, rotation about +z, translation."""
    a = np.deg2rad(yaw_deg)
    m = np.eye(4)
    m[:3, :3] = scale * np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    m[:3, 3] = np.asarray(position, dtype=np.float64)
    return m
