"""The consoles every verb prints through: user text (paths, view names, messages) is never read
as Rich markup or ``:emoji:`` codes, so ``d[red]e.png`` prints as typed and ``x[/y]`` cannot
crash a print. Styles are given as :class:`rich.text.Text` parts or ``style=``, never as tags."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def plain_console(stderr: bool = False) -> Console:
    """A console that prints strings literally (no markup, no emoji codes, no highlighting)."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """``styled(("note:", "yellow"), " ", text)``: a line whose styled parts are (text, style) pairs."""
    return Text.assemble(*parts)
