"""Bad input files are reported in full: every bad line (file:line: problem, the first 20 and a count),
not only the first one, and nothing is imported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conpet import cli
from conpet.core.errors import DataErrors, DataFormatError
from conpet.data.fewrel import read_fewrel
from conpet.data.jsonl import read_jsonl

GOOD = {"text": "Ada Lovelace was born in London.",
        "entities": [{"start": 0, "end": 12, "type": "Person"}, {"start": 25, "end": 31, "type": "City"}]}


def _jsonl(path: Path, n_bad: int) -> Path:
    lines = [json.dumps(GOOD)]
    for i in range(n_bad):
        lines.append("{broken" if i % 2 else json.dumps({"text": "x", "entities": [{"start": 0, "end": 5}]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_reader_reports_every_bad_line(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", 3)
    with pytest.raises(DataErrors) as info:
        read_jsonl(path)
    err = info.value
    assert [n for n, _ in err.problems] == [2, 3, 4] and isinstance(err, DataFormatError)
    assert str(err).startswith(f"{path}: 3 bad lines:\n  {path}:2: entity 0: span 0:5 is out of range")
    assert f"{path}:3: invalid JSON" in str(err) and f"{path}:4: entity 0" in str(err)
    assert err.line == 2  # the first one, as a DataFormatError has it


def test_one_bad_line_reads_as_before(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", 1)
    with pytest.raises(DataFormatError, match=r"d\.jsonl:2: entity 0: span 0:5") as info:
        read_jsonl(path)
    assert "bad lines" not in str(info.value)


def test_import_data_lists_the_first_20_and_counts_the_rest(tmp_path, capsys):
    path = _jsonl(tmp_path / "d.jsonl", 25)
    project = tmp_path / "p"
    assert cli.main(["import-data", str(project), str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: 25 bad lines:" in err and "… and 5 more" in err
    assert sum(line.startswith(f"  {path}:") for line in err.splitlines()) == 20
    assert cli.main(["export-data", str(project), str(tmp_path / "out.jsonl")]) == 0
    assert (tmp_path / "out.jsonl").read_text() == ""  # nothing was imported


def test_fewrel_reader_reports_every_bad_example(tmp_path):
    good = {"tokens": ["Ada", "was", "born", "in", "London", "."], "h": ["Ada", "Q1", [[0]]],
            "t": ["London", "Q2", [[4]]]}
    data = {"P19": [good, {"tokens": ["a"], "h": ["a", "Q1", [[0]]], "t": ["b", "Q2", [[9]]]}],
            "P20": [{"tokens": []}, good]}
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(DataErrors) as info:
        read_fewrel(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: 2 bad examples:")
    assert "relation 'P19', example 1: 't': token index 9 is out of range" in msg
    assert "relation 'P20', example 0:" in msg and all(n is not None for n, _ in info.value.problems)
