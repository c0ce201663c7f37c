"""`conpet evaluate PROJECT_DIR FILE`: a project's current model scored on a labelled file with the same
code as prediction, in today's type names, leaving the project exactly as it was; clear refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from demo_data import DEMO

from conpet import cli
from conpet.project.evaluate import evaluate_project
from conpet.project.predict import predict_project
from conpet.store import Project
from conpet.store.importer import import_file


@pytest.fixture(scope="module")
def trained(tmp_path_factory, trained_demo_template) -> Path:
    """Person/City learnt (a copy of the session's trained demo project); then City renamed Town and a type
    Drug added but not learnt."""
    folder = Path(shutil.copytree(trained_demo_template, tmp_path_factory.mktemp("evalproj") / "proj"))
    with Project.open(folder) as p:
        city = next(t for t in p.types.list() if t.name == "City")
        p.types.rename(city.id, "Town")
        p.types.add("Drug", "entity")
    return folder


def labelled_file(out: Path, n: int = 12) -> Path:
    """Demo sentences with Person, Town (= City), Drug and, on Company mentions, a type Spaceship."""
    names = {"Person": "Person", "City": "Town", "Drug": "Drug", "Company": "Spaceship"}
    left = dict.fromkeys(names, n)
    lines = []
    for line in DEMO.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        ents = []
        for e in obj["entities"]:
            if left.get(e["type"], 0) > 0:
                left[e["type"]] -= 1
                ents.append({**e, "type": names[e["type"]]})
        if ents:
            lines.append(json.dumps({"text": obj["text"], "entities": ents}))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (the database, the models), by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_evaluate_a_project_dir_scores_its_model_and_writes_nothing(trained, tmp_path, capsys, tiny_bert):
    data = labelled_file(tmp_path / "mine.jsonl")
    before = folder_digest(trained)
    with Project.open(trained) as p:
        rows_before = p.counts()
    out = tmp_path / "report.json"
    assert cli.main(["evaluate", str(trained), str(data), "--json", str(out), "--quiet", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert folder_digest(trained) == before  # the database file and every model file byte for byte
    with Project.open(trained) as p:
        assert p.counts() == rows_before
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n_examples"] == 24 and {t["type"] for t in report["per_type"]} == {"Person", "Town"}
    assert report["skipped_unknown_types"] == {"Drug": 12}  # the project's type, not learnt yet
    assert report["not_in_project"] == {"Spaceship": 12}
    assert "left out, types the project does not have: Spaceship (12)" in printed
    assert "left out, types the model never learnt: Drug (12)" in printed

    # the same predictions as the project's own Predict (on a copy that imported the file)
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    with Project.open(copy) as p:
        import_file(p, data)
    outcome = predict_project(copy, backbone_provider=lambda name, device: tiny_bert)
    with Project.open(copy) as p:
        gold = {(a.sentence_id, a.start, a.end): a.type_name
                for anns in p.annotations.for_sentences(p.sentences.ids()).values() for a in anns}
        got = [(gold[(r.sentence_id, r.start, r.end)], r.label) for r in p.predictions.for_run(outcome.run_id)]
    scored = [(g, lab) for g, lab in got if g in ("Person", "Town")]
    assert len(scored) == 24
    assert report["accuracy"] == pytest.approx(sum(g == lab for g, lab in scored) / len(scored))


def test_evaluate_a_project_refuses_clearly(trained, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": "Nothing marked here.", "entities": []}\n', encoding="utf-8")
    assert cli.main(["evaluate", str(trained), str(empty), "--quiet"]) == 1
    assert f"{empty}: nothing to evaluate: the file has no labelled entity or relation" in capsys.readouterr().err

    alien = tmp_path / "alien.jsonl"
    alien.write_text('{"text": "The Nautilus sailed.", "entities": [{"start": 4, "end": 12, "type": "Ship"}]}\n',
                     encoding="utf-8")
    assert cli.main(["evaluate", str(trained), str(alien), "--quiet"]) == 1
    assert (f"{alien}: none of the file's types is a type of the project (Ship; the project has Drug, Person, "
            "Town)") in capsys.readouterr().err

    drugs = tmp_path / "drugs.jsonl"
    drugs.write_text('{"text": "She took aspirin.", "entities": [{"start": 9, "end": 16, "type": "Drug"}]}\n',
                     encoding="utf-8")
    assert cli.main(["evaluate", str(trained), str(drugs), "--quiet", "--device", "cpu"]) == 1
    assert "no example of a type the project's model has learnt (the file has Drug; the model knows Person, Town)" \
        in capsys.readouterr().err

    untrained = tmp_path / "untrained"
    Project.create(untrained).close()
    data = labelled_file(tmp_path / "mine.jsonl")
    assert cli.main(["evaluate", str(untrained), str(data), "--quiet"]) == 1
    assert f"{untrained.resolve()}: nothing to evaluate with yet: train the first task" in capsys.readouterr().err


def test_evaluate_project_function_agrees_with_the_command(trained, tmp_path, tiny_bert, capsys):
    data = labelled_file(tmp_path / "mine.jsonl")
    report = evaluate_project(trained, data, backbone_provider=lambda name, device: tiny_bert, oracle=False)
    out = tmp_path / "r.json"
    assert cli.main(["evaluate", str(trained), str(data), "--json", str(out), "--quiet", "--no-oracle"]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text(encoding="utf-8"))["accuracy"] == pytest.approx(report.accuracy)


def test_evaluate_a_project_scores_its_detectors_proposals_on_the_raw_text(trained, tmp_path, tiny_bert, capsys):
    """The project's model was trained with a mention detector, so its report also scores the detector's
    proposals on the file's sentences read as raw text (span + type, span alone), as a bundle's does."""
    data = labelled_file(tmp_path / "mine.jsonl")
    n_sentences = len(data.read_text(encoding="utf-8").splitlines())
    report = evaluate_project(trained, data, backbone_provider=lambda name, device: tiny_bert, oracle=False)
    assert report.spans is not None and report.spans["sentences"] == n_sentences
    untyped, typed = report.spans["untyped"], report.spans["typed"]
    assert untyped["gold"] >= typed["gold"] > 0 and untyped["predicted"] == typed["predicted"]
    assert typed["true_positives"] <= untyped["true_positives"] <= untyped["predicted"]  # a right type needs a right span
    out = tmp_path / "r.json"
    assert cli.main(["evaluate", str(trained), str(data), "--json", str(out), "--quiet", "--no-oracle"]) == 0
    assert "proposed mentions on" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8"))["spans"] == report.spans
