"""Reproducible training: the same seed and data give the same weights and predictions (two real tiny
trainings on the tiny random BERT, one after the other in one process, as in the app); the seed is recorded
with the run and in the bundle's manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from demo_data import demo_subset

from conpet.bundle import verify_bundle
from conpet.project.bundles import export_bundle
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


def _train_new_project(folder: Path, data: Path, tiny_bert, seed: int):
    with Project.create(folder) as p:
        import_file(p, data)
    return train_project(folder, backbone=tiny_bert, overrides={**TINY, "seed": seed}, profile="smoke", threads=1)


def _weights(model_folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(model_folder.glob("*/*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.parent.name}/{f.name}:{k}"] = v
    return out


def _predictions(folder: Path, run_id: int) -> list[tuple[str, str, float]]:
    with Project.open(folder) as p:
        return sorted((r.example_id, r.label, r.score) for r in p.predictions.for_run(run_id))


@pytest.fixture(scope="module")
def runs(tiny_bert, tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    data = demo_subset(("Person", "City"), 8, base / "data.jsonl")
    return base, {name: (base / name, _train_new_project(base / name, data, tiny_bert, seed))
                  for name, seed in (("a", 7), ("b", 7), ("c", 8))}


def test_same_seed_same_weights_and_predictions(runs):
    import torch

    _, r = runs
    (fa, a), (fb, b) = r["a"], r["b"]
    wa, wb = _weights(a.model_folder), _weights(b.model_folder)
    assert wa.keys() == wb.keys() and len(wa) > 4
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert different == []
    pa, pb = _predictions(fa, a.run_id), _predictions(fb, b.run_id)
    assert pa == pb and len(pa) > 0
    assert a.metrics["whole_acc"] == b.metrics["whole_acc"]


def test_another_seed_gives_other_weights(runs):
    import torch

    _, r = runs
    wa, wc = _weights(r["a"][1].model_folder), _weights(r["c"][1].model_folder)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_the_seed_is_recorded_with_the_run_and_in_the_bundle(runs):
    base, r = runs
    folder, out = r["a"]
    with Project.open(folder) as p:
        run = p.runs.get(out.run_id)
    assert run.config["seed"] == 7 and run.config["train"]["seed"] == 7 and run.config["threads"] == 1
    assert out.metrics["seed"] == 7
    man = verify_bundle(export_bundle(folder, base / "a.zip"))
    assert man["seed"] == 7 and man["metrics"][0]["seed"] == 7
