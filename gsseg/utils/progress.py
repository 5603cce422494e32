"""Rich progress bars with the columns every long-running gsseg stage shows."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None, transient: bool = False) -> Progress:
    """A progress bar: description, bar, n/total, elapsed, remaining, and a free ``info`` field.

    Use ``progress.add_task("rgb", total=n, info="")`` and ``progress.update(task, advance=1,
    info=f"loss {loss:.3f}")``. Output goes to stderr so stdout stays parseable (``--json``).
    """
    return Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console or Console(stderr=True),
        transient=transient,
    )
