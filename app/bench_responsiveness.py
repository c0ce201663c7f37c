"""How responsive the window stays while a model trains: `python -m app.bench_responsiveness`.

Opens the real main window (offscreen unless a display is given), waits for the engine's libraries to
finish loading in the background (the app starts that at launch), starts a training run through the
same worker the Train button uses, and meanwhile measures the GUI event loop: a timer that should fire
every 5 ms records each gap; a stall is a gap minus the interval. Prints the longest stall, the 99th
percentile and the run's time. The target is a longest stall under 100 ms.

By default it trains task 1 of a fresh copy of the demo project (entity types Person, City, Company)
on minilm with the quick-try budget capped at --batch-limit batches per stage.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench_responsiveness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=None, help="a project folder (default: a fresh demo copy)")
    parser.add_argument("--types", default="Person,City,Company", help="the new task's types (comma-separated)")
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--method", default="dynamic", choices=("dynamic", "dynamic-typesel", "static"))
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--batch-limit", type=int, default=40, help="batches per training stage")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--interval-ms", type=int, default=5, help="the probe timer's interval")
    parser.add_argument("--target-ms", type=float, default=100.0)
    parser.add_argument("--show", type=int, default=0, help="list the N longest stalls with what ran then")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tmp = tempfile.TemporaryDirectory(prefix="conpet-bench-")
    os.environ.setdefault("CONPET_HOME", tmp.name)

    from PySide6.QtCore import QElapsedTimer, QTimer

    from app import dialogs, jobs
    from app.main import make_application
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.views.train_dialog import TrainChoice

    app = make_application(sys.argv[:1])
    dialogs.answer_without_asking()
    folder = args.project
    if folder is None:
        folder = Path(tmp.name) / "Demo"
        jobs.create_demo_project(folder)
    window = MainWindow(AppSettings(Path(tmp.name) / "settings.ini"))
    window.resize(1280, 800)
    window.show()
    if not window.open_project(folder):
        print(f"could not open {folder}", file=sys.stderr)
        return 2
    window.show_tab("Training")
    # as in the app: the engine's libraries load in the background right after the window appears
    t_pre = time.monotonic()
    while window.preload_worker is not None and window.host.is_busy("preload"):
        app.processEvents()
        time.sleep(0.01)
    preload_s = time.monotonic() - t_pre
    names = [n.strip() for n in args.types.split(",") if n.strip()]
    types = [t for t in window.model.types() if t.name in names]
    from conpet.model.backbones import default_device

    device = args.device or default_device()
    choice = TrainChoice(tuple(t.id for t in types), tuple(t.name for t in types), args.method, args.backbone,
                         device, "smoke", 1)

    gaps: list[float] = []
    when: list[tuple[float, str]] = []  # (seconds since start, the job's stage then) per tick
    stage = {"now": "starting"}
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(args.interval_ms)

    def tick() -> None:
        gaps.append(clock.nsecsElapsed() / 1e6)
        when.append((time.monotonic() - t0, stage["now"]))
        clock.restart()

    probe.timeout.connect(tick)
    outcome: dict[str, object] = {}

    def ended(kind: str, result: str, payload: object) -> None:
        if kind == "train":
            outcome.update(result=result, payload=payload, t1=time.monotonic())
            app.quit()

    window.controller.jobEnded.connect(ended)
    t0 = time.monotonic()
    clock.start()
    probe.start()
    worker = window.views["Training"].start(choice, overrides={"batch_limit": args.batch_limit,
                                                               "max_epochs": args.epochs})
    worker.event.connect(lambda e: stage.update(now=f"{e.stage}: {e.message}"))
    app.exec()
    probe.stop()
    window.close()

    stalls = sorted(max(0.0, g - args.interval_ms) for g in gaps[1:])
    if not stalls:
        print("no timer ticks recorded", file=sys.stderr)
        return 2
    longest = stalls[-1]
    p99 = stalls[int(0.99 * (len(stalls) - 1))]
    seconds = float(outcome.get("t1", time.monotonic())) - t0
    print(f"engine libraries preloaded in the background at start-up in {preload_s:.1f} s (before the run)")
    print(f"training run: {outcome.get('result')} in {seconds:.1f} s ({args.backbone} on {device}, "
          f"{args.method}, types {', '.join(names)}, <= {args.batch_limit} batches per stage)")
    print(f"event loop: {len(gaps)} ticks of {args.interval_ms} ms; longest stall {longest:.1f} ms, "
          f"99th percentile {p99:.1f} ms, median gap {statistics.median(gaps):.1f} ms")
    worst = sorted(range(1, len(gaps)), key=lambda i: -gaps[i])[:args.show]
    for i in sorted(worst):
        print(f"  stall {gaps[i] - args.interval_ms:7.1f} ms at {when[i][0]:6.1f} s, after: {when[i - 1][1]}")
    ok = longest < args.target_ms
    print(f"target: longest stall < {args.target_ms:.0f} ms: {'met' if ok else 'MISSED'}")
    tmp.cleanup()
    return 0 if outcome.get("result") == "finished" and ok else 1


if __name__ == "__main__":
    sys.exit(main())
