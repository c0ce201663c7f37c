"""Issue 24 (3): an import writes in short transactions, so another connection can write between them (the
app's labelling, a training's cache writes) instead of waiting for the whole file; a failed or cancelled
import still leaves the project as it was."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from conpet.core.errors import Cancelled
from conpet.store import Project
from conpet.store.importer import import_file


def _file(tmp_path, n: int, tag: str = "Person"):
    path = tmp_path / f"{tag}-{n}.jsonl"
    lines = [json.dumps({"text": f"Sentence {i} names Ada here .", "entities": [
        {"start": 19, "end": 22, "type": tag}]}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _can_write_now(db_path) -> bool:
    """Whether another connection gets the write lock at once (no waiting at all)."""
    con = sqlite3.connect(str(db_path), timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc) or "busy" in str(exc)
        return False
    finally:
        con.close()


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        yield p


def test_another_connection_can_write_while_a_large_file_imports(project, tmp_path):
    free: list[bool] = []
    labelled: list[int] = []
    base = project.sentences.add("A sentence the user labels during the import .")
    project.types.add("City", "entity")

    def between_chunks(fraction: float, message: str) -> None:
        if message.startswith("written"):
            free.append(_can_write_now(project.db_path))
            if len(labelled) < 3:  # the user labels from another thread meanwhile
                start, end = ((0, 1), (2, 10), (15, 19))[len(labelled)]
                t = threading.Thread(target=lambda: labelled.append(
                    project.annotations.add_entity(base.id, start, end, "City").id))
                t.start()
                t.join(30)

    report = import_file(project, _file(tmp_path, 1000), progress=between_chunks)
    assert len(free) > 2 and all(free), "the import held the write lock between its chunks"
    assert report.added_sentences == 1000 and report.added_annotations == 1000
    assert len(labelled) == 3 and project.annotations.count(type="City") == 3
    assert project.counts()["sentences"] == 1001


def test_a_cancelled_import_takes_back_what_it_wrote(project, tmp_path):
    project.types.add("City", "entity")
    before = project.counts()
    calls = {"n": 0}

    def cancel_after_some_chunks(fraction: float, message: str) -> None:
        if message.startswith("written"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        import_file(project, _file(tmp_path, 1000, tag="Painter"), progress=cancel_after_some_chunks)
    assert calls["n"] == 3
    assert project.counts() == before
    assert [t.name for t in project.types.list()] == ["City"]
    assert project.integrity_check() == "ok"


def test_a_re_import_after_a_partial_one_completes_it(project, tmp_path):
    """What a killed import leaves (a prefix of the file's sentences, each complete) is completed by
    importing the file again."""
    path = _file(tmp_path, 500)
    head = tmp_path / "head.jsonl"
    head.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:230]), encoding="utf-8")
    import_file(project, head)
    report = import_file(project, path)
    assert report.added_sentences == 270 and report.duplicates_skipped == 230
    assert project.counts()["annotations"] == 500
