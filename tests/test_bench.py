"""`conpet bench`: the table, results.json / results.csv / avg_acc.png, and one tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from conpet.bench.continual import format_table, write_outputs
from conpet.core.config import PROFILES, ConfigError, ExperimentConfig, TrainConfig, make_config

WORDS = {
    "city": ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Vienna", "Cairo"],
    "fruit": ["apple", "banana", "cherry", "mango", "peach", "pear", "plum", "grape"],
    "color": ["red", "blue", "green", "yellow", "purple", "pink", "brown", "black"],
    "animal": ["dog", "cat", "horse", "tiger", "lion", "wolf", "bear", "rabbit"],
}
TEMPLATES = ["I often think about {m} these days.", "She mentioned {m} during the meeting.",
             "We talked about {m} for an hour.", "Nobody expected {m} to come up again."]


def _record(method: str, seed: int, avg: list[float], secs: list[float], sel=None) -> dict:
    return {"method": method, "seed": seed, "data": "toy", "backbone": "minilm", "profile": "smoke",
            "whole_acc": [a - 1 for a in avg], "avg_acc": avg, "seconds_per_step": secs,
            "eval_seconds_per_step": [0.1] * len(avg), "selector_acc": sel, "peak_rss_mb": 800.0,
            "total_seconds": sum(secs), "config": {}}


def test_table_layout_and_outputs(tmp_path):
    records = [_record("dynamic", 1, [90.0, 80.0, 70.0], [1.0, 2.0, 2.2], [100.0, 90.0, 80.0]),
               _record("dynamic", 2, [92.0, 82.0, 74.0], [1.0, 2.0, 2.0], [100.0, 92.0, 84.0]),
               _record("sequential", 1, [90.0, 45.0, 30.0], [1.0, 1.0, 1.0]),
               _record("sequential", 2, [90.0, 45.0, 32.0], [1.0, 1.0, 1.0])]
    table = write_outputs(records, tmp_path, command="conpet bench --data toy")
    assert table == format_table(records)
    lines = table.splitlines()
    row = next(line for line in lines if line.startswith("dynamic "))
    assert "72.00 ± 2.00" in row and "71.00 ± 2.00" in row and "82.00 ± 2.00" in row
    assert any(line.startswith("average accuracy A per step") for line in lines)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["command"].startswith("conpet bench") and len(doc["records"]) == 4
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,seed,step") and len(csv_lines) == 1 + 4 * 3
    assert (tmp_path / "avg_acc.png").stat().st_size > 1000


def test_profiles_and_config_round_trip():
    for p in PROFILES:
        exp = make_config(p, data="fewrel80", dynamic=True, seed=2)
        assert exp.train.seed == 2 and exp.n_tasks == 10
        assert ExperimentConfig.from_dict(json.loads(json.dumps(exp.to_dict()))) == exp
    paper = make_config("paper", data="fewnerd", dynamic=False)
    assert paper.train.lr == 2e-5 and paper.train.batch_limit == 25_000 and paper.max_train_per_type is None
    assert make_config("paper", data="fewnerd", dynamic=True).train.lr == 1e-4
    assert make_config("quick", data="fewrel80").max_train_per_type is not None
    with pytest.raises(ConfigError):
        TrainConfig(top_t=0)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"no_such_setting": 1})


def _toy_file(path, labels=None):
    with path.open("w") as fh:
        for label, words in WORDS.items():
            if labels is not None and label not in labels:
                continue
            for w in words:
                for t in TEMPLATES:
                    text = t.format(m=w)
                    s = text.index(w)
                    fh.write(json.dumps({"text": text, "entities": [{"start": s, "end": s + len(w), "type": label}]})
                             + "\n")
    return path


def test_too_many_tasks_names_the_option_before_the_backbone_loads(tmp_path, capsys, monkeypatch):
    import conpet.model.backbones
    from conpet.cli.main import main

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was loaded before the task split was checked")

    monkeypatch.setattr(conpet.model.backbones, "load_backbone", no_backbone)
    data = _toy_file(tmp_path / "toy.jsonl", ("city", "fruit", "color"))
    rc = main(["bench", "--data", str(data), "--methods", "static", "--out", str(tmp_path / "out")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "cannot split 3 types into 10 non-empty tasks; set the number of tasks with --tasks N (N at most 3)" in err
    assert str(data) in err


def test_without_matplotlib_the_bench_says_how_to_install_it_before_any_work(tmp_path, capsys, monkeypatch):
    import sys

    import conpet.model.backbones
    from conpet.cli.main import main

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone was loaded although the plot could not be drawn")

    monkeypatch.setattr(conpet.model.backbones, "load_backbone", no_backbone)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the bench extra has
    data = _toy_file(tmp_path / "toy.jsonl", ("city", "fruit", "color"))
    assert main(["bench", "--data", str(data), "--tasks", "3", "--methods", "static", "--out",
                 str(tmp_path / "out")]) == 1
    assert main(["bench", "--merge", str(tmp_path / "out"), "--out", str(tmp_path / "merged")]) == 1
    err = capsys.readouterr().err
    assert err.count("pip install 'conpet-studio[bench]'") == 2 and "matplotlib" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "merged").exists()


@pytest.mark.slow
def test_bench_end_to_end_on_a_tiny_file(tiny_bert_dir, tmp_path, capsys):
    import torch

    from conpet.cli.main import main

    data = tmp_path / "toy.jsonl"
    with data.open("w") as fh:
        for label, words in WORDS.items():
            for w in words:
                for t in TEMPLATES:
                    text = t.format(m=w)
                    s = text.index(w)
                    fh.write(json.dumps({"text": text, "entities": [{"start": s, "end": s + len(w), "type": label}]})
                             + "\n")
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    try:
        rc = main(["bench", "--data", str(data), "--backbone", str(tiny_bert_dir), "--methods", "dynamic,sequential",
                   "--profile", "smoke", "--seeds", "1", "--tasks", "2", "--out", str(out), "--measure-cache",
                   "--set", "batch_limit=4", "--set", "max_epochs=1", "--set", "max_train_per_type=8"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    printed = capsys.readouterr().out
    assert "W (whole)" in printed and "dynamic" in printed and "sequential" in printed
    doc = json.loads((out / "results.json").read_text())
    recs = {r["method"]: r for r in doc["records"]}
    assert set(recs) == {"dynamic", "sequential"}
    dyn = recs["dynamic"]
    for key in ("whole_acc", "avg_acc", "seconds_per_step", "selector_acc"):
        assert len(dyn[key]) == 2
    assert dyn["config"]["train"]["batch_limit"] == 4 and dyn["config"]["max_train_per_type"] == 8
    assert dyn["tasks"][0]["train"] <= 2 * 8
    assert recs["sequential"]["selector_acc"] is None and dyn["peak_rss_mb"] > 0
    cache = dyn["cache"]
    assert cache["memory_backbone_passes"] == 0 and cache["memory_same_predictions"]
    assert cache["sqlite_backbone_passes"] == 0 and cache["uncached_backbone_passes"] > 0
    assert (out / "avg_acc.png").is_file() and (out / "results.csv").is_file()


def _write_run(folder, records):
    write_outputs(records, folder)
    return folder


def test_merge_orders_renames_and_refuses_mixed_or_repeated_runs(tmp_path):
    from conpet.bench.continual import merge
    from conpet.core.errors import ConpetError

    a = _write_run(tmp_path / "a", [_record("dynamic-typesel", 1, [90.0, 85.0], [1.0, 1.0]),
                                    _record("static", 1, [90.0, 80.0], [1.0, 1.0]),
                                    _record("emr", 1, [90.0, 60.0], [1.0, 1.0])])
    b = _write_run(tmp_path / "b", [_record("emr", 2, [90.0, 62.0], [1.0, 1.0]),
                                    _record("static", 2, [90.0, 84.0], [1.0, 1.0])])
    table = merge([a, b], tmp_path / "m", rename={"static": "emr*"})
    doc = json.loads((tmp_path / "m" / "results.json").read_text())
    # Table IV's order (emr before emr*), methods outside it after
    assert [(r["method"], r["seed"]) for r in doc["records"]] == [
        ("emr", 1), ("emr", 2), ("emr*", 1), ("emr*", 2), ("dynamic-typesel", 1)]
    assert {r.get("renamed_from") for r in doc["records"] if r["method"] == "emr*"} == {"static"}
    row = next(line for line in table.splitlines() if line.startswith("emr* "))
    assert "82.00 ± 2.00" in row  # A: mean of 80 and 84, population std
    assert not any(line.startswith("static ") for line in table.splitlines())

    with pytest.raises(ConpetError, match="dynamic-typesel seed 1 is in both"):
        merge([a, a], tmp_path / "dup")
    other = _record("emr", 3, [50.0, 40.0], [1.0, 1.0])
    other["data"] = "fewnerd"
    c = _write_run(tmp_path / "c", [other])
    with pytest.raises(ConpetError, match="different settings"):
        merge([a, c], tmp_path / "mixed")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConpetError, match="broken.*not a bench results.json"):
        merge([a, tmp_path / "broken"], tmp_path / "x")
    with pytest.raises(ConpetError, match="no results.json"):
        merge([tmp_path / "nowhere"], tmp_path / "y")
    assert not (tmp_path / "dup").exists() and not (tmp_path / "mixed").exists()


def test_merge_cli_rename_parsing(tmp_path, capsys):
    from conpet.cli.main import main

    a = _write_run(tmp_path / "a", [_record("static", 1, [90.0, 80.0], [1.0, 1.0])])
    assert main(["bench", "--merge", str(a), "--rename", "static=emr*", "--out", str(tmp_path / "m")]) == 0
    assert "emr*" in capsys.readouterr().out
    assert main(["bench", "--merge", str(a), "--rename", "static", "--out", str(tmp_path / "m2")]) != 0
    assert "OLD=NEW" in capsys.readouterr().err
    assert main(["bench", "--rename", "static=emr*", "--out", str(tmp_path / "m3")]) != 0
    assert "--merge" in capsys.readouterr().err


def test_merge_only_keeps_the_named_methods_and_prints_routing_rows(tmp_path, capsys):
    from conpet.cli.main import main

    routed = _record("dynamic-lda", 1, [90.0, 70.0], [1.0, 1.0])
    routed["routing"] = {"route_top2": [100.0, 88.5], "whole_t2": [90.0, 71.0]}
    a = _write_run(tmp_path / "a", [_record("static", 1, [90.0, 80.0], [1.0, 1.0]),
                                    _record("emr", 1, [90.0, 60.0], [1.0, 1.0]), routed])
    assert main(["bench", "--merge", str(a), "--rename", "static=emr*", "--only", "emr*,dynamic-lda",
                 "--out", str(tmp_path / "m")]) == 0
    doc = json.loads((tmp_path / "m" / "results.json").read_text())
    assert [r["method"] for r in doc["records"]] == ["emr*", "dynamic-lda"]
    out = capsys.readouterr().out
    assert "router top-2 task accuracy per step" in out and "88.5" in out
    assert main(["bench", "--only", "emr", "--out", str(tmp_path / "x")]) != 0


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`conpet bench --merge ... | head -1`: the reader is gone before the table is printed; the command
    exits 141 without a traceback."""
    import subprocess
    import sys

    a = _write_run(tmp_path / "a", [_record("emr", 1, [90.0, 60.0], [1.0, 1.0])])
    proc = subprocess.Popen([sys.executable, "-m", "conpet.cli.main", "bench", "--merge", str(a), "--out",
                             str(tmp_path / "m")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # long before the interpreter has started and printed anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_relation_bench_defaults_to_the_repositorys_demo_data():
    from conpet.bench.relation import DEMO
    from conpet.cli.main import build_parser

    assert DEMO.is_file()
    assert build_parser().parse_args(["relation-bench"]).data == str(DEMO)
