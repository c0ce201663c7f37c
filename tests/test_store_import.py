"""Import and export: formats, duplicates, conflicts, all-or-nothing, round trip, the CLI, real data timing."""

from __future__ import annotations

import json
import time

import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)

from conpet.cli.main import main as conpet_main
from conpet.core.errors import DataFormatError
from conpet.store import Project
from conpet.store.exporter import export_jsonl
from conpet.store.importer import detect_format, import_file
from conpet.store.transfer import table_digests

FEWNERD = (
    "Ada\tperson-scholar\nLovelace\tperson-scholar\nwas\tO\nborn\tO\nin\tO\nLondon\tlocation-GPE\n.\tO\n\n"
    "Alan\tperson-scholar\nTuring\tperson-scholar\nworked\tO\nat\tO\nBletchley\tbuilding-other\n"
    "Park\tbuilding-other\n.\tO\n\n"
    # the first sentence again with a different tag for London: a conflict, the first tag wins
    "Ada\tperson-scholar\nLovelace\tperson-scholar\nwas\tO\nborn\tO\nin\tO\nLondon\tlocation-other\n.\tO\n"
)
FEWREL = {
    "P19": [
        {"tokens": ["Ada", "Lovelace", "was", "born", "in", "London", "."],
         "h": ["ada lovelace", "Q7259", [[0, 1]]], "t": ["london", "Q84", [[5]]]},
        {"tokens": ["Grace", "Hopper", "was", "born", "in", "New", "York", "."],
         "h": ["grace hopper", "Q11595", [[0, 1]]], "t": ["new york", "Q60", [[5, 6]]]},
    ],
    "P108": [
        {"tokens": ["Alan", "Turing", "worked", "at", "Bletchley", "Park", "."],
         "h": ["alan turing", "Q7251", [[0, 1]]], "t": ["bletchley park", "Q155467", [[4, 5]]]},
    ],
}
PID2NAME = {"P19": ["place of birth", "most specific known birth location"], "P108": ["employer", "who pays"]}


def _jsonl_lines() -> list[dict]:
    return [
        {"text": "Ada Lovelace was born in London .",
         "entities": [{"start": 0, "end": 12, "type": "person"}, {"start": 25, "end": 31, "type": None}],
         "relations": [{"head": 0, "tail": 1, "type": "place of birth"}]},
        {"text": "Nothing to see here .", "source": "notes"},
    ]


def _write_jsonl(path, lines):
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def project(project_where):
    """The same tests on a project folder (SQLite) and on a PostgreSQL server."""
    p = Project.create(project_where)
    yield p
    p.close()


def _gold(project):
    """Every current gold annotation as comparable content (independent of ids)."""
    with project.read() as s:
        return sorted(tuple(r) for r in s.connection().exec_driver_sql(
            "SELECT s.text, a.kind, t.name, v.start, v.\"end\", v.tail_start, v.tail_end "
            "FROM annotation_versions v JOIN annotations a ON a.id = v.annotation_id "
            "JOIN sentences s ON s.id = a.sentence_id JOIN knowledge_types t ON t.id = v.type_id "
            "WHERE v.is_current AND v.status = 'gold'").fetchall())


def test_fewnerd_import_counts_duplicates_and_conflicts(project, tmp_path):
    f = tmp_path / "tiny.txt"
    f.write_text(FEWNERD, encoding="utf-8")
    assert detect_format(f) == "fewnerd"
    events = []
    r = import_file(project, f, progress=lambda frac, msg: events.append(frac))
    assert (r.format, r.added_sentences, r.added_annotations, r.conflicts_skipped) == ("fewnerd", 2, 4, 1)
    assert r.duplicates_skipped == 1  # "Ada Lovelace" in the repeated sentence
    assert r.types_created == 4  # person-scholar, location-GPE, building-other, location-other
    assert events[0] == 0.0 and events[-1] == 1.0 and events == sorted(events)
    assert project.types.find("person-scholar").group == "person"
    ex = project.examples_for_training(["location-GPE"])
    assert [e.mention for e in ex] == ["London"]
    again = import_file(project, f)
    assert (again.added_sentences, again.added_annotations, again.duplicates_skipped) == (0, 0, 5)
    assert again.conflicts_skipped == 1
    assert again.types_created == 0


def test_fewrel_uses_pid2name_next_to_the_file(project, tmp_path):
    (tmp_path / "rel.json").write_text(json.dumps(FEWREL), encoding="utf-8")
    (tmp_path / "pid2name.json").write_text(json.dumps(PID2NAME), encoding="utf-8")
    r = import_file(project, tmp_path / "rel.json")
    assert (r.format, r.added_sentences, r.added_annotations, r.types_created) == ("fewrel", 3, 3, 2)
    t = project.types.find("place of birth", "relation")
    assert t is not None and "P19" in t.description and "birth location" in t.description
    ex = project.examples_for_training(["employer"])
    assert ex[0].text[ex[0].spans[0].start:ex[0].spans[0].end] == "Alan Turing"
    assert ex[0].text[ex[0].spans[1].start:ex[0].spans[1].end] == "Bletchley Park"


def test_fewrel_without_pid2name_keeps_relation_ids(project, tmp_path):
    (tmp_path / "rel.json").write_text(json.dumps(FEWREL), encoding="utf-8")
    import_file(project, tmp_path / "rel.json", format="fewrel")
    assert {t.name for t in project.types.list("relation")} == {"P19", "P108"}


