"""Typer options generated from config dataclasses, so a default is written once (in the dataclass).

:func:`config_options` turns the fields of a (nested) config dataclass
(:func:`gsseg.utils.config_fields.leaves`) into :class:`ConfigOption` s: the flag is today's name
where one is given (``flags={"rgb.iters": "--iters"}``), else the dotted path with dashes
(``--rgb.lr.means``, ``--rgb.densify.grow-grad2d``); the help is the field's docstring; the
default shown is the dataclass default; ``Literal`` fields list their values and refuse others
with one :class:`GssegError` line; tuple fields take comma-separated numbers; ``ranges`` add a
:class:`~gsseg.cli.parsing.Range` checked before the verb runs (``cli/parsing.py``). One option
may set several fields (``share={"rgb.seed": ["features.seed"]}``).

:func:`with_config_options` adds the options to a verb: the verb receives ``given``, a
:class:`Given` holding only the values typed on the command line (dotted path -> value), so a
resumed run can tell a changed value from a default (``config_fields.merge_resumed``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gsseg.cli.parsing import Range, parse_numbers
from gsseg.errors import GssegError
from gsseg.utils.config_fields import Leaf, leaves

CONTEXT = "cfg_context"  # the Click context parameter the generated verb takes (to tell typed values from defaults)


@dataclass
class Given:
    """Values typed on the command line: dotted config path -> value, and the flag that gave each."""

    values: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)

    def under(self, prefix: str) -> dict[str, Any]:
        """The given values whose path starts with ``prefix`` (e.g. ``"contrastive."``), prefix removed."""
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}


@dataclass
class ConfigOption:
    """One command-line option that sets one or more config fields.

    targets: dotted paths it sets (each to the same value); defaults: label -> the dataclass
    default of each target (label: the target's section, or the objective); choices: allowed
    values (a ``Literal`` field's, or given); panel: the help section it is listed under.
    """

    flag: str
    leaf: Leaf
    targets: list[str]
    defaults: dict[str, Any]
    help: str = ""
    choices: tuple[Any, ...] | None = None
    range: Range | None = None
    panel: str | None = None
    hidden: bool = False
    short: str | None = None

    @property
    def param(self) -> str:
        """The Python parameter name Typer passes the value under."""
        return "cfg_" + self.flag.split("/")[0].lstrip("-").replace("-", "_").replace(".", "__")

    def _base_type(self) -> Any:
        t = self.leaf.type
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if typing.get_origin(t) in (typing.Union, types.UnionType) and len(args) == 1:
            t = args[0]
        return t

    def _kind(self) -> str:
        """How the text is read: bool | int | float | text | list (repeatable) | numbers (comma list)."""
        t = self._base_type()
        origin = typing.get_origin(t)
        if t is bool:
            return "bool"
        if t is int:
            return "int"
        if t is float:
            return "float"
        if origin in (list, tuple) and set(typing.get_args(t)) <= {int, float, Ellipsis}:
            return "numbers"
        if origin is list:
            return "list"
        return "text"

    def annotation(self) -> Any:
        """``Annotated[Optional[T], typer.Option(...)(, Range)]`` for the generated parameter."""
        kind = self._kind()
        python = {"bool": bool, "int": int, "float": float, "list": list[str]}.get(kind, str)
        decl = self.flag
        if kind == "bool" and "/" not in decl and self.param_default() is not False:
            decl = f"{decl}/--no-{decl[2:]}"  # a switch that is off by default is one flag
        metavar = None
        if self.choices:
            metavar = "[" + "|".join(str(c) for c in self.choices) + "]"
        elif kind == "numbers":
            metavar = "N,N,..."
        values = list(self.defaults.values())
        differ = any(v != values[0] for v in values)
        # a None default ("not set") is explained by the help text, not shown
        shown: bool | str = self.default_text() if differ else self.param_default() is not None
        info = typer.Option(
            decl,
            *([self.short] if self.short else []),
            help=self.help or self.leaf.help,
            show_default=shown,
            metavar=metavar,
            rich_help_panel=self.panel,
            hidden=self.hidden,
        )
        extras: list[Any] = [info] + ([self.range] if self.range is not None else [])
        return Annotated[tuple([Optional[python], *extras])]

    def param_default(self) -> Any:
        """The default Click shows: the dataclass default (comma text for tuples), or None when the
        targets' defaults differ or the default is None (help then shows :meth:`default_text`)."""
        values = list(self.defaults.values())
        if any(v != values[0] for v in values) or values[0] is None or self._kind() == "list":
            return None
        return _show(values[0]) if self._kind() in ("numbers", "text") else values[0]

    def default_text(self) -> str:
        """The default(s) as help shows them: ``3000``, or ``rgb 3000; field 1500`` when targets differ."""
        values = list(self.defaults.values())
        if all(v == values[0] for v in values):
            return _show(values[0])
        return "; ".join(f"{label} {_show(v)}" for label, v in self.defaults.items())

    def convert(self, value: Any) -> Any:
        """The typed value of what Click parsed; GssegError (one line, naming the flag) when it does not fit."""
        kind = self._kind()
        if kind == "numbers":
            numbers = parse_numbers(value, self.flag.split("/")[0])
            base = self._base_type()
            item_types = [a for a in typing.get_args(base) if a is not Ellipsis]
            if typing.get_origin(base) is tuple and Ellipsis not in typing.get_args(base):
                if len(numbers) != len(item_types):
                    raise GssegError(f"bad {self.flag} {value!r}: give {len(item_types)} comma-separated numbers")
            if item_types and item_types[0] is int:
                if not all(float(v).is_integer() for v in numbers):
                    raise GssegError(f"bad {self.flag} {value!r}: give whole numbers")
                ints = [int(v) for v in numbers]
                return ints if typing.get_origin(base) is list else tuple(ints)
            return numbers if typing.get_origin(base) is list else tuple(numbers)
        if kind == "list":
            return list(value)
        if self._base_type() is Path:
            return Path(value)
        if kind == "text" and self.choices is None and int in typing.get_args(self.leaf.type):
            return int(value) if str(value).lstrip("-").isdigit() else value  # e.g. str | int: a tree level
        if self.choices is not None and value not in self.choices:
            raise GssegError(
                f"unknown {self.flag.split('/')[0]} {value!r}; choose one of: {', '.join(map(str, self.choices))}"
            )
        return value


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ",".join(_show(v) for v in value) if value else "none"
    return str(value)


def _section(path: str) -> str:
    """The label of a default: the path's first section (``"rgb"`` of ``"rgb.iters"``)."""
    return path.split(".", 1)[0]


def default_flag(path: str) -> str:
    """``"rgb.lr.means_final_factor"`` -> ``"--rgb.lr.means-final-factor"``."""
    return "--" + path.replace("_", "-")


def config_options(
    cls: type,
    *,
    prefix: str = "",
    label: str | None = None,
    flags: Mapping[str, str] | None = None,
    share: Mapping[str, Sequence[str]] | None = None,
    skip: Iterable[str] = (),
    panels: Mapping[str, str] | None = None,
    ranges: Mapping[str, Range] | None = None,
    helps: Mapping[str, str] | None = None,
    short: Mapping[str, str] | None = None,
) -> list[ConfigOption]:
    """Options for every field of dataclass ``cls`` (nested sections flattened).

    Paths are relative to ``cls`` (``"rgb.iters"``) and, in the options' targets, prefixed with
    ``prefix``. flags: path -> flag (default :func:`default_flag` of ``prefix + path``); share:
    path -> more paths the same option sets (each keeps its own default); skip: paths set by
    hand-written options (not generated); panels: path prefix -> help section (longest match);
    ranges: path -> Range; helps: path -> help text replacing the docstring; short: path -> a
    one-letter alias (``-s``); label: the default's label (default: the path's first section).
    """
    flags, share, panels, ranges, helps = flags or {}, share or {}, panels or {}, ranges or {}, helps or {}
    by_path = {leaf.path: leaf for leaf in leaves(cls)}
    shared = {p for targets in share.values() for p in targets}
    skipped = set(skip)
    out = []
    for path, leaf in by_path.items():
        if path in skipped or path in shared:
            continue
        if typing.get_origin(leaf.type) is dict:
            raise TypeError(f"{cls.__name__}.{path}: a dict field needs a hand-written option (pass it in skip)")
        paths = [path, *share.get(path, [])]
        panel = max((p for p in panels if path == p or path.startswith(p)), key=len, default=None)
        out.append(
            ConfigOption(
                flag=flags.get(path, default_flag(prefix + path)),
                leaf=leaf,
                targets=[prefix + p for p in paths],
                defaults={label or _section(prefix + p): by_path[p].default for p in paths},
                help=helps.get(path, ""),
                choices=leaf.choices,
                range=ranges.get(path),
                panel=panels.get(panel) if panel is not None else None,
                short=(short or {}).get(path),
            )
        )
    return out


def merge_same_flags(options: Iterable[ConfigOption]) -> list[ConfigOption]:
    """One option per flag: options with the same flag (e.g. ``--feature-dim`` of every objective)
    set all their targets; the defaults keep each label."""
    merged: dict[str, ConfigOption] = {}
    for o in options:
        if o.flag not in merged:
            merged[o.flag] = dataclasses.replace(o, targets=list(o.targets), defaults=dict(o.defaults))
            continue
        m = merged[o.flag]
        m.targets += o.targets
        m.defaults.update(o.defaults)
        if m.choices is not None and o.choices is not None:
            m.choices = tuple(dict.fromkeys([*m.choices, *o.choices]))
    return list(merged.values())


def with_config_options(options: Sequence[ConfigOption]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the verb's own parameters plus one generated option per :class:`ConfigOption`;
    the verb takes a keyword ``given`` (:class:`Given`) instead of the generated parameters."""
    names = [o.param for o in options]
    if len(set(names)) != len(names):
        raise ValueError(f"two config options share a name: {sorted(n for n in names if names.count(n) > 1)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "given"]
        extra = [inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
        extra += [
            inspect.Parameter(
                o.param, inspect.Parameter.KEYWORD_ONLY, default=o.param_default(), annotation=o.annotation()
            )
            for o in options
        ]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            ctx = kwargs.pop(CONTEXT)
            given = Given()
            for o in options:
                value = kwargs.pop(o.param)
                source = ctx.get_parameter_source(o.param)  # typer ships its own Click: compare by name
                if getattr(source, "name", None) != "COMMANDLINE":
                    continue  # a default: not given
                value = o.convert(value)
                for target in o.targets:
                    given.values[target] = value
                    given.flags[target] = o.flag.split("/")[0]
            return fn(*args, **kwargs, given=given)

        params = [*own, *extra]
        run.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": sig.return_annotation}
        del run.__wrapped__  # Typer and the checks read __signature__
        return run

    return decorate
