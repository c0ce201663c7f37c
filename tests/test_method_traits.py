"""What a method is (dynamic family, routed by statistics, offered to projects) is an attribute of its class,
read by the profiles, the stage plans, the work plan, `conpet train` and the project layer alike."""

from __future__ import annotations

import filecmp
import shutil

import pytest
from demo_data import demo_subset

from conpet import cli
from conpet.core.config import TABLE_III, profile_train
from conpet.methods.registry import method_class, method_names, project_methods
from conpet.project.training import DEFAULT_METHOD, TrainError, train_project
from conpet.store import Project
from conpet.store.importer import import_file


def _with(trait: str) -> set[str]:
    return {n for n in method_names() if getattr(method_class(n), trait)}


def test_the_dynamic_family_is_dynamic_conpet_its_variants_and_the_statistically_routed():
    assert _with("dynamic_family") == {"dynamic", "dynamic-nosel", "dynamic-typesel", "limitless", "dynamic-lda",
                                       "lda-frozen", "lda-adapted"}
    assert _with("routed_by_statistics") == {"dynamic-lda", "lda-frozen", "lda-adapted"}


def test_projects_offer_the_methods_that_say_so_and_no_subclass_inherits_it():
    assert project_methods() == ["dynamic", "dynamic-lda", "dynamic-typesel", "static"]
    assert DEFAULT_METHOD in project_methods()
    # emr* is StaticConPET under Table IV's name; limitless and the ablation are Dynamic ConPET's subclasses
    for name in ("emr*", "limitless", "dynamic-nosel", "lda-frozen"):
        assert not method_class(name).in_projects


def test_the_paper_profile_gives_the_dynamic_family_table_iii_s_dynamic_learning_rate():
    row = TABLE_III["fewnerd"]
    assert profile_train("paper", data="fewnerd", dynamic=method_class("dynamic-lda").dynamic_family).lr == \
        row["lr_dynamic"]
    assert profile_train("paper", data="fewnerd", dynamic=method_class("static").dynamic_family).lr == \
        row["lr_static"] != row["lr_dynamic"]


def test_a_project_refuses_a_method_it_does_not_offer_and_changes_nothing(tmp_path, capsys):
    folder = tmp_path / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, tmp_path / "t1.jsonl"))
    before = tmp_path / "before"
    shutil.copytree(folder, before)
    with pytest.raises(TrainError, match="cannot train with 'limitless'; choose one of dynamic, dynamic-lda"):
        train_project(folder, method="limitless", profile="smoke")
    assert cli.main(["train", str(folder), "--method", "crl"]) == 1
    assert "cannot train with 'crl'" in capsys.readouterr().err
    cmp = filecmp.dircmp(before, folder)
    assert not (cmp.diff_files or cmp.left_only or cmp.right_only), "a refused training changed the project"


def test_conpet_methods_marks_what_a_project_can_use(capsys):
    assert cli.main(["methods"]) == 0
    marked = {ln.split()[0]: ln.split()[1] for ln in capsys.readouterr().out.splitlines()
              if ln.split()[1] in ("(default)", "(project)")}
    assert marked == {n: "(default)" if n == DEFAULT_METHOD else "(project)" for n in project_methods()}