def test_jsonl_import_merges_with_existing_sentences(project, tmp_path):
    project.types.add("person")
    s = project.sentences.add("Ada Lovelace was born in London .")
    project.annotations.add_entity(s.id, 0, 12, "person")
    r = import_file(project, _write_jsonl(tmp_path / "a.jsonl", _jsonl_lines()))
    assert (r.added_sentences, r.added_annotations, r.duplicates_skipped, r.types_created) == (1, 1, 1, 1)
    assert project.sentences.by_text("Nothing to see here .").source == "notes"


def test_export_then_import_gives_the_same_annotations(project, tmp_path):
    project.types.add("person")
    project.types.add("place")
    project.types.add("born in", "relation")
    project.types.add("lived in", "relation")
    s = project.sentences.add("Ada Lovelace was born in London , England .", source="wiki")
    project.annotations.add_entity(s.id, 0, 12, "person")
    project.annotations.add_entity(s.id, 25, 31, "place")
    project.annotations.add_relation(s.id, (0, 12), (25, 31), "born in")
    # arguments that overlap a typed mention or each other's spans need a second line
    project.annotations.add_relation(s.id, (0, 3), (25, 41), "lived in")
    project.annotations.add_relation(s.id, (4, 12), (34, 41), "lived in")
    gone = project.annotations.add_entity(s.id, 34, 41, "place")
    project.annotations.delete(gone.id)
    project.annotations.add_entity(s.id, 17, 21, "place", status="rejected")
    project.sentences.add("A sentence with no annotation .")
    out = tmp_path / "out.jsonl"
    assert export_jsonl(project, out) == 2
    assert len(out.read_text(encoding="utf-8").splitlines()) >= 3
    with Project.create(tmp_path / "copy") as copy:
        r = import_file(copy, out)
        assert r.added_sentences == 2
        assert _gold(copy) == _gold(project)
        assert copy.sentences.count() == 2
        # importing the export into the project it came from changes nothing
    before = _gold(project)
    r = import_file(project, out)
    assert (r.added_sentences, r.added_annotations) == (0, 0)
    assert _gold(project) == before


def test_failed_import_changes_nothing_and_names_the_line(project, tmp_path):
    good = _write_jsonl(tmp_path / "good.jsonl", _jsonl_lines())
    import_file(project, good)
    before = table_digests(project)
    lines = [json.dumps(x) for x in _jsonl_lines()] + [
        json.dumps({"text": "New sentence .", "entities": [{"start": 0, "end": 3, "type": "x"}]}),
        '{"text": "broken", "entities": [{"start": 0, "end": 99, "type": "person"}]}',
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        import_file(project, bad)
    assert err.value.line == 4 and "bad.jsonl:4" in str(err.value)
    assert table_digests(project) == before
    with pytest.raises(DataFormatError, match="file not found"):
        import_file(project, tmp_path / "missing.jsonl")
    (tmp_path / "x.dat").write_text("just words\nand more\n")
    with pytest.raises(DataFormatError, match="format"):
        import_file(project, tmp_path / "x.dat")


def test_cli_import_and_export(tmp_path, capsys):
    f = tmp_path / "tiny.txt"
    f.write_text(FEWNERD, encoding="utf-8")
    folder = tmp_path / "cli-project"
    assert conpet_main(["import-data", str(folder), str(f), "--format", "fewnerd"]) == 0
    out, err = capsys.readouterr()
    assert "sentences added:      2" in out and "annotations added:    4" in out and "100.0%" in err
    assert (folder / "project.sqlite").is_file()
    assert conpet_main(["export-data", str(folder), str(tmp_path / "o.jsonl")]) == 0
    assert "exported 2 sentences" in capsys.readouterr().out
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2
    # BIO tags are CoNLL now (Few-NERD refuses them); a line with no tag is an error naming the line
    (tmp_path / "bio.txt").write_text("Ada\tB-PER\n", encoding="utf-8")
    assert conpet_main(["import-data", str(folder), str(tmp_path / "bio.txt")]) == 0
    assert "(conll)" in capsys.readouterr().out
    (tmp_path / "bad.txt").write_text("Ada\tB-PER\nLovelace\n", encoding="utf-8")
    assert conpet_main(["import-data", str(folder), str(tmp_path / "bad.txt")]) == 1
    assert "bad.txt:2" in capsys.readouterr().err


@pytest.mark.shared_data
def test_fewnerd_files_import_time(shared_data, tmp_path):
    """Times the import of both Few-NERD files (reported, not asserted)."""
    with Project.create(tmp_path / "fewnerd") as project:
        t0 = time.monotonic()
        reports = [import_file(project, shared_data / "fewnerd" / name)
                   for name in ("inter_dev.txt", "inter_test.txt")]
        seconds = time.monotonic() - t0
        counts = project.counts()
    for r in reports:
        print(f"\n{r.path}: {r.added_sentences} sentences, {r.added_annotations} annotations, "
              f"{r.duplicates_skipped} duplicates, {r.conflicts_skipped} conflicts in {r.seconds:.1f} s")
    print(f"both Few-NERD files: {seconds:.1f} s ({counts})")
    assert counts["annotations"] == sum(r.added_annotations for r in reports) > 50_000
