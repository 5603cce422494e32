"""The part -> object -> group structure of a synthetic scene and its assembly into world space."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gsseg.synth.primitives import Mesh
from gsseg.synth.textures import Material


@dataclass
class PartSpec:
    """One labelled part in object-local coordinates (+z up, origin on the floor)."""

    name: str
    mesh: Mesh
    material: str


@dataclass
class ObjectSpec:
    """An object: its parts, its [4,4] object-to-world pose and the name of its group."""

    name: str
    parts: list[PartSpec]
    pose: np.ndarray
    group: str


@dataclass
class SceneSpec:
    """What a recipe returns: objects (grouped by name), the material table, the floor's material
    and the unit direction [3] towards the sun."""

    name: str
    objects: list[ObjectSpec]
    materials: dict[str, Material]
    floor_material: str
    light_direction: np.ndarray


@dataclass
class Part:
    """A part placed in the world with its global ids (part ids 1..P, object 1..O, group 1..G)."""

    part_id: int
    object_id: int
    group_id: int
    name: str
    mesh: Mesh
    material: Material
    world_to_object: np.ndarray


@dataclass
class SynthScene:
    """An assembled scene.

    Attributes:
        parts: parts in id order (``parts[i].part_id == i + 1``).
        object_names, group_names: names indexed by id - 1.
        object_groups: [O] group id of each object.
        floor_material: albedo of the floor (world space).
        light_direction: [3] unit vector towards the light.
        center: [3] centre of the objects' bounding box; radius: its half diagonal.
    """

    name: str
    parts: list[Part]
    object_names: list[str]
    group_names: list[str]
    object_groups: list[int]
    floor_material: Material
    light_direction: np.ndarray
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    radius: float = 1.0

    def hierarchy(self) -> dict:
        """The ``hierarchy.json`` document (ids as strings, names, and the parent of every node)."""
        objects = {}
        for oid, name in enumerate(self.object_names, start=1):
            objects[str(oid)] = {
                "name": name,
                "group": self.object_groups[oid - 1],
                "parts": [p.part_id for p in self.parts if p.object_id == oid],
            }
        groups = {}
        for gid, name in enumerate(self.group_names, start=1):
            groups[str(gid)] = {
                "name": name,
                "objects": [o for o, g in enumerate(self.object_groups, start=1) if g == gid],
            }
        parts = {
            str(p.part_id): {
                "object": p.object_id,
                "group": p.group_id,
                "name": f"{self.object_names[p.object_id - 1]}/{p.name}",
            }
            for p in self.parts
        }
        return {
            "levels": ["part", "object", "group"],
            "background": 0,
            "parts": parts,
            "objects": objects,
            "groups": groups,
        }

    def level_lookup(self) -> dict[str, np.ndarray]:
        """Per level, an int64 array [P+1] mapping a part id (0 = background) to that level's id."""
        obj = np.zeros(len(self.parts) + 1, dtype=np.int64)
        grp = np.zeros(len(self.parts) + 1, dtype=np.int64)
        for p in self.parts:
            obj[p.part_id] = p.object_id
            grp[p.part_id] = p.group_id
        return {"part": np.arange(len(self.parts) + 1, dtype=np.int64), "object": obj, "group": grp}


def assemble(spec: SceneSpec) -> SynthScene:
    """Place every part in world space and number parts, objects and groups in listing order."""
    group_names: list[str] = []
    object_groups: list[int] = []
    parts: list[Part] = []
    for oid, obj in enumerate(spec.objects, start=1):
        if obj.group not in group_names:
            group_names.append(obj.group)
        gid = group_names.index(obj.group) + 1
        object_groups.append(gid)
        world_to_object = np.linalg.inv(obj.pose)
        for part in obj.parts:
            parts.append(
                Part(
                    part_id=len(parts) + 1,
                    object_id=oid,
                    group_id=gid,
                    name=part.name,
                    mesh=part.mesh.transformed(obj.pose),
                    material=spec.materials[part.material],
                    world_to_object=world_to_object,
                )
            )
    lo = np.min([p.mesh.bounds[0] for p in parts], axis=0)
    hi = np.max([p.mesh.bounds[1] for p in parts], axis=0)
    light = np.asarray(spec.light_direction, dtype=np.float64)
    return SynthScene(
        name=spec.name,
        parts=parts,
        object_names=[o.name for o in spec.objects],
        group_names=group_names,
        object_groups=object_groups,
        floor_material=spec.materials[spec.floor_material],
        light_direction=light / np.linalg.norm(light),
        center=(lo + hi) / 2,
        radius=float(np.linalg.norm(hi - lo) / 2),
    )
