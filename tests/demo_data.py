"""The demo data set the tests build projects from (resources/demo), and subsets of it."""

from __future__ import annotations

import json
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "resources" / "demo" / "demo.jsonl"


def demo_subset(types: tuple[str, ...], n: int, out: Path) -> Path:
    """Sentences of the demo data with at most ``n`` entities of each of ``types`` (other entities
    dropped), written to ``out`` as JSONL."""
    left = dict.fromkeys(types, n)
    lines = []
    for line in DEMO.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        ents = []
        for e in obj["entities"]:
            if left.get(e["type"], 0) > 0:
                left[e["type"]] -= 1
                ents.append(e)
        if ents:
            lines.append(json.dumps({"text": obj["text"], "entities": ents}))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def demo_project(folder: Path, types: tuple[str, ...], n: int, scratch: Path) -> Path:
    """A new project at ``folder`` holding the demo sentences with at most ``n`` entities of each of
    ``types`` (``scratch``: a folder for the JSONL file it imports)."""
    from conpet.store import Project
    from conpet.store.importer import import_file

    with Project.create(folder) as p:
        import_file(p, demo_subset(types, n, scratch / f"{'-'.join(types)}.jsonl"))
    return folder
