"""Click queries: a pixel in a view (``STEM:X,Y``) or a 3D point (``X,Y,Z``).

Pixel coordinates are in the view's image as the run loads it (``downscale`` applied): x to
the right, y down, pixel (0,0) is the top-left pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gsseg.errors import GssegError


@dataclass(frozen=True)
class Click:
    """One positive or negative query.

    Either ``view`` with pixel ``x``, ``y`` (a click in an image) or ``point`` (a 3D position in
    world coordinates); ``positive`` False makes it a negative click.
    """

    view: str | None = None
    x: float | None = None
    y: float | None = None
    point: tuple[float, float, float] | None = None
    positive: bool = True

    def __post_init__(self) -> None:
        in_view = self.view is not None and self.x is not None and self.y is not None
        if in_view == (self.point is not None):
            raise ValueError("a Click needs either view, x and y, or a 3D point")

    @property
    def is_point(self) -> bool:
        return self.point is not None

    def pixel(self) -> tuple[str, float, float]:
        """(view, x, y) of a click in an image; ValueError for a 3D-point click."""
        if self.view is None or self.x is None or self.y is None:
            raise ValueError(f"click {self} is a 3D point, not a pixel of a view")
        return self.view, self.x, self.y

    def __str__(self) -> str:
        sign = "" if self.positive else "-"
        if self.point is not None:
            return sign + ",".join(f"{v:g}" for v in self.point)
        return f"{sign}{self.view}:{self.x:g},{self.y:g}"


def _numbers(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise GssegError(f"click {what!r}: expected numbers separated by commas") from None
    if not all(math.isfinite(v) for v in values):
        raise GssegError(f"click {what!r}: coordinates must be finite numbers (no nan or inf)")
    return values


def parse_click(text: str, positive: bool = True) -> Click:
    """``STEM:X,Y`` (pixel of a view) or ``X,Y,Z`` (3D point) -> Click; GssegError otherwise."""
    text = text.strip()
    if ":" in text:
        view, _, coords = text.rpartition(":")
        values = _numbers(coords, text)
        if not view or len(values) != 2:
            raise GssegError(f"click {text!r}: expected STEM:X,Y (pixel X,Y in view STEM) or X,Y,Z (a 3D point)")
        return Click(view=view, x=values[0], y=values[1], positive=positive)
    values = _numbers(text, text)
    if len(values) != 3:
        raise GssegError(f"click {text!r}: expected STEM:X,Y (pixel X,Y in view STEM) or X,Y,Z (a 3D point)")
    return Click(point=(values[0], values[1], values[2]), positive=positive)


def parse_clicks(positives: list[str] | None, negatives: list[str] | None = None) -> list[Click]:
    """Positive then negative clicks from their command-line texts."""
    return [parse_click(t, True) for t in positives or []] + [parse_click(t, False) for t in negatives or []]
