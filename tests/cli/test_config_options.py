"""Options generated from config dataclasses (gsseg/cli/config_options.py) and `gsseg train --help`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import pytest
import typer
from typer.testing import CliRunner

from gsseg.cli.config_options import Given, config_options, with_config_options
from gsseg.errors import GssegError


@dataclass
class Inner:
    """A nested section."""

    rate: float = 0.25
    """How fast."""
    sizes: tuple[int, ...] = (2, 4)
    """Sizes, comma-separated."""


@dataclass
class Outer:
    """steps: optimisation steps; mode: how to run."""

    steps: int = 300
    mode: Literal["fast", "exact"] = "fast"
    on: bool = True
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5)
    inner: Inner = field(default_factory=Inner)
    label: str | None = field(default=None, metadata={"help": "A name from metadata."})


def _app(seen: list[Given]) -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None)
    options = config_options(Outer, flags={"steps": "--iters"})

    @with_config_options(options)
    def verb(name: str = "x", *, given: Given) -> None:
        seen.append(given)

    app.command("verb")(verb)
    app.command("other")(lambda: None)
    return app


def test_help_lists_every_field_with_its_docstring_and_dataclass_default():
    result = CliRunner().invoke(_app([]), ["verb", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    for flag, help_text, default in [
        ("--iters", "Optimisation steps", "300"),  # class-docstring entry, today's flag name
        ("--mode [fast|exact]", "How to run", "fast"),  # Literal -> choices
        ("--inner.rate", "How fast.", "0.25"),  # attribute docstring of a nested section
        ("--inner.sizes", "Sizes, comma-separated.", "2,4"),
        ("--colour", "", "0.5,0.5,0.5"),
    ]:
        assert re.search(
            re.escape(flag) + r"(?![\w.-]).*?" + re.escape(help_text) + r".*?\[default: " + re.escape(default), text
        )
    assert text.count("--on / --no-on") == 1
    assert re.search(r"--label <str> A name from metadata\. --", text)  # a None default: not shown


def test_only_typed_values_are_given_and_converted():
    seen: list[Given] = []
    app = _app(seen)
    assert CliRunner().invoke(app, ["verb"]).exit_code == 0
    assert seen[-1].values == {}  # defaults are not "given": a resumed run keeps its recorded values
    args = ["verb", "--iters", "300", "--mode", "exact", "--no-on", "--colour", "1,0,0.5", "--inner.sizes", "8,16"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert seen[-1].values == {
        "steps": 300,  # typed, even though it equals the default
        "mode": "exact",
        "on": False,
        "colour": (1.0, 0.0, 0.5),
        "inner.sizes": (8, 16),
    }
    assert seen[-1].flags["steps"] == "--iters"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--mode", "slow"], "unknown --mode 'slow'; choose one of: fast, exact"),
        (["--colour", "1,0"], "bad --colour '1,0': give 3 comma-separated numbers"),
        (["--inner.sizes", "2.5"], "bad --inner.sizes '2.5': give whole numbers"),
        (["--inner.rate", "fast"], None),
    ],
)
def test_bad_values_are_one_gsseg_error_line(args, message):
    result = CliRunner().invoke(_app([]), ["verb", *args])
    if message is None:  # not a number at all: Click's usage error
        assert result.exit_code == 2
        return
    assert isinstance(result.exception, GssegError) and str(result.exception) == message


def test_shared_option_sets_every_target_and_shows_each_default():
    options = config_options(Outer, share={"inner.rate": ["steps"]})
    (rate,) = [o for o in options if o.flag == "--inner.rate"]
    assert rate.targets == ["inner.rate", "steps"] and rate.default_text() == "inner 0.25; steps 300"
    assert not any(o.flag == "--steps" for o in options)  # listed once, under the sharing option
