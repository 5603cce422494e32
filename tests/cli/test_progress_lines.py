"""Plain progress lines when output is not a terminal (issue 28): the ticker itself, every verb
that runs long (masks, train's two stages, segment, eval), and train's held-out PSNR and
short-schedule warning in ``RUN/rgb.json``."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from gsseg.utils.progress import (  # noqa: E402
    INTERVAL_ENV,
    PlainProgress,
    format_duration,
    progress_bar,
    progress_interval,
)
from tests.helpers.cli_fixtures import cli_exit_code  # noqa: E402
from tests.helpers.segment_fixtures import build_tiny_run  # noqa: E402

LINE = re.compile(
    r"^\[gsseg\] (?P<desc>.+?) (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+), "
    r"(?:(?P<rate>[\d.]+ \w+/s|[\d.]+ s/\w+), )?(?P<tail>eta \S+|done in \S+|stopped after \S+|\S+ so far)"
)


def lines_of(text: str, desc: str) -> list[re.Match]:
    return [m for m in map(LINE.match, text.splitlines()) if m and m["desc"] == desc]


def test_plain_lines_have_step_rate_and_eta():
    out = io.StringIO()
    with PlainProgress(out, interval=0.05) as p:
        task = p.add_task("rgb", total=20, info="", unit="step")
        for _ in range(20):
            time.sleep(0.01)
            p.update(task, advance=1, info="loss 0.1  psnr 20.0")
    found = lines_of(out.getvalue(), "rgb")
    assert len(found) >= 2, out.getvalue()
    running, last = found[:-1], found[-1]
    assert all(m["tail"].startswith("eta ") and m["unit"] == "steps" for m in running if m["rate"])
    assert [int(m["done"]) for m in running] == sorted(int(m["done"]) for m in running)
    assert all(int(m["total"]) == 20 for m in found)
    assert last["tail"].startswith("done in ") and int(last["done"]) == 20
    rate = float(running[-1]["rate"].split()[0])  # ~100 steps/s (10 ms a step), well above 10/s
    assert running[-1]["rate"].endswith("steps/s") and rate > 10
    assert "(loss 0.1 psnr 20.0)" in out.getvalue()  # the stage's own info, whitespace collapsed


def test_ticker_prints_while_one_step_is_slow():
    """A step longer than the interval (a 25 s mask view) still gets lines from the ticker."""
    out = io.StringIO()
    with PlainProgress(out, interval=0.1) as p:
        task = p.add_task("masks (watershed)", total=3, info="", unit="view")
        time.sleep(1.2)
        p.update(task, advance=1)
        time.sleep(0.1)
    found = lines_of(out.getvalue(), "masks (watershed)")
    assert len(found) >= 6, out.getvalue()
    assert found[0]["rate"] is None and found[0]["tail"].endswith(" so far")  # nothing done yet: no rate
    assert found[-1]["tail"].startswith("stopped after") and found[-1]["done"] == "1"
    assert "s/view" in found[-1]["rate"]  # over a second a view is shown as seconds per view
    assert out.getvalue().startswith("[gsseg] masks (watershed) 0/3 views")


def test_short_task_prints_nothing():
    out = io.StringIO()
    with PlainProgress(out, interval=30) as p:
        task = p.add_task("label maps", total=5, info="")
        for _ in range(5):
            p.update(task, advance=1)
    assert out.getvalue() == ""


def test_progress_bar_is_plain_only_off_a_terminal(monkeypatch):
    assert isinstance(progress_bar(Console(file=io.StringIO())), PlainProgress)
    assert not isinstance(progress_bar(Console(file=io.StringIO(), force_terminal=True)), PlainProgress)
    monkeypatch.setenv(INTERVAL_ENV, "0.5")
    assert progress_interval() == 0.5
    assert progress_bar(Console(file=io.StringIO())).interval == 0.5
    for bad in ("", "x", "-1", "0"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        assert progress_interval() == 10.0
    assert [format_duration(s) for s in (7, 127, 3900)] == ["7s", "2m07s", "1h05m"]


def test_train_piped_prints_lines_test_psnr_and_short_schedule_warning(tmp_path):
    """``gsseg train`` in a subprocess with stdout/stderr piped: rgb lines every interval, the
    test PSNR printed and in rgb.json, and one warning line for a run its time limit cut short."""
    from gsseg.synth import make_scene

    data = tmp_path / "data"
    make_scene(data, scene="tabletop", seed=0, width=32, height=24, views=4, test_views=1)
    run = tmp_path / "run"
    env = {**os.environ, INTERVAL_ENV: "0.2"}
    cmd = [sys.executable, "-m", "gsseg", "train", str(data), "--out", str(run)]
    cmd += ["--iters", "100000", "--time-limit", "3", "--stage", "rgb"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = lines_of(proc.stderr, "rgb")
    assert len(found) >= 3, proc.stderr  # 3 s at one line per 0.2 s
    assert all(int(m["total"]) == 100000 for m in found)
    assert found[-1]["tail"].startswith("stopped after")
    summary = json.loads((run / "rgb.json").read_text())
    assert summary["iters"] == 100000 and 0 < summary["steps"] < 50000
    assert set(summary["test_psnr_per_view"]) == {"test_000", "test_000_rot10"}
    assert 5.0 < summary["test_psnr"] < 60.0
    assert f"test PSNR {summary['test_psnr']:.2f} dB" in proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and f"after {summary['steps']} of its 100000 steps" in warnings[0]
    assert summary["warnings"] == [warnings[0].removeprefix("warning: ")]


def test_rgb_json_has_no_warning_when_the_schedule_completes(tmp_path):
    from gsseg.run.schedule import SHORT_SCHEDULE_FRACTION, schedule_warning

    assert schedule_warning(3000, 3000, 0.0) is None
    assert schedule_warning(int(SHORT_SCHEDULE_FRACTION * 3000), 3000, 600.0) is None
    line = schedule_warning(232, 3000, 600.0)
    assert line is not None and "232 of its 3000 steps (8%)" in line and "600 s" in line
    assert "\n" not in line


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return build_tiny_run(tmp_path_factory.mktemp("progress"))


def run_verb(argv: list[str], capsys, monkeypatch) -> str:
    """Run ``gsseg ARGV`` in-process with captured (non-terminal) output and a line at every step."""
    monkeypatch.setenv(INTERVAL_ENV, "0.000001")
    code = cli_exit_code(argv)
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_masks_segment_and_eval_print_lines(tiny_run, tmp_path, capsys, monkeypatch):
    cfg = json.loads((tiny_run / "config.json").read_text())
    data = Path(cfg["dataset"])
    err = run_verb(["masks", str(data), "--source", "simulated", "--force"], capsys, monkeypatch)
    masks = lines_of(err, "masks (simulated)")
    assert masks and masks[0]["unit"] == "views" and masks[-1]["tail"].startswith("done in")
    assert int(masks[-1]["done"]) == int(masks[-1]["total"]) >= 8
    err = run_verb(["segment", str(tiny_run), "--threshold", "0.5"], capsys, monkeypatch)
    assert lines_of(err, "label maps"), err
    err = run_verb(["eval", str(tiny_run), "--metric", "psnr"], capsys, monkeypatch)
    psnr = lines_of(err, "psnr")
    assert psnr and psnr[-1]["tail"].startswith("done in") and psnr[-1]["unit"] == "views"


def test_quiet_prints_no_lines(tiny_run, capsys, monkeypatch):
    data = Path(json.loads((tiny_run / "config.json").read_text())["dataset"])
    err = run_verb(["masks", str(data), "--source", "simulated", "--force", "--quiet"], capsys, monkeypatch)
    assert "[gsseg]" not in err
