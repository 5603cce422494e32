"""Progress of long-running stages: a rich bar on a terminal, plain log lines elsewhere.

On a terminal every stage shows a rich bar (description, bar, n/total, elapsed, remaining, a
free ``info`` field). When stderr is not a terminal (a log file, a pipe, a batch job) the same
calls print one plain line per running task every ``GSSEG_PROGRESS_INTERVAL`` seconds (default
10), e.g. ``[gsseg] rgb 1200/3000 steps, 14.2 steps/s, eta 2m07s (loss 0.0412 ...)``, from a
background ticker, so a slow step (a 25 s mask view) does not silence the log.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

INTERVAL_ENV = "GSSEG_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0
RATE_WINDOW_S = 60.0  # the rate (and so the ETA) is measured over about the last minute
MAX_SAMPLES = 64  # (time, count) samples kept per task for that window
TICKER_MIN_WAIT_S = 0.05  # the background ticker never spins faster (tests set tiny intervals)


def progress_interval() -> float:
    """Seconds between plain progress lines: ``$GSSEG_PROGRESS_INTERVAL`` if set and positive, else 10."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value > 0 else DEFAULT_INTERVAL_S


def progress_bar(
    console: Console | None = None, transient: bool = False, interval: float | None = None
) -> Progress | PlainProgress:
    """A progress display for ``with progress_bar() as p``: a rich bar when the console is a
    terminal (or a notebook), else a :class:`PlainProgress` printing a line every ``interval``
    seconds (default :func:`progress_interval`).

    Use ``p.add_task("rgb", total=n, info="", unit="step")`` and ``p.update(task, advance=1,
    info=f"loss {loss:.3f}")``. Output goes to stderr so stdout stays parseable (``--json``).
    """
    console = console or Console(stderr=True)
    if not (console.is_terminal or console.is_jupyter):
        return PlainProgress(console.file, interval if interval is not None else progress_interval())
    return Progress(
        TextColumn("{task.description}", style="bold blue", markup=False),  # names from user files: no markup
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}", markup=False),
        console=console,
        transient=transient,
    )


def format_duration(seconds: float) -> str:
    """``7s``, ``2m07s``, ``1h05m``: a short human duration."""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    unit: str
    info: str
    start_time: float
    start_completed: float
    samples: list[tuple[float, float]] = field(default_factory=list)  # (time, completed) at each tick
    reported: bool = False  # a periodic line was printed for it
    finished: bool = False

    def rate(self, now: float) -> float | None:
        """Units per second over about the last RATE_WINDOW_S (the whole run when that saw none)."""
        recent = [s for s in self.samples if now - s[0] <= RATE_WINDOW_S]
        if recent and self.completed > recent[0][1] and now > recent[0][0]:
            return (self.completed - recent[0][1]) / (now - recent[0][0])
        done = self.completed - self.start_completed
        return done / (now - self.start_time) if done > 0 and now > self.start_time else None


class PlainProgress:
    """The part of rich's ``Progress`` API the stages use (``add_task``, ``update``, ``advance``,
    context manager), printed as plain lines to ``stream`` every ``interval`` seconds.

    Each running task gets one line per interval (checked at each ``update`` and by a background
    ticker between updates): ``[gsseg] DESC N/TOTAL UNITs, RATE, eta T
    (INFO)``; a task that was reported gets a last line when it completes (``done in T``) or
    when the display closes before it completes (``stopped at``). Tasks shorter than one
    interval print nothing.
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = float(interval)
        self.tasks: dict[TaskID, _Task] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick = time.monotonic()

    # rich Progress API -------------------------------------------------------------------
    def __enter__(self) -> PlainProgress:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick_loop, name="gsseg-progress", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            now = time.monotonic()
            for task in self.tasks.values():
                if task.reported and not task.finished:
                    task.finished = True
                    self._write(self._line(task, now, ending="stopped"))

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: float = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        now = time.monotonic()
        with self._lock:
            task_id = TaskID(len(self.tasks))
            self.tasks[task_id] = _Task(
                description=str(description),
                total=total,
                completed=float(completed),
                unit=str(fields.get("unit", "step")),
                info=str(fields.get("info", "")),
                start_time=now,
                start_completed=float(completed),
            )
        return task_id

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        with self._lock:
            task = self.tasks[task_id]
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = float(completed)
            if advance is not None:
                task.completed += float(advance)
            if description is not None:
                task.description = str(description)
            if "info" in fields:
                task.info = str(fields["info"])
            now = time.monotonic()
            if task.total is not None and task.completed >= task.total and not task.finished:
                task.finished = True
                if task.reported:
                    self._write(self._line(task, now, ending="done"))
            if now - self._last_tick >= self.interval:
                self._tick(now)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    # lines ---------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        """Background ticker: a line every ``interval`` even while one step takes longer."""
        while True:
            with self._lock:
                wait = self._last_tick + self.interval - time.monotonic()
            if self._stop.wait(max(wait, TICKER_MIN_WAIT_S)):
                return
            with self._lock:
                now = time.monotonic()
                if now - self._last_tick >= self.interval:
                    self._tick(now)

    def tick(self) -> None:
        """Print one line for every running task now."""
        with self._lock:
            self._tick(time.monotonic())

    def _tick(self, now: float) -> None:
        """One line per running task (called with the lock held; ``update`` and the ticker call it
        when ``interval`` has passed since the last lines)."""
        self._last_tick = now
        for task in self.tasks.values():
            if task.finished:
                continue
            self._write(self._line(task, now))
            task.reported = True
            recent = [s for s in task.samples[-MAX_SAMPLES:] if now - s[0] <= RATE_WINDOW_S]
            task.samples = recent + [(now, task.completed)]

    def _line(self, task: _Task, now: float, ending: str | None = None) -> str:
        """``[gsseg] rgb 1200/3000 steps, 14.2 steps/s, eta 2m07s (info)``."""
        done = _count(task.completed)
        count = f"{done}/{_count(task.total)}" if task.total is not None else done
        parts = [f"[gsseg] {task.description} {count} {_plural(task.unit)}"]
        rate = task.rate(now)
        if rate is not None and rate > 0:
            parts.append(f"{rate:.1f} {_plural(task.unit)}/s" if rate >= 1 else f"{1 / rate:.1f} s/{task.unit}")
        elapsed = format_duration(now - task.start_time)
        if ending == "done":
            parts.append(f"done in {elapsed}")
        elif ending == "stopped":
            parts.append(f"stopped after {elapsed}")
        elif rate and task.total is not None:
            parts.append(f"eta {format_duration(max(task.total - task.completed, 0) / rate)}")
        else:
            parts.append(f"{elapsed} so far")
        info = " ".join(task.info.split())
        return ", ".join(parts) + (f" ({info})" if info and ending is None else "")

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or file must not stop the stage
            pass


def _count(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _plural(unit: str) -> str:
    return unit if unit.endswith("s") else unit + "s"


class NullProgress:
    """Stand-in for a progress display when progress is off (``--quiet``): same calls, no output."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        return TaskID(0)

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None
