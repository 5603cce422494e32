"""Validated command-line values: every verb's numbers, clicks and threshold ranges.

Every verb is wrapped by :func:`checked` when it is registered (``cli/app.py``), so before a
verb runs:

- every ``float`` argument (and every element of a ``list[float]``) is finite;
- every ``int`` argument fits a signed 64-bit integer;
- an argument annotated with a :class:`Range` (``Annotated[float, typer.Option(...), Range(gt=0)]``)
  lies in it.

A violation is one :class:`GssegError` line naming the option (``--feature-lr: nan is not a
finite number``), raised before any file is read or written. Texts that hold numbers (clicks,
``A:B:STEP`` ranges, ``--set KEY=VALUE``) are parsed by the functions below with the same rules.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import typing
from dataclasses import dataclass
from typing import Any, Callable

from gsseg.errors import GssegError, Interrupted

INT64 = 2**63
SEED_MAX = 2**32 - 1
MAX_CUTS = 256  # hierarchy cuts one `gsseg segment` may ask for (each writes a label map per view)


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric option (any bound may be omitted)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is outside the range, or None."""
        lo = "" if self.gt is None and self.ge is None else f"{'>' if self.gt is not None else '>='} {_show(self._lo)}"
        hi = "" if self.lt is None and self.le is None else f"{'<' if self.lt is not None else '<='} {_show(self._hi)}"
        bad = (
            (self.gt is not None and not value > self.gt)
            or (self.ge is not None and not value >= self.ge)
            or (self.lt is not None and not value < self.lt)
            or (self.le is not None and not value <= self.le)
        )
        if not bad:
            return None
        return "must be " + (" and ".join(b for b in (lo, hi) if b)) + f", got {_show(value)}"

    @property
    def _lo(self) -> float:
        return float(self.gt if self.gt is not None else self.ge)  # type: ignore[arg-type]

    @property
    def _hi(self) -> float:
        return float(self.lt if self.lt is not None else self.le)  # type: ignore[arg-type]


def _show(v: float) -> str:
    """``4294967295`` rather than ``4.29497e+09`` for whole numbers; ``%g`` otherwise."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


SEED = Range(ge=0, le=SEED_MAX)
POSITIVE = Range(gt=0)
COUNT = Range(ge=1)
NON_NEGATIVE = Range(ge=0)
UNIT = Range(ge=0, le=1)
SIDE = Range(ge=8, le=16384)  # image side of a built-in scene, in pixels


def check_number(label: str, value: Any, rng: Range | None = None) -> None:
    """GssegError unless ``value`` (a bool, int or float) is finite, fits int64 and lies in ``rng``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise GssegError(f"{label}: {value} is not a finite number")
    if isinstance(value, int) and not -INT64 <= value < INT64:
        raise GssegError(f"{label}: {value} is out of range (more than 64 bits)")
    if rng is not None and (why := rng.problem(value)) is not None:
        raise GssegError(f"{label}: {why}")


def parse_number(text: str, label: str, rng: Range | None = None) -> float:
    """A finite float from ``text`` (GssegError naming ``label`` otherwise), checked against ``rng``."""
    try:
        value = float(text)
    except (ValueError, OverflowError):
        raise GssegError(f"{label}: {text.strip()!r} is not a number") from None
    check_number(label, value, rng)
    return value


def parse_numbers(text: str, label: str) -> list[float]:
    """``"1.5,2,-3"`` -> [1.5, 2.0, -3.0]: comma-separated finite floats."""
    return [parse_number(v, label) for v in text.split(",")]


def threshold_range(text: str, label: str = "--thresholds") -> list[float]:
    """``A:B:STEP`` -> [A, A+STEP, ..., <= B] with 0 <= A <= B <= 1, STEP > 0 and at most
    :data:`MAX_CUTS` values (a tiny STEP is refused before any work, not run for hours)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise GssegError(f"{label} {text!r}: expected A:B:STEP, e.g. 0.1:0.5:0.1")
    a, b, step = (parse_number(v, f"{label} {text!r}") for v in parts)
    for v in (a, b):
        check_number(f"{label} {text!r}", v, UNIT)
    if step <= 0 or b < a:
        raise GssegError(f"{label} {text!r}: need STEP > 0 and B >= A")
    n = int(math.floor((b - a) / step + 1e-9)) + 1
    if n > MAX_CUTS:
        raise GssegError(f"{label} {text!r}: asks for {n:,} cuts; at most {MAX_CUTS} per run (use a larger STEP)")
    return [round(a + i * step, 6) for i in range(n)]


def json_setting(item: str) -> tuple[str, Any]:
    """``--set KEY=VALUE`` -> (KEY, VALUE parsed as JSON when possible, else the text); numbers
    in VALUE must be finite."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise GssegError(f"bad --set {item!r}: use KEY=VALUE, e.g. --set level_decay=0.2")
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a plain word, e.g. --set mode=fast
    except (ValueError, RecursionError):  # a 5000-digit integer, or nesting thousands deep
        raise GssegError(f"--set {key.strip()}: value too long or nested too deeply") from None
    for v in _leaves(parsed):
        check_number(f"--set {key.strip()}", v)
    return key.strip(), parsed


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _leaves(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _leaves(v)]
    return [obj]


# ------------------------------------------------------------------------------ verb wrapper
def _option_label(name: str, metadata: tuple[Any, ...]) -> str:
    """The option's longest ``--name`` (as the user typed it), or the argument's name in capitals."""
    import typer.models

    for m in metadata:
        if isinstance(m, typer.models.ArgumentInfo):
            return name.upper()
        if isinstance(m, typer.models.OptionInfo):  # in Annotated[...], the first name sits in `default`
            decls = [d for d in (m.default, *(m.param_decls or ())) if isinstance(d, str) and d.startswith("--")]
            if decls:
                return max(decls, key=len).split("/")[0]
    return "--" + name.replace("_", "-")


def _check_arguments(fn: Callable[..., Any]) -> Callable[[dict[str, Any]], None]:
    hints = typing.get_type_hints(fn, include_extras=True)
    rules: dict[str, tuple[str, Range | None]] = {}
    for name in inspect.signature(fn).parameters:
        hint = hints.get(name)
        metadata = getattr(hint, "__metadata__", ())
        rng = next((m for m in metadata if isinstance(m, Range)), None)
        rules[name] = (_option_label(name, metadata), rng)

    def check(arguments: dict[str, Any]) -> None:
        for name, value in arguments.items():
            label, rng = rules.get(name, (name, None))
            for v in value if isinstance(value, (list, tuple)) else [value]:
                check_number(label, v, rng)

    return check


def checked(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` with its numeric arguments checked first (see the module docstring), and Ctrl-C
    raised as :class:`Interrupted` (Typer would otherwise turn it into a silent exit 130)."""
    check = _check_arguments(fn)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        check(bound.arguments)
        try:
            fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return run
