"""Cost of a project step with refreshes (issue 23, item 6): a 10-step relation project built from fewrel80,
2 new relation types of 24 labelled examples per step; before every even step, 4 more labels of each type
learnt so far (so that step refreshes the learnt tasks as well as learning its new one). Each step is one
`conpet train PROJECT --quiet` process (default profile, suggesters included); its CPU seconds are the
child's user + system time (resource.getrusage). Usage: python cost_study.py OUT_DIR [--seed 1]."""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from conpet.data.datasets import load_named
from conpet.store import Project

STEPS, NEW_TYPES, PER_TYPE, MORE = 10, 2, 24, 4


def add(project: Project, types: dict[str, int], examples: list) -> None:
    for ex in examples:
        s = project.sentences.add(ex.text)
        head, tail = ex.spans
        project.annotations.add_relation(s.id, (head.start, head.end), (tail.start, tail.end), types[ex.label])


def main(out: Path, seed: int) -> None:
    data = load_named("fewrel80")
    by_type: dict[str, list] = {}
    for ex in data:
        by_type.setdefault(ex.label, []).append(ex)
    rng = random.Random(seed)
    names = rng.sample(sorted(by_type), STEPS * NEW_TYPES)
    for n in names:
        rng.shuffle(by_type[n])
    used = {n: 0 for n in names}
    folder = out / "project"
    Project.create(folder).close()
    rows = []
    for step in range(1, STEPS + 1):
        with Project.open(folder) as p:
            types = {t.name: t.id for t in p.types.list()}
            learnt = [n for n in names if n in types]
            refresh = step % 2 == 0
            if refresh:  # more labels of every learnt type: this step refreshes them
                for n in learnt:
                    add(p, types, by_type[n][used[n]: used[n] + MORE])
                    used[n] += MORE
            for n in names[(step - 1) * NEW_TYPES: step * NEW_TYPES]:
                types[n] = p.types.add(n, "relation").id
                add(p, types, by_type[n][:PER_TYPE])
                used[n] = PER_TYPE
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-c", "import sys; from conpet.cli import main; sys.argv[0]='conpet'; "
                               "sys.exit(main())", "train", str(folder), "--quiet", "--threads", "1"],
                              capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        row = {"step": step, "refresh": refresh, "cpu_seconds": round(cpu, 1),
               "wall_seconds": round(time.monotonic() - t0, 1), "rc": done.returncode,
               "stdout": done.stdout.strip().splitlines(), "stderr_tail": done.stderr.strip().splitlines()[-12:]}
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("step", "refresh", "cpu_seconds", "wall_seconds", "rc")}), flush=True)
        (out / "cost.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            break


if __name__ == "__main__":
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    main(Path(sys.argv[1]), seed)
