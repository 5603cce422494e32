"""Prompt specification: clicks, 3D prompt points, prompt files, and the prompt settings an
objective carries.

Clicks are ``STEM:X,Y`` (optionally ``@K`` for prompted object K) in dataset image coordinates;
a prompt file lists per object positive and negative entries, each a 3D point ``[x, y, z]`` or a
click. Nothing here renders: lifting the clicks is :mod:`gsseg.prompts.lifting`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from gsseg.errors import GssegError, file_error


@dataclass
class Click:
    """A click at pixel (x, y) of ``view`` (dataset image coordinates, integer = pixel index).

    positive: on the object (True) or not on any object (False); obj: prompted object id (1..K).
    """

    view: str
    x: float
    y: float
    positive: bool = True
    obj: int = 1


def parse_click(text: str, positive: bool = True) -> Click:
    """``STEM:X,Y`` or ``STEM:X,Y@K`` (K = prompted object id, default 1) -> :class:`Click`."""
    body, obj = text, 1
    if "@" in text:
        body, _, obj_text = text.rpartition("@")
        try:
            obj = int(obj_text)
        except ValueError:
            raise GssegError(f"bad click {text!r}: the object after '@' must be an integer >= 1") from None
        if obj < 1:
            raise GssegError(f"bad click {text!r}: object ids start at 1")
    view, sep, coords = body.rpartition(":")
    parts = coords.split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        x = y = math.nan
    if not sep or not view or len(parts) != 2 or not (math.isfinite(x) and math.isfinite(y)):
        raise GssegError(f"bad click {text!r}: use STEM:X,Y (e.g. train_003:120,64), optionally @K for object K")
    return Click(view=view, x=x, y=y, positive=positive, obj=obj)


@dataclass
class PromptSpec:
    """Prompts before lifting: 3D points and clicks, per prompted object.

    points: [M,3] float64 world points; point_objects: [M] int64 (k >= 1 positive for object k,
    0 negative); clicks: 2D clicks still to lift; names: K object names.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    point_objects: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    clicks: list[Click] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def n_objects(self) -> int:
        ids = [int(o) for o in self.point_objects if o > 0] + [c.obj for c in self.clicks if c.positive]
        return max([len(self.names), *ids]) if ids or self.names else 0

    def object_names(self) -> list[str]:
        return [self.names[k] if k < len(self.names) else f"object_{k + 1}" for k in range(self.n_objects)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (recorded in the features file)."""
        return {
            "names": self.object_names(),
            "points": np.asarray(self.points, dtype=np.float64).tolist(),
            "point_objects": np.asarray(self.point_objects, dtype=np.int64).tolist(),
            "clicks": [
                {"view": c.view, "x": c.x, "y": c.y, "positive": c.positive, "object": c.obj} for c in self.clicks
            ],
        }

    def validate(self, source: str = "prompts") -> None:
        if self.n_objects == 0:
            raise GssegError(f"{source}: no positive prompt (give at least one --click or a positive point)")
        objs = {int(o) for o in self.point_objects if o > 0} | {c.obj for c in self.clicks if c.positive}
        missing = sorted(set(range(1, self.n_objects + 1)) - objs)
        if missing:
            raise GssegError(f"{source}: object(s) {missing} have no positive prompt")


def _parse_entry(entry: Any, path: Path, obj: int, positive: bool) -> np.ndarray | Click:
    """One prompt of a prompt file: a 3D point [3] float64 or a Click."""
    if isinstance(entry, str):
        c = parse_click(entry, positive)
        c.obj = obj
        return c
    if isinstance(entry, dict) and {"view", "x", "y"} <= set(entry):
        try:
            return Click(str(entry["view"]), float(entry["x"]), float(entry["y"]), positive, obj)
        except (TypeError, ValueError):
            pass
    elif isinstance(entry, (list, tuple)) and len(entry) == 3:
        try:
            p = np.asarray([float(v) for v in entry], dtype=np.float64)
            if np.isfinite(p).all():
                return p
        except (TypeError, ValueError):
            pass
    raise file_error(path, f'bad prompt {entry!r}: use [x,y,z], "STEM:X,Y" or {{"view", "x", "y"}}')


def load_prompt_file(path: str | Path) -> PromptSpec:
    """Read a prompt file.

    ``{"objects": [{"name": "mug", "positive": [...], "negative": [...]}, ...], "negative": [...]}``
    where each entry is a 3D point ``[x, y, z]``, a click ``"STEM:X,Y"`` or
    ``{"view": STEM, "x": X, "y": Y}``. Negatives are "not on any prompted object".
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "prompt file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise file_error(path, f"unreadable prompt file ({e})") from None
    except json.JSONDecodeError as e:
        raise file_error(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # a 5000-digit integer, or nesting thousands deep
        raise file_error(path, f"malformed JSON ({type(e).__name__}: too long or nested too deeply)") from None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list) or not data["objects"]:
        raise file_error(path, 'must be a JSON object with a non-empty "objects" list')
    spec = PromptSpec()
    points, objects = [], []
    groups: list[tuple[int, Any, bool]] = []
    for k, o in enumerate(data["objects"], start=1):
        if (
            not isinstance(o, dict)
            or not isinstance(o.get("positive", []), list)
            or not isinstance(o.get("negative", []), list)
        ):
            raise file_error(path, f'object {k} must be {{"name", "positive": [...], "negative": [...]}}')
        spec.names.append(str(o.get("name", f"object_{k}")))
        groups += [(k, e, True) for e in o.get("positive", [])] + [(0, e, False) for e in o.get("negative", [])]
    if not isinstance(data.get("negative", []), list):
        raise file_error(path, '"negative" must be a list')
    groups += [(0, e, False) for e in data.get("negative", [])]
    for obj, entry, positive in groups:
        parsed = _parse_entry(entry, path, max(obj, 1), positive)
        if isinstance(parsed, Click):
            spec.clicks.append(parsed)
        else:
            points.append(parsed)
            objects.append(obj)
    if points:
        spec.points = np.stack(points)
        spec.point_objects = np.asarray(objects, dtype=np.int64)
    spec.validate(str(path))
    return spec


def spec_from_options(clicks: list[str], negative_clicks: list[str], prompt_file: str | Path | None) -> PromptSpec:
    """Prompts from CLI ``--click`` / ``--negative-click`` strings and an optional prompt file."""
    spec = load_prompt_file(prompt_file) if prompt_file else PromptSpec()
    spec.clicks += [parse_click(c, True) for c in clicks] + [parse_click(c, False) for c in negative_clicks]
    spec.validate("--click/--prompts")
    return spec


Level = Literal["part", "object", "group"]
PROMPT_LEVELS: tuple[str, ...] = get_args(Level)


@dataclass
class PropagationSettings:
    """How prompts become per-view masks.

    tolerance: occlusion tolerance as a fraction of the scene scale; min_visible: visible
    positives needed per object (-1: ⌊0.8·n⌋+1 as SANeRF-HQ); min_mask_pixels: smaller masks
    are treated as not found; min_alpha: rendered opacity needed at a prompt's pixel;
    consensus_rounds: times every view's store mask is chosen again against the 3D consensus of
    the previous choices (:mod:`gsseg.masks.prompt_consensus`; 0 = the first choice stays);
    level: what a click means among the nested store masks holding it, "part", "object" or
    "group" (:func:`gsseg.masks.click_object.level_mask`).
    """

    tolerance: float = 0.02
    min_visible: int = -1
    min_mask_pixels: int = 10
    min_alpha: float = 0.5
    consensus_rounds: int = 2
    level: Level = "object"


@dataclass
class PromptOptions:
    """Prompt settings shared by prompted objectives (JSON-serialisable).

    clicks / negative_clicks: ``STEM:X,Y[@K]`` strings; prompts: a prompt file (see
    :func:`load_prompt_file`); sam_checkpoint / sam_model_type: SAM point prompts instead of the
    mask store; tolerance: occlusion tolerance as a fraction of the scene scale; min_visible:
    visible positives a view needs per object (-1: ⌊0.8·n⌋+1); min_mask_pixels: smaller masks
    count as not found; consensus_rounds: see :class:`PropagationSettings`; level: what a click
    selects, "part", "object" (default) or "group".
    """

    clicks: list[str] = field(default_factory=list)
    negative_clicks: list[str] = field(default_factory=list)
    prompts: str | None = None
    sam_checkpoint: str | None = None
    sam_model_type: str | None = None
    tolerance: float = 0.05
    min_visible: int = -1
    min_mask_pixels: int = 10
    consensus_rounds: int = 2
    level: Level = "object"

    def __post_init__(self) -> None:
        if self.level not in PROMPT_LEVELS:
            raise GssegError(f"prompt level {self.level!r} (--level): choose one of {', '.join(PROMPT_LEVELS)}")

    def given(self) -> bool:
        return bool(self.clicks or self.prompts)

    def spec(self) -> PromptSpec:
        return spec_from_options(list(self.clicks), list(self.negative_clicks), self.prompts)

    def propagation(self) -> PropagationSettings:
        return PropagationSettings(
            tolerance=self.tolerance,
            min_visible=self.min_visible,
            min_mask_pixels=self.min_mask_pixels,
            consensus_rounds=self.consensus_rounds,
            level=self.level,
        )


def split_prompt_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], PromptOptions]:
    """Separate :class:`PromptOptions` keys from an objective's other settings."""
    names = set(PromptOptions.__dataclass_fields__)
    own = {k: v for k, v in settings.items() if k not in names}
    return own, PromptOptions(**{k: v for k, v in settings.items() if k in names})
