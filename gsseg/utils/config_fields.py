"""Config dataclasses described by their own fields: help text, allowed values, resume rule.

A config is a dataclass whose fields may be dataclasses themselves (sections, e.g.
``TrainConfig.rgb.lr``). Each field documents itself:

- help: an attribute docstring (a string literal on the line below the field),
  ``field(metadata={"help": ...})``, or a ``name: text;`` entry of the class docstring;
- allowed values: a ``Literal[...]`` type;
- resume rule, ``field(metadata=resume(...))``: what a value given for a resumed run does when it
  differs from the recorded one —

  - ``"keep"`` (the default): the run keeps its recorded value and the new one is reported as
    ignored (``--restart`` changes it);
  - ``"restart"``: the new value is used and the field's stage starts fresh;
  - ``"apply"``: the new value applies to the resumed run (step counts, time and memory limits).

:func:`leaves` lists the fields by dotted path (``"rgb.lr.means"``); :func:`merge_resumed` merges
values given for a resumed run by their rules. The CLI builds its options from the same list
(``gsseg/cli/config_options.py``), so a default is written once, in the dataclass.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

OnResume = Literal["keep", "restart", "apply"]
KEEP: OnResume = "keep"
RESTART: OnResume = "restart"
APPLY: OnResume = "apply"


def resume(rule: OnResume, stage: str | None = None) -> dict[str, Any]:
    """Field metadata: what a changed value does on resume; ``stage`` (default: the path's first
    section) is the stage a ``"restart"`` field restarts."""
    return {"on_resume": rule, "stage": stage}


@dataclass(frozen=True)
class Leaf:
    """One non-dataclass field of a (nested) config dataclass.

    path: dotted path from the top (``"rgb.densify.grow_grad2d"``); type: the resolved annotation;
    default: the dataclass default (``default_factory()`` called); choices: the values of a
    ``Literal`` type, else None.
    """

    path: str
    type: Any
    default: Any
    help: str
    on_resume: OnResume
    stage: str
    choices: tuple[Any, ...] | None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


def literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values of ``Literal[...]`` (also inside ``Optional``), else None."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and typing.get_origin(args[0]) is Literal:
        return typing.get_args(args[0])
    return None


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """{field name: help text} of dataclass ``cls`` (metadata, attribute docstring or class docstring entry)."""
    names = [f.name for f in dataclasses.fields(cls)]
    docs = _docstring_entries(cls.__doc__ or "", set(names))
    docs.update(_attribute_docstrings(cls))
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            docs[f.name] = str(f.metadata["help"])
    return docs


def _attribute_docstrings(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):  # no source (e.g. a zipped install): help from metadata only
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for a, b in zip(body, body[1:]):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


_ENTRY = re.compile(r"(?<![\w(])(\w+(?:\s*[/,]\s*\w+)*):\s")


def _docstring_entries(doc: str, names: set[str]) -> dict[str, str]:
    """``name: text;`` (or ``a / b: shared text;``) entries of a class docstring, for known field names."""
    text = " ".join(doc.split())
    hits = [m for m in _ENTRY.finditer(text) if all(n.strip() in names for n in re.split("[/,]", m.group(1)))]
    out = {}
    for m, nxt in zip(hits, [*hits[1:], None]):
        body = text[m.end() : nxt.start() if nxt is not None else len(text)].strip().rstrip(";").strip()
        for n in re.split("[/,]", m.group(1)):
            out[n.strip()] = body[:1].upper() + body[1:]
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def is_section(annotation: Any) -> bool:
    """True when a field of this type is a nested config section (a dataclass)."""
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def leaves(cls: type, prefix: str = "") -> list[Leaf]:
    """Every non-dataclass field of dataclass ``cls``, nested sections flattened to dotted paths."""
    out: list[Leaf] = []
    helps = field_help(cls)
    for f in dataclasses.fields(cls):
        annotation = _hints(cls)[f.name]
        path = f"{prefix}{f.name}"
        if is_section(annotation):
            out.extend(leaves(annotation, prefix=f"{path}."))
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(
            Leaf(
                path=path,
                type=annotation,
                default=default,
                help=helps.get(f.name, ""),
                on_resume=f.metadata.get("on_resume", KEEP),
                stage=f.metadata.get("stage") or path.split(".", 1)[0],
                choices=literal_choices(annotation),
            )
        )
    return out


def get_path(obj: Any, path: str) -> Any:
    """``obj.a.b`` for path ``"a.b"``."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_path(obj: Any, path: str, value: Any) -> None:
    """Set ``obj.a.b = value`` for path ``"a.b"``."""
    *parents, last = path.split(".")
    for part in parents:
        obj = getattr(obj, part)
    setattr(obj, last, value)


@dataclass
class Merged:
    """A resumed config and what the given values did.

    ignored: ``"keep"`` paths whose given value differs (the recorded one stays); applied:
    ``"apply"`` / ``"restart"`` paths whose value changed; restart: stage -> changed ``"restart"`` paths.
    """

    config: Any
    ignored: list[str] = dataclasses.field(default_factory=list)
    applied: list[str] = dataclasses.field(default_factory=list)
    restart: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def merge_resumed(recorded: Any, given: Mapping[str, Any]) -> Merged:
    """``recorded`` (a config dataclass, not modified) with the ``given`` values (dotted path ->
    value) merged by each field's resume rule (module docstring). KeyError for an unknown path."""
    rules = {leaf.path: leaf for leaf in leaves(type(recorded))}
    merged = Merged(copy.deepcopy(recorded))
    for path, value in given.items():
        leaf = rules[path]
        if get_path(merged.config, path) == value:
            continue
        if leaf.on_resume == KEEP:
            merged.ignored.append(path)
            continue
        set_path(merged.config, path, value)
        merged.applied.append(path)
        if leaf.on_resume == RESTART:
            merged.restart.setdefault(leaf.stage, []).append(path)
    return merged


def apply_given(config: Any, given: Mapping[str, Any]) -> None:
    """Set every given value (dotted path -> value) on ``config`` (a new run: no rules apply)."""
    for path, value in given.items():
        set_path(config, path, value)


def value_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` (e.g. read from JSON) does not fit the field type ``annotation``, or None.

    ``float`` accepts ints; ``bool`` is not an ``int``; ``Literal`` values must be listed;
    ``list[X]`` / ``tuple[X, ...]`` check their items.
    """
    choices = literal_choices(annotation)
    if choices is not None:
        if value is None and type(None) in typing.get_args(annotation):
            return None
        return None if value in choices else f"must be one of {', '.join(map(str, choices))}, got {value!r}"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        problems = [value_problem(a, value) for a in typing.get_args(annotation)]
        return None if any(p is None for p in problems) else next(p for p in problems if p)
    if annotation is type(None):
        return None if value is None else f"must be null, got {value!r}"
    if annotation is Any:
        return None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"must be a list, got {value!r}"
        items = [a for a in typing.get_args(annotation) if a is not Ellipsis] or [Any]
        for v in value:
            if (why := value_problem(items[0], v)) is not None:
                return why
        return None
    if origin is dict:
        return None if isinstance(value, dict) else f"must be a JSON object, got {value!r}"
    if annotation is bool:
        return None if isinstance(value, bool) else f"must be true or false, got {value!r}"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else f"must be an integer, got {value!r}"
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"must be a number, got {value!r}"
    if annotation is str:
        return None if isinstance(value, str) else f"must be text, got {value!r}"
    return None
