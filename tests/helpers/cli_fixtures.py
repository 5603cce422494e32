"""Helper for tests that drive the Typer CLI in-process."""

from __future__ import annotations


def cli_exit_code(argv: list[str]) -> int:
    """Run ``gsseg ARGV`` in this process and return its exit code (0 when it returns normally)."""
    from gsseg.cli.app import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0
