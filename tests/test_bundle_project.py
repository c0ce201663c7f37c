"""Bundles and projects: export a trained project (zip and folder), import into another project (tasks,
types, modules and metrics appear; no annotations), refusals on import, `conpet predict` and
`conpet bench-predict`, and the bundle's predictions against the ones the project stored."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.bundle import Bundle, BundleError, read_manifest, verify_bundle
from conpet.data.example import Example
from conpet.project.bundles import export_bundle, import_bundle
from conpet.project.model import current_model_folder, step_metrics
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory, tiny_bert) -> Path:
    base = tmp_path_factory.mktemp("proj")
    folder = base / "source"
    with Project.create(folder, name="Demo people") as p:
        import_file(p, demo_subset(("Person", "City"), 8, base / "t1.jsonl"))
        p.types.describe(p.types.find("Person", "entity").id, "a human being")
    # a routed method with a trained selector: the bundle then holds a selector and experts
    train_project(folder, method="dynamic-typesel", backbone=tiny_bert, overrides=TINY, profile="smoke")
    with Project.open(folder) as p:
        import_file(p, demo_subset(("Company", "Drug"), 8, base / "t2.jsonl"))
    train_project(folder, backbone=tiny_bert, overrides=TINY, profile="smoke")
    return folder


@pytest.fixture(scope="module")
def exported(trained_project, tmp_path_factory) -> Path:
    return export_bundle(trained_project, tmp_path_factory.mktemp("out") / "demo.zip")


def _stored_examples(p: Project, run_id: int) -> tuple[list[Example], list]:
    recs = p.predictions.for_run(run_id)
    sents = p.sentences.get_many([r.sentence_id for r in recs])
    exs = [Example(sents[r.sentence_id].text, r.spans, "", r.kind, id=r.example_id) for r in recs]
    return exs, recs


def test_export_manifest_describes_the_project(trained_project, exported, tiny_bert, tmp_path):
    man = verify_bundle(exported)
    assert man["method"] == "dynamic-typesel" and man["backbone"]["sha256"] == tiny_bert.weights_sha256()
    assert [sorted(ty["name"] for ty in t["types"]) for t in man["tasks"]] == [["City", "Person"], ["Company", "Drug"]]
    person = next(ty for t in man["tasks"] for ty in t["types"] if ty["name"] == "Person")
    assert person == {**person, "kind": "entity", "description": "a human being"}
    assert [m["step"] for m in man["metrics"]] == [1, 2] and "whole_acc" in man["metrics"][1]
    assert len(man["data"]["tasks"]) == 2 and set(man["data"]["tasks"][0]) == {"train", "valid", "test"}
    assert man["source"]["project"] == "Demo people" and man["title"] == "Demo people"
    with Project.open(trained_project) as p:  # an open Project works too, and the folder form
        folder = export_bundle(p, tmp_path / "demo-folder")
    assert read_manifest(folder)["types"] == man["types"]
    with pytest.raises(BundleError) as info:
        export_bundle(trained_project, folder)
    assert info.value.reason == "exists"


def test_bundle_predicts_what_the_project_stored(trained_project, exported, tiny_bert):
    with Project.open(trained_project) as p:
        run = p.runs.list(status="finished")[0]  # newest
        examples, stored = _stored_examples(p, run.id)
    bundle = Bundle.load(exported, tiny_bert)
    try:
        got = bundle.predict_examples(examples)
    finally:
        bundle.close()
    assert [g.label for g in got] == [s.label for s in stored]
    assert [g.active_experts for g in got] == [list(s.active_experts) for s in stored]
    assert [g.score for g in got] == pytest.approx([s.score for s in stored], abs=1e-5)
    assert [g.module_versions for g in got] == [s.module_versions for s in stored]


def test_export_without_a_model_is_refused(tmp_path):
    Project.create(tmp_path / "empty").close()
    with pytest.raises(BundleError) as info:
        export_bundle(tmp_path / "empty", tmp_path / "x.zip")
    assert info.value.reason == "project" and not (tmp_path / "x.zip").exists()


def test_import_into_a_new_project(exported, tiny_bert, tmp_path):
    target = tmp_path / "colleague"
    res = import_bundle(target, exported, backbone=tiny_bert)
    assert (res.tasks, res.types_created, res.modules) == (2, 4, 3)
    with Project.open(target) as p:
        tasks = p.tasks.list()
        assert [sorted(t.type_names) for t in tasks] == [["City", "Person"], ["Company", "Drug"]]
        assert all(t.frozen for t in tasks)
        person = p.types.find("Person", "entity")
        assert person.description == "a human being" and person.task_index == 1
        assert {m.name for m in p.modules.list()} == {"selector", "expert-1", "expert-2"}
        assert all(p.modules.verify(m) for m in p.modules.list())
        assert [m["step"] for m in step_metrics(p)] == [1, 2]
        assert p.counts()["sentences"] == 0 and p.counts()["annotations"] == 0  # no annotations in a bundle
        (run,) = p.runs.list()
        assert run.purpose == "import" and run.status == "finished"
        again = export_bundle(p, tmp_path / "again.zip")
    a, b = read_manifest(exported), read_manifest(again)
    assert a["files"]["method.json"] == b["files"]["method.json"]
    for key in ("tasks", "types", "backbone", "modules", "data", "uid", "config"):
        assert a[key] == b[key], key

    def strip(ms):  # the run ids are the receiving project's own
        return [{k: v for k, v in m.items() if k not in ("run_id", "imported")} for m in ms]

    assert strip(a["metrics"]) == strip(b["metrics"]) and all(m["imported"] for m in b["metrics"])
    # a second import into the same project is refused, and changes nothing
    with pytest.raises(BundleError) as info:
        import_bundle(target, exported, backbone=tiny_bert)
    assert info.value.reason == "project"
    with Project.open(target) as p:
        assert len(p.tasks.list()) == 2 and len(p.runs.list()) == 1


def test_import_refusals_change_nothing(exported, tiny_bert, tmp_path):
    target = tmp_path / "p"
    other = dataclasses.replace(tiny_bert, _sha256="0" * 64)
    with pytest.raises(BundleError) as info:
        import_bundle(target, exported, backbone=other)
    assert info.value.reason == "backbone"
    broken = tmp_path / "broken"
    shutil.unpack_archive(exported, broken, "zip")
    (broken / "expert_1" / "module.json").write_text("{}")
    with pytest.raises(BundleError) as info:
        import_bundle(target, broken, backbone=tiny_bert)
    assert info.value.reason == "checksum"
    with Project.open(target) as p:
        assert p.tasks.list() == [] and p.types.list() == [] and p.runs.list() == [] and p.modules.list() == []
        assert [d for d in p.modules_dir.iterdir()] == []


def test_training_continues_after_import(exported, tiny_bert, tmp_path):
    target = tmp_path / "continue"
    import_bundle(target, exported, backbone=tiny_bert)
    with Project.open(target) as p:
        import_file(p, demo_subset(("Disease",), 8, tmp_path / "t3.jsonl"))
    out = train_project(target, backbone=tiny_bert, overrides=TINY, profile="smoke")
    assert out.task_index == 3 and out.types == ("Disease",)
    with Project.open(target) as p:
        assert [m["step"] for m in step_metrics(p)] == [1, 2, 3]
        state = json.loads((current_model_folder(p) / "method.json").read_text())
        assert len(state["tasks"]) == 3 and state["uid"] == read_manifest(exported)["uid"]


def test_predict_cli(exported, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join([
        json.dumps({"text": "Ada Lovelace was born in London.", "id": "a",
                    "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31, "type": "City"}]}),
        "",
        json.dumps({"text": "No marked mentions here."}),
    ]) + "\n")
    out = tmp_path / "out" / "pred.jsonl"
    assert cli.main(["predict", str(exported), str(inp), "--out", str(out), "--batch-size", "4"]) == 0
    err = capsys.readouterr().err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    proposed = lines[1]["predictions"]  # the bundle's mention detector may propose spans on the bare line
    assert f"predicted {2 + len(proposed)} mention(s) in 2 sentence(s)" in err and "predict [" in err
    assert [x["text"] for x in lines] == ["Ada Lovelace was born in London.", "No marked mentions here."]
    first = lines[0]["predictions"]
    assert [m["mention"] for m in first] == ["Ada Lovelace", "London"] and first[1]["gold"] == "City"
    for m in first:
        assert m["label"] in {"Person", "City", "Company", "Drug"} and 0 < m["score"] <= 1
        assert len(m["selector_scores"]) == 2 and len(m["active_experts"]) == 1 and m["module_versions"]
    assert all(m["kind"] == "entity" and 0 < m["expert_scores"]["detector"] <= 1 for m in proposed)
    # a malformed line is reported with its line number, and no output file appears
    bad = tmp_path / "bad.jsonl"
    bad.write_text(inp.read_text().splitlines()[0] + "\n" + json.dumps({"text": "x", "entities": [{"start": 0, "end": 9}]}) + "\n")
    out2 = tmp_path / "pred2.jsonl"
    assert cli.main(["predict", str(exported), str(bad), "--out", str(out2), "--quiet"]) == 1
    assert "bad.jsonl:2: entity 0: span 0:9 is outside the text" in capsys.readouterr().err
    assert not out2.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".pred2")] == []


def test_bench_predict_cli(trained_project, exported, tmp_path, capsys):
    inp = demo_subset(("Person", "Company"), 6, tmp_path / "in.jsonl")
    res = tmp_path / "bench.json"
    assert cli.main(["bench-predict", str(exported), str(inp), "--n", "8", "--batch-size", "4", "--repeats", "1",
                     "--json", str(res), "--project", str(trained_project)]) == 0
    out = capsys.readouterr().out
    assert "sentences/s" in out and "plain forward pass" in out
    c = json.loads(res.read_text())["against_project"]
    assert c["same_label"] == c["same_experts"] == c["same_module_versions"] == c["examples"] > 0
    assert c["max_score_diff"] < 1e-5
    figures = json.loads(res.read_text())
    assert figures["examples"] == 8 and figures["predict_per_second"] > 0 and figures["plain_forward_per_second"] > 0
    assert figures["forward_passes_per_predict"] >= 2  # one selector pass + at least one expert pass per batch


def _bad_input(path: Path, n_bad: int, good: int = 2) -> Path:
    """``good`` good lines first, then ``n_bad`` bad ones of three kinds, one blank line between."""
    ok = {"text": "Ada Lovelace was born in London.", "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31}]}
    lines = [json.dumps(ok)] * good + [""]
    for i in range(n_bad):
        kind = i % 3
        if kind == 0:
            lines.append('{"text": "unterminated')
        elif kind == 1:
            lines.append(json.dumps({"text": "short", "entities": [{"start": 0, "end": 99}]}))
        else:
            lines.append(json.dumps({**ok, "relations": [{"head": 0, "tail": 7}]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_reports_every_bad_line_before_the_model_loads(exported, tmp_path, capsys, monkeypatch):
    import conpet.cli.bundle as bundle_cli

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(bundle_cli.Bundle, "load", no_model)
    inp = _bad_input(tmp_path / "in.jsonl", 25)
    out = tmp_path / "pred.jsonl"
    assert cli.main(["predict", str(exported), str(inp), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{inp}: 25 bad lines:" in err and "… and 5 more" in err
    shown = [line for line in err.splitlines() if line.startswith(f"  {inp}:")]
    assert len(shown) == 20 and shown[0].startswith(f"  {inp}:4: not valid JSON")
    assert f"{inp}:5: entity 0: span 0:99 is outside the text" in err
    # the out-of-range index is named as such (it used to say "must be two different entity indices")
    assert f"{inp}:6: relation 0: tail 7 is not an entity index (this line has 2 entities: indices 0..1)" in err
    assert not out.exists()


def test_predict_skip_bad_predicts_the_good_lines_and_lists_the_rest(exported, tmp_path, capsys):
    inp = _bad_input(tmp_path / "in.jsonl", 2)
    out = tmp_path / "pred.jsonl"
    assert cli.main(["predict", str(exported), str(inp), "--out", str(out), "--quiet", "--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert f"skipped 2 bad line(s) of {inp}:" in err and f"{inp}:4: not valid JSON" in err
    assert f"{inp}:5: entity 0: span 0:99" in err and "predicted 4 mention(s) in 2 sentence(s)" in err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["line"] for x in lines] == [1, 2] and all(len(x["predictions"]) == 2 for x in lines)


def test_predict_empty_or_all_bad_input_says_so(exported, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    assert cli.main(["predict", str(exported), str(empty), "--quiet"]) == 1
    assert f"{empty}: the input is empty: no sentences to predict" in capsys.readouterr().err
    bad = _bad_input(tmp_path / "bad.jsonl", 1, good=0)
    assert cli.main(["predict", str(exported), str(bad), "--quiet", "--skip-bad"]) == 1
    assert f"{bad}:2: not valid JSON" in capsys.readouterr().err


def test_predict_threads(exported, tmp_path, capsys):
    import torch

    inp = _bad_input(tmp_path / "in.jsonl", 0, good=1)
    before = torch.get_num_threads()
    try:
        assert cli.main(["predict", str(exported), str(inp), "--quiet", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
