"""Entry point of the ``gsseg`` console script."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from gsseg.cli import commands
from gsseg.errors import GssegError

app = typer.Typer(
    name="gsseg",
    help="Segment 3D Gaussian-splatting scenes from inconsistent 2D masks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors become one red line and exit code 1."""
    err = Console(stderr=True)
    try:
        app(args=argv, standalone_mode=True)
    except GssegError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: completed work is saved; re-run the same command to resume.")
        sys.exit(130)


if __name__ == "__main__":
    main()
