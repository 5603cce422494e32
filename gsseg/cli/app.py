"""Entry point of the ``gsseg`` console script."""

from __future__ import annotations

import errno
import importlib
import pkgutil
import sys

import typer
from rich.console import Console
from rich.text import Text

from gsseg.cli import commands
from gsseg.cli.parsing import checked
from gsseg.errors import GssegError, Interrupted

app = typer.Typer(
    name="gsseg",
    help="Segment 3D Gaussian-splatting scenes from inconsistent 2D masks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain text: no Rich markup or :emoji: codes read into them
)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)
    for command in app.registered_commands:  # numbers checked, Ctrl-C reported (cli/parsing.py)
        if command.callback is not None:
            command.callback = checked(command.callback)


_register_commands()

DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
ACCESS_ERRORS = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted", errno.EROFS: "read-only"}


def error_line(e: BaseException) -> str | None:
    """The one line a user-facing failure prints (without ``error:``), or None for a programming error."""
    from PIL import Image

    if isinstance(e, GssegError):
        return str(e)
    if isinstance(e, OSError) and e.errno in DISK_ERRORS:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{DISK_ERRORS[e.errno]}; free some space and re-run (no half-written file was kept)"
    if isinstance(e, OSError) and e.errno in ACCESS_ERRORS:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{ACCESS_ERRORS[e.errno]}; choose a folder you can write to"
    if isinstance(e, RuntimeError) and "PytorchStreamWriter failed" in str(e):  # torch.save on a full disk
        return f"writing a file failed ({str(e).splitlines()[0]}); is the disk full? (no half-written file was kept)"
    if isinstance(e, Image.DecompressionBombError):
        return f"an image is too large to read safely ({e})"
    if isinstance(e, RecursionError):
        return "an input file is nested too deeply to read (e.g. JSON nested thousands of levels)"
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one red line and exit code 1, Ctrl-C one line and 130."""
    err = Console(stderr=True, markup=False, emoji=False, highlight=False)
    try:
        app(args=argv, standalone_mode=True)
    except Interrupted:
        err.print(
            Text.assemble(("interrupted", "yellow"), ": completed work is saved; re-run the same command to resume.")
        )
        sys.exit(130)
    except Exception as e:
        line = error_line(e)
        if line is None:
            raise
        err.print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)  # Text: never read as markup
        sys.exit(1)


if __name__ == "__main__":
    main()
