"""The project layer never gives a wrong result (issue 13, defects 1, 2, 4 and 5): a failed step leaves no
cached logits a retry could read, an example's split never changes once seen, a full disk / read-only
folder / locked database gives one clear message, and the loaded backbone (not a saved setting) decides
the device; ``--profile`` means the same for a new model and one that continues."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
from demo_data import demo_project, demo_subset

from conpet import cli
from conpet.cli import train as train_cli
from conpet.core.config import TrainConfig
from conpet.core.errors import StorageError
from conpet.methods.base import PETMethod
from conpet.project import training as pt
from conpet.store import Project
from conpet.store import db as store_db
from conpet.store.errors import DatabaseAccessError
from conpet.store.importer import import_file

TINY = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}
TINY_ARGS = ["--batch-limit", "2", "--epochs", "1", "--min-examples", "5", "--quiet"]


@pytest.fixture
def project_dir(tmp_path) -> Path:
    return demo_project(tmp_path / "proj", ("Person", "City"), 8, tmp_path)


def add_second_task(folder: Path, tmp_path: Path) -> None:
    with Project.open(folder) as p:
        import_file(p, demo_subset(("Company", "Drug"), 8, tmp_path / "t2.jsonl"))


def cache_rows(p: Project) -> set[tuple[str, int]]:
    with sqlite3.connect(p.db_path) as conn:
        return set(conn.execute("SELECT DISTINCT module_id, module_version FROM logit_cache"))


def model_versions(folder: Path) -> set[tuple[str, int]]:
    state = json.loads((folder / "method.json").read_text())
    return {(f"{state['uid']}/{n}", int(v)) for n, v in state["versions"].items()}


def full_disk(attempt: dict[str, int]):
    """A model save that fails as on a full disk, after noting the versions the attempt had issued."""
    def save(method, folder, training, *_suggesters):
        attempt.update({method.module_id(n): method.versions[n] for n in method.logical_modules()})
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "selector" / "head.safetensors"))
    return save


# --- defect 1: stale cached logits after a failed step --------------------------------------------------

def test_a_step_that_failed_on_a_full_disk_leaves_no_logits_a_retry_reads(project_dir, tmp_path, tiny_bert,
                                                                         monkeypatch):
    # a method with a trained selector: a failed step changes an old module (the selector) and adds one
    first = pt.train_project(project_dir, method="dynamic-typesel", backbone=tiny_bert, overrides=TINY,
                             profile="smoke")
    step1 = model_versions(first.model_folder)
    add_second_task(project_dir, tmp_path)
    attempt: dict[str, int] = {}
    monkeypatch.setattr(pt, "_save_model_atomic", full_disk(attempt))
    with pytest.raises(StorageError, match="head.safetensors: the disk is full"):
        pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY)
    failed = {(mid, v) for mid, v in attempt.items()} - step1
    assert failed, "the failed attempt changed the selector and added an expert"
    with Project.open(project_dir) as p:
        assert p.runs.list()[0].status == "failed" and "disk is full" in p.runs.list()[0].error
        assert cache_rows(p) and cache_rows(p) <= step1  # the attempt's logits are gone
    monkeypatch.undo()
    second = pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY)
    retried = model_versions(second.model_folder)
    assert not failed & retried, "a retried step must not issue the failed attempt's versions again"
    with Project.open(project_dir) as p:
        assert cache_rows(p) <= retried  # superseded versions pruned too


def test_rows_an_interrupted_run_left_are_pruned_by_the_next_step(project_dir, tmp_path, tiny_bert):
    first = pt.train_project(project_dir, method="dynamic-typesel", backbone=tiny_bert, overrides=TINY,
                             profile="smoke")
    uid = json.loads((first.model_folder / "method.json").read_text())["uid"]
    with Project.open(project_dir) as p:
        p.logit_cache.put_many({("some-example", f"{uid}/selector", 999): [0.0, 1.0]})  # a killed attempt's
        p.logit_cache.put_many({("some-example", "another-model/selector", 1): [0.0, 1.0]})
    add_second_task(project_dir, tmp_path)
    pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY)
    with Project.open(project_dir) as p:
        rows = cache_rows(p)
        assert (f"{uid}/selector", 999) not in rows and ("another-model/selector", 1) in rows


# --- defect 2: an example's split never changes ----------------------------------------------------------

def spy_steps(monkeypatch) -> list[list]:
    """The task data every learn_task call sees ([*history, task])."""
    seen: list[list] = []
    real = PETMethod.learn_task

    def spy(self, task, history, sink=None):
        seen.append([*history, task])
        return real(self, task, history, sink)

    monkeypatch.setattr(PETMethod, "learn_task", spy)
    return seen


def splits_of(task) -> dict[tuple, str]:
    return {(ex.text, ex.spans): part for part in ("train", "valid", "test") for ex in getattr(task, part)}


def test_adding_renaming_or_reseeding_never_moves_an_example_between_splits(project_dir, tmp_path, tiny_bert,
                                                                            monkeypatch):
    seen = spy_steps(monkeypatch)
    pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke")
    before = splits_of(seen[0][0])
    assert set(before.values()) == {"train", "valid", "test"}
    add_second_task(project_dir, tmp_path)
    with Project.open(project_dir) as p:
        city = next(t for t in p.types.list() if t.name == "City")
        p.types.rename(city.id, "Town")
        person = next(t for t in p.types.list() if t.name == "Person")
        s = p.sentences.add("Grace Hopper taught the course herself.")
        p.annotations.add_entity(s.id, 0, 12, person.id)
    pt.train_project(project_dir, backbone=tiny_bert, overrides={**TINY, "seed": 7})
    after = splits_of(seen[1][0])
    moved = {key: (part, after[key]) for key, part in before.items() if after.get(key) != part}
    assert not moved, f"examples changed split: {moved}"
    assert len(after) == len(before) + 1


# --- defect 4: a full disk, a read-only folder or a locked database -----------------------------------

def test_a_full_disk_during_the_save_is_one_message_and_nothing_half_written(project_dir, tiny_bert_dir, monkeypatch,
                                                                            capsys):
    monkeypatch.setattr(pt, "_save_model_atomic", full_disk({}))
    assert cli.main(["train", str(project_dir), "--profile", "smoke", *TINY_ARGS,
                     "--backbone", str(tiny_bert_dir)]) == 1
    err = capsys.readouterr().err  # (transformers may draw a loading bar first)
    last = err.splitlines()[-1]
    assert last.startswith("conpet: error: ") and last.endswith("head.safetensors: the disk is full (free some "
                                                                "space and try again)")
    assert "Traceback" not in err and err.count("conpet: error") == 1  # (the notes before training: "conpet: …")
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        assert run.status == "failed" and p.modules.list() == [] and pt.current_model_folder(p) is None
        assert list(p.modules_dir.iterdir()) == []
        assert cache_rows(p) == set()


def test_a_full_disk_while_recording_the_step_leaves_no_model_folder(project_dir, tiny_bert, monkeypatch):
    from conpet.store.repositories.modules import ModuleRepository

    def full(self, *args, **kwargs):
        raise DatabaseAccessError("the project database project.sqlite cannot grow: the disk is full")

    monkeypatch.setattr(ModuleRepository, "register", full)
    with pytest.raises(DatabaseAccessError, match="disk is full"):
        pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke")
    with Project.open(project_dir) as p:
        (run,) = p.runs.list()
        assert run.status == "failed" and p.predictions.count(run.id) == 0
        assert [t.frozen for t in p.tasks.list()] == [False] and list(p.modules_dir.iterdir()) == []


def test_a_read_only_folder_is_one_message_naming_the_file(project_dir, tmp_path, tiny_bert_dir, monkeypatch,
                                                           capsys):
    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(DatabaseAccessError, match="new: permission denied"):
        Project.create(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert cli.main(["train", str(project_dir), *TINY_ARGS, "--backbone", str(tiny_bert_dir)]) == 1
    err = capsys.readouterr().err
    assert "modules: permission denied" in err and "Traceback" not in err and err.count("\n") == 1


def test_a_locked_database_is_one_message_naming_the_file(project_dir, monkeypatch):
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 50)
    with Project.open(project_dir) as p:
        other = sqlite3.connect(p.db_path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(DatabaseAccessError, match=r"project\.sqlite is locked by another program"):
                p.types.add("Drug", "entity")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert "Drug" not in {t.name for t in p.types.list()}


def test_a_full_disk_in_the_database_is_one_message(project_dir, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def full_disk_session():
        raise OperationalError("INSERT INTO types", {}, sqlite3.OperationalError("database or disk is full"))

    with Project.open(project_dir) as p:
        monkeypatch.setattr(p.db, "_writes", full_disk_session)
        with pytest.raises(DatabaseAccessError, match=r"project\.sqlite cannot grow: the disk is full"):
            p.types.add("Drug", "entity")


# --- defect 5: the loaded backbone decides the device; --profile means the same everywhere ---------------

def test_a_model_saved_on_another_device_continues_where_the_backbone_is(project_dir, tmp_path, tiny_bert):
    first = pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY, profile="smoke")
    state_file = first.model_folder / "method.json"
    state = json.loads(state_file.read_text())
    state["config"]["device"] = "cuda"  # as saved by a project started on a GPU machine
    state_file.write_text(json.dumps(state))
    add_second_task(project_dir, tmp_path)
    out = pt.train_project(project_dir, backbone=tiny_bert, overrides=TINY)  # the backbone is on the CPU
    assert out.status == "finished" and out.task_index == 2
    assert "device" not in TrainConfig().to_dict()


def test_a_project_builds_its_training_settings_from_the_profile_directly():
    """A project's TrainConfig is the profile's (``profile_train``), not an experiment's ``.train``: the same
    budget as ``make_config``, without the experiment's data caps and baselines' memory."""
    from conpet.core.config import TrainConfig, make_config, profile_train

    for profile in ("smoke", "quick", "paper"):
        for method, dynamic in (("dynamic-typesel", True), ("static", False)):
            train = profile_train(profile, data="project", dynamic=dynamic)
            exp = make_config(profile, data="project", dynamic=dynamic)
            assert train == exp.train.replace(memory_per_type=TrainConfig().memory_per_type)
            assert pt.profile_budget(profile, method) == {k: getattr(train, k) for k in pt.PROFILE_BUDGET}


def test_profile_sets_the_budget_of_a_continuing_model_as_in_the_app(project_dir, tmp_path, tiny_bert_dir, capsys):
    assert cli.main(["train", str(project_dir), "--profile", "smoke", "--min-examples", "5", "--quiet",
                     "--batch-limit", "2", "--epochs", "1", "--backbone", str(tiny_bert_dir)]) == 0
    add_second_task(project_dir, tmp_path)
    assert cli.main(["train", str(project_dir), "--profile", "paper", "--min-examples", "5", "--quiet",
                     "--batch-limit", "2", "--epochs", "1"]) == 0  # continues on the model's own backbone
    paper = pt.profile_budget("paper")
    with Project.open(project_dir) as p:
        second, first = p.runs.list()
        assert first.config["train"]["lr"] == pt.profile_budget("smoke")["lr"] != paper["lr"]
        assert second.config["train"]["lr"] == paper["lr"]
        assert second.config["train"]["batch_limit"] == 2  # an explicit setting still wins


def test_the_cli_turns_any_os_error_into_one_line(project_dir, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/predictions.jsonl")

    monkeypatch.setattr(train_cli, "train_project", full)
    assert cli.main(["train", str(project_dir), "--quiet"]) == 1
    assert capsys.readouterr().err == ("conpet: error: /data/out/predictions.jsonl: the disk is full "
                                       "(free some space and try again)\n")
