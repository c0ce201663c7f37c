"""Issue 24 (3): how long the app's writes wait beside an import (and beside an import plus a training).

A project gets the demo data (enough for a tiny training); then `conpet import-data` of a Few-NERD file
runs in another process (and, in the second scenario, `conpet train` too), while this process does what the
Label view does on the GUI thread: add an entity annotation, then delete it, every 50 ms, each one
transaction through the project's repositories. Reported: the number of writes; of the whole write and of its
wait for SQLite's write lock alone (the time its ``BEGIN IMMEDIATE`` took) the longest, the 99th
percentile, the median (ms) and how many took over 100 ms; the writes that failed ("database is locked");
whether the import and the training finished (a training's per-batch cache writes fail with "locked"
otherwise); how long the import's and the training's own write transactions held the lock (from the end of
their BEGIN IMMEDIATE to the end of their commit: the longest, the 99th percentile, how many over 100 ms,
in wall-clock time and in the thread's CPU time, which no other process's load changes);
the machine's load average (a write's whole time includes the CPU this process did not get, and a
transaction's hold includes its commit's fsync and any time its process was not scheduled).

    PYTHONPATH=<code root> python measure_write_stalls.py --data ../shared/data/fewnerd/inter_dev.txt \\
        --code-root <code root> --out result.json

``--code-root`` is the checkout whose code runs (all processes), so the same script measures the code
before and after the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = "import sys; from conpet import cli; sys.exit(cli.main(sys.argv[1:]))"
# Run in the import and training processes before the command: times each write transaction from the end of
# its BEGIN IMMEDIATE (the write lock taken) to the end of its commit, and writes a summary at exit.
HOLDS = """
import atexit, json, os, sys, threading, time
from contextlib import contextmanager
from sqlalchemy import event
from sqlalchemy.engine import Engine
import conpet.store.db as db
holds, cpu, local = [], [], threading.local()
@event.listens_for(Engine, "after_cursor_execute")
def _taken(conn, cursor, statement, *args):
    if statement.startswith("BEGIN IMMEDIATE"):
        local.t, local.c = time.perf_counter(), time.thread_time()
_transaction = db.Database.transaction
@contextmanager
def _timed(self):
    outer = getattr(self._local, "write", None) is None
    with _transaction(self) as s:
        yield s
    if outer and getattr(local, "t", None) is not None:
        holds.append((time.perf_counter() - local.t) * 1000)
        cpu.append((time.thread_time() - local.c) * 1000)
        local.t = None
db.Database.transaction = _timed
def _stats(values, prefix):
    v = sorted(values)
    return {prefix + "max_ms": round(v[-1], 1) if v else None,
            prefix + "p99_ms": round(v[int(0.99 * (len(v) - 1))], 1) if v else None,
            prefix + "over_100ms": sum(x > 100 for x in v)}
def _save():
    with open(os.environ["HOLDS_OUT"], "w") as f:
        json.dump({"transactions": len(holds), **_stats(holds, "wall_"), **_stats(cpu, "cpu_")}, f)
atexit.register(_save)
"""
DEMO = Path(__file__).resolve().parents[3] / "resources" / "demo" / "demo.jsonl"


def _command(code_root: Path, holds: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "HOLDS_OUT": str(holds)}
    return subprocess.Popen([sys.executable, "-c", HOLDS + CLI, *args], env=env, cwd=code_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lock_waits(engine) -> list[float]:
    """The time each ``BEGIN IMMEDIATE`` of ``engine`` took (ms): the wait for SQLite's write lock alone,
    apart from the write's own work, its fsync and the CPU this process did not get."""
    from sqlalchemy import event

    waits: list[float] = []

    def before(conn, cursor, statement, *args) -> None:
        conn.info["t_begin"] = time.perf_counter() if statement.startswith("BEGIN IMMEDIATE") else None

    def after(conn, cursor, statement, *args) -> None:
        t = conn.info.pop("t_begin", None)
        if t is not None:
            waits.append((time.perf_counter() - t) * 1000)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    return waits


def _summary(values: list[float], prefix: str) -> dict:
    values = sorted(values)
    if not values:
        return {}
    return {f"{prefix}max_ms": round(values[-1], 1), f"{prefix}p99_ms": round(values[int(0.99 * (len(values) - 1))], 1),
            f"{prefix}median_ms": round(statistics.median(values), 1),
            f"{prefix}over_100ms": sum(v > 100 for v in values)}


def _label_while(project, sentence_id: int, busy: list[subprocess.Popen]) -> dict:
    """The Label view's writes until every process in ``busy`` has ended."""
    durations: list[float] = []
    errors: list[str] = []
    waits = _lock_waits(project.db.engine)
    while any(p.poll() is None for p in busy):
        for write in ("add", "delete"):
            t0 = time.perf_counter()
            try:
                if write == "add":
                    ann = project.annotations.add_entity(sentence_id, 0, 4, "Label")
                else:
                    project.annotations.delete(ann.id)
            except Exception as exc:  # noqa: BLE001 - counted: the point of the measurement
                errors.append(f"{type(exc).__name__}: {exc}")
            durations.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)
    return {"writes": len(durations), **_summary(durations, "write_"), **_summary(waits, "lock_wait_"),
            "write_errors": len(errors), "first_errors": errors[:3], "load_average": os.getloadavg()[0]}


def _ended(p: subprocess.Popen, name: str, holds: Path) -> dict:
    out, err = p.communicate()
    held = json.loads(holds.read_text()) if holds.is_file() else {}
    return {f"{name}_rc": p.returncode, f"{name}_locked_errors": (out + err).lower().count("locked"),
            f"{name}_tail": (err.strip().splitlines() or [""])[-1][:300],
            **{f"{name}_lock_hold_{k}": v for k, v in held.items()}}


def scenario(code_root: Path, data: Path, scratch: Path, with_training: bool) -> dict:
    sys.path.insert(0, str(code_root))
    from conpet.store import Project
    from conpet.store.importer import import_file

    folder = scratch / ("train-and-import" if with_training else "import")
    with Project.create(folder) as p:
        import_file(p, DEMO)
        p.types.add("Label", "entity")
        sentence = p.sentences.add("Here the user labels a word while the import runs .")
    with Project.open(folder) as project:
        busy = []
        t0 = time.monotonic()
        if with_training:
            busy.append(_command(code_root, scratch / "train-holds.json", "train", str(folder), "--profile", "smoke", "--batch-limit", "10",
                                 "--epochs", "1", "--min-examples", "5", "--quiet", "--threads", "1"))
            time.sleep(8)  # the training is under way (backbone loaded) before the import starts
        busy.append(_command(code_root, folder.parent / f"{folder.name}-import-holds.json", "import-data",
                             str(folder), str(data), "--quiet"))
        result = {"scenario": "import + training" if with_training else "import", **_label_while(
            project, sentence.id, busy), "seconds": round(time.monotonic() - t0, 1)}
        result.update(_ended(busy[-1], "import", folder.parent / f"{folder.name}-import-holds.json"))
        if with_training:
            result.update(_ended(busy[0], "train", scratch / "train-holds.json"))
        result["integrity"] = project.integrity_check()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--code-root", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [scenario(args.code_root.resolve(), args.data.resolve(), Path(tmp), training)
                   for training in (False, True)]
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
