"""Issue 24, defects 5 and 7: settings refused by name, data set profiles matched by exact name."""

from __future__ import annotations

import pytest

from conpet.core.config import ConfigError, TrainConfig, default_memory_per_type, make_config, profile_train


@pytest.mark.parametrize("data", ["surface_relations.jsonl", "/tmp/place_relations.json", "spaces.txt",
                                  "interface.jsonl"])
def test_a_file_whose_name_only_contains_ace_gets_no_ace_settings(data):
    assert make_config("quick", data=data).n_tasks == 10
    assert profile_train("paper", data=data).lr == profile_train("paper", data="fewrel80").lr
    assert default_memory_per_type(data) == default_memory_per_type("fewrel80")
    from conpet.core.config import dataset_name

    assert dataset_name(data) is None


@pytest.mark.parametrize(("data", "want"), [("ace", "ace"), ("ace2005", "ace"), ("/data/ace05_train.jsonl", "ace"),
                                            ("/data/tacred_train.json", "tacred"), ("fewrel80", "fewrel"),
                                            ("fewrel80_lower.json", "fewrel"), ("Few-NERD", "fewnerd"),
                                            ("fewnerd", "fewnerd"), ("bbn.jsonl", "bbn")])
def test_the_papers_data_sets_are_recognised_by_exact_name(data, want):
    from conpet.core.config import dataset_name

    assert dataset_name(data) == want


def test_ace_by_name_keeps_its_profile():
    assert make_config("quick", data="ace2005").n_tasks == 5
    assert profile_train("paper", data="/data/ace_train.jsonl").lr == 5e-4


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, float("nan")])
def test_router_shrinkage_outside_the_open_unit_interval_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="router_shrinkage"):
        TrainConfig(router_shrinkage=value)


def test_a_singular_router_covariance_is_a_clear_error_not_a_traceback():
    import numpy as np

    from conpet.methods.router import GaussianRouter, RouterError

    router = GaussianRouter(dim=16, shrinkage=0.0)  # a router saved before 0 was refused can still be loaded
    rng = np.random.default_rng(0)
    router.update(rng.normal(size=(3, 16)), ["a", "b", "a"])  # 3 examples in 16 dimensions: singular
    with pytest.raises(RouterError, match="router_shrinkage"):
        router.log_posterior(rng.normal(size=(2, 16)))
