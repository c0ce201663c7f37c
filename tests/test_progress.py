"""The one terminal progress bar (conpet.core.progress_bar): redrawn in place with an ETA on a terminal, a few
whole lines elsewhere, thinned by the progress fraction (the same events give the same output)."""

from __future__ import annotations

import io

from conpet.core.progress_bar import TerminalProgress
from conpet.core.protocols import ProgressEvent


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def feed(bar: TerminalProgress, clock: Clock, n: int, stage: str = "expert", seconds_each: float = 1.0) -> None:
    for i in range(n + 1):
        bar.report(ProgressEvent(i / n, f"batch {i}/{n}", stage))
        clock.now += seconds_each


def test_on_a_terminal_one_line_is_redrawn_with_an_eta():
    stream, clock = FakeTTY(), Clock()
    bar = TerminalProgress(stream, width=10, label="train ", clock=clock)
    feed(bar, clock, 200)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 201 and text.count("\n") == 1 and text.endswith("\n")  # one line, redrawn
    frames = [f.rstrip() for f in text.split("\r") if f]
    # a quarter done after 50 s: 150 s to go, from the bar's own clock (the events bring no ETA)
    assert frames[50] == "train [##........]  25.0% expert: batch 50/200 ETA 2:30"
    assert frames[-1] == "train [##########] 100.0% expert: batch 200/200"


def test_elsewhere_whole_lines_one_per_tenth():
    stream, clock = io.StringIO(), Clock()
    bar = TerminalProgress(stream, width=10, clock=clock)
    feed(bar, clock, 1000, seconds_each=0.0)  # the clock does not decide: 1000 events in no time
    bar.report(ProgressEvent(1.0, "stored", "expert"))  # 100 % again: no second final line
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split("]")[1].split("%")[0].strip() for line in lines] == [f"{10 * k}.0" for k in range(11)]
    assert lines[5].endswith("expert: batch 500/1000")


def test_a_new_stage_and_a_milestone_always_get_a_line():
    stream, clock = io.StringIO(), Clock()
    bar = TerminalProgress(stream, width=4, clock=clock, milestone=lambda e: bool(e.metrics))
    bar.report(ProgressEvent(0.30, "loading", "loading"))
    bar.report(ProgressEvent(0.31, "batch 1", "expert"))  # another stage
    bar.report(ProgressEvent(0.32, "batch 2", "expert"))  # same tenth, same stage: thinned out
    bar.report(ProgressEvent(0.33, "task 1/2 done: W 50.0%", "expert", None, {"whole_acc": 0.5}))
    lines = stream.getvalue().splitlines()
    assert [line.split("% ")[1] for line in lines] == ["loading", "expert: batch 1", "expert: task 1/2 done: W 50.0%"]


def test_a_milestone_on_a_terminal_stays_above_the_bar_and_quiet_shows_nothing():
    stream, clock = FakeTTY(), Clock()
    bar = TerminalProgress(stream, width=4, clock=clock, milestone=lambda e: bool(e.metrics))
    bar.report(ProgressEvent(0.5, "batch", "expert"))
    bar.report(ProgressEvent(0.5, "step done", "expert", None, {"whole_acc": 1.0}))
    bar.report(ProgressEvent(0.6, "batch", "expert"))
    bar.close()
    assert stream.getvalue().split("\n")[1] == "[##..]  50.0% expert: step done"
    quiet = io.StringIO()
    silent = TerminalProgress(quiet, quiet=True)
    silent.report(ProgressEvent(1.0, "done", "x"))
    silent.write_line("result")
    silent.close()
    assert quiet.getvalue() == ""
