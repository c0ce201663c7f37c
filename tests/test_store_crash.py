"""Crash safety: a child process killed with SIGKILL mid-import and mid-training leaves a project that
opens, passes integrity_check, holds every committed annotation, and shows the run as interrupted."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conpet.store import Project

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

ROOT = Path(__file__).resolve().parent.parent


def _child(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _read_until(proc: subprocess.Popen, predicate, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if predicate(lines):
            return lines
    proc.kill()
    raise AssertionError(f"child did not get there: {lines[-5:]} {proc.stderr.read()[-2000:]}")


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)  # reaped: its pid no longer names a live process
    assert proc.returncode == -signal.SIGKILL


def _check_sound(folder: Path) -> None:
    with sqlite3.connect(folder / "project.sqlite") as con:  # before any recovery by our code
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


IMPORTER = """
    import sys, time
    from conpet.store import Project
    from conpet.store.importer import import_file
    folder, path, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
    project = Project.open(folder)
    said = False
    def progress(fraction, message):
        global said
        if message.startswith("written") and not said:
            said = True
            print("WRITING", flush=True)
            time.sleep(pause)  # some chunks committed, the rest not written: the parent kills us here
    import_file(project, path, progress=progress)
    print("COMMITTED", flush=True)
    time.sleep(60)
"""


def test_kill_mid_import_leaves_whole_sentences_that_a_re_import_completes(tmp_path):
    """The importer commits 200 sentences at a time (issue 24: a short write lock), so a kill half way leaves
    a part of the file: whole sentences, each with all its annotations, and everything committed before."""
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        p.types.add("person")
        s = p.sentences.add("Ada Lovelace was born in London .")
        kept = p.annotations.add_entity(s.id, 0, 12, "person")
    big = tmp_path / "big.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        for i in range(12_000):
            f.write(json.dumps({"text": f"Person {i} met person {i + 1} .",
                                "entities": [{"start": 0, "end": 6 + len(str(i)), "type": "person"}]}) + "\n")
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps({"text": "Grace Hopper lived in New York .",
                                 "entities": [{"start": 0, "end": 12, "type": "person"}]}) + "\n")

    # a committed import survives the kill that follows it
    proc = _child(IMPORTER, str(folder), str(small), "0")
    _read_until(proc, lambda lines: "COMMITTED" in lines)
    _kill(proc)
    # an import killed half way leaves whole sentences of its file
    proc = _child(IMPORTER, str(folder), str(big), "30")
    _read_until(proc, lambda lines: "WRITING" in lines)
    time.sleep(0.2)
    _kill(proc)

    _check_sound(folder)
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"
        assert p.annotations.get(kept.id).status == "gold"
        assert p.sentences.by_text("Grace Hopper lived in New York .") is not None
        partial = p.sentences.count() - 2
        assert 0 < partial < 12_000 and p.annotations.count() == 2 + partial  # each sentence with its mention
        # and importing the same file again adds exactly the rest
        from conpet.store.importer import import_file

        report = import_file(p, big)
        assert report.added_annotations == 12_000 - partial and report.duplicates_skipped == partial


TRAINER = """
    import sys
    import numpy as np
    from conpet.store import Project
    project = Project.open(sys.argv[1])
    run = project.runs.start("dynamic", config={"steps": 100000})
    print("RUN", run.id, flush=True)
    sentence_ids = [int(x) for x in sys.argv[2].split(",")]
    step = 0
    while True:
        step += 1
        project.runs.update_progress(run.id, step / 100000, f"step {step}", stage="expert",
                                     metrics={"loss": 1.0 / step}, step=step)
        project.logit_cache.put_many({(f"ex{step}-{j}", "expert-1", 1): np.full(8, step, np.float32)
                                      for j in range(16)})
        sid = sentence_ids[step % len(sentence_ids)]
        ann = project.annotations.add_entity(sid, 0, 6, "person") if step <= len(sentence_ids) else None
        print("ANN", ann.id if ann else 0, "STEP", step, flush=True)
"""


def test_kill_mid_training_marks_the_run_interrupted_and_keeps_annotations(tmp_path):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        p.types.add("person")
        ids = [p.sentences.add(f"Person {i} wrote a note .").id for i in range(400)]
    proc = _child(TRAINER, str(folder), ",".join(map(str, ids)))
    lines = _read_until(proc, lambda lines: sum(line.startswith("ANN") for line in lines) >= 40)
    _kill(proc)
    run_id = int(lines[0].split()[1])
    committed = [int(line.split()[1]) for line in lines if line.startswith("ANN") and line.split()[1] != "0"]
    last_step = int(lines[-1].split()[3])

    _check_sound(folder)
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"
        assert p.interrupted_runs == (run_id,)
        run = p.runs.get(run_id)
        assert run.status == "interrupted" and run.finished_at is not None
        assert len(run.metrics) >= last_step
        for aid in committed:  # every annotation the child saw committed is there
            assert p.annotations.get(aid).status == "gold"
        assert p.annotations.count() >= len(committed)
        got = p.logit_cache.get_many([(f"ex{last_step}-0", "expert-1", 1)])
        assert got[(f"ex{last_step}-0", "expert-1", 1)].tolist() == [float(last_step)] * 8
    with Project.open(folder) as p:  # a second open finds nothing more to mark
        assert p.interrupted_runs == ()
