"""Objective names → classes. Each objective adds one ``_ENTRIES`` line (append only).

Classes are imported on first use, so listing names (CLI help, validation) stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from gsseg.errors import GssegError
from gsseg.objectives.base import Objective

_ENTRIES: dict[str, str] = {
    "contrastive": "gsseg.objectives.contrastive:ContrastiveObjective",
    "contrastive-flat": "gsseg.objectives.contrastive:FlatContrastiveObjective",
    "ultrametric": "gsseg.objectives.ultrametric:UltrametricObjective",
    "object-field": "gsseg.objectives.object_field:ObjectFieldObjective",
    "clustering": "gsseg.objectives.clustering:ClusteringObjective",
    "vote": "gsseg.objectives.vote:VoteObjective",
}

# The settings dataclass of each objective (its fields are the objective's options, ``gsseg train --help``).
_SETTINGS: dict[str, str] = {
    "contrastive": "gsseg.objectives.contrastive:ContrastiveSettings",
    "contrastive-flat": "gsseg.objectives.contrastive:ContrastiveSettings",
    "ultrametric": "gsseg.objectives.ultrametric:UltrametricSettings",
    "object-field": "gsseg.objectives.object_field:ObjectFieldSettings",
    "clustering": "gsseg.objectives.clustering:ClusteringSettings",
    "vote": "gsseg.objectives.vote:VoteSettings",
}


class _LazyRegistry(Mapping):
    """Read-only mapping name → Objective subclass, importing each module on first access."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = entries
        self._loaded: dict[str, type[Objective]] = {}

    def __getitem__(self, name: str) -> type[Objective]:
        if name not in self._loaded:
            module, attr = self._entries[name].split(":")
            cls = getattr(importlib.import_module(module), attr)
            if cls.name != name:
                raise RuntimeError(f"registry entry {name!r} points at objective {cls.name!r}")
            self._loaded[name] = cls
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


OBJECTIVES: Mapping[str, type[Objective]] = _LazyRegistry(_ENTRIES)


def objective_names() -> list[str]:
    """Registered objective names, in registration order."""
    return list(_ENTRIES)


def settings_class(name: str) -> type:
    """The settings dataclass of objective ``name`` (GssegError for an unknown name)."""
    if name not in _SETTINGS:
        raise GssegError(f"unknown objective {name!r}; choose one of: {', '.join(_ENTRIES)}")
    module, attr = _SETTINGS[name].split(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls


def make_objective(name: str, **settings: Any) -> Objective:
    """An objective by name with its settings (GssegError for an unknown name or setting)."""
    if name not in _ENTRIES:
        raise GssegError(f"unknown objective {name!r}; choose one of: {', '.join(_ENTRIES)}")
    cls = OBJECTIVES[name]
    try:
        return cls(**settings)
    except TypeError as e:
        raise GssegError(f"objective {name!r}: bad settings ({e})") from None
