"""The CPU thread policy: by default the cores other programs leave free (at most 4, at least 1), and
`--threads N` / the app's setting instead. (The busy-machine timings come from `conpet bench-threads`.)"""

from __future__ import annotations

import pytest

from conpet import cli
from conpet.core.runtime import MAX_DEFAULT_THREADS, apply_threads, threads_for


@pytest.mark.parametrize(("cores", "load", "want"), [
    (2, 0.0, 2),     # idle two-core machine: both cores
    (2, 1.0, 1),     # one of two cores busy: one thread (the 82.9 s with two threads, 27.5 s with one)
    (2, 4.1, 1),     # overloaded: never below one
    (16, 0.2, MAX_DEFAULT_THREADS),  # a big idle machine: a small count, the rest left to other programs
    (8, 6.0, 2),
    (4, None, 2),    # no load average on this platform: half the cores
    (1, 0.0, 1),
])
def test_default_threads_counts_the_free_cores(cores, load, want):
    assert threads_for(cores, load) == want


def test_apply_threads_sets_torch_and_the_default_follows_the_load(monkeypatch):
    import torch

    import conpet.core.runtime as runtime

    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)
        monkeypatch.setattr(runtime, "load_average", lambda: 0.1)
        assert apply_threads(None) == 2 and torch.get_num_threads() == 2
        monkeypatch.setattr(runtime, "load_average", lambda: 1.2)
        assert apply_threads(0) == 1 and torch.get_num_threads() == 1
        assert apply_threads(None, device="cuda") == 1  # the CPU only feeds the GPU
    finally:
        torch.set_num_threads(before)


def test_the_thread_count_also_bounds_numpys_blas():
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("NumPy has no BLAS with a thread pool here")
    before_torch, before_blas = torch.get_num_threads(), max(i["num_threads"] for i in blas)
    try:
        for n in (1, 2):
            apply_threads(n)
            assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {n}
    finally:
        torch.set_num_threads(before_torch)
        threadpool_limits(limits=before_blas, user_api="blas")


def test_train_and_predict_take_threads():
    parser = cli.build_parser()
    assert parser.parse_args(["train", "p", "--threads", "3"]).threads == 3
    assert parser.parse_args(["train", "p"]).threads is None
    assert parser.parse_args(["predict", "b", "in.jsonl", "--threads", "2"]).threads == 2


def test_app_setting_reaches_the_training(qtbot, tmp_path, monkeypatch):
    import conpet.project.training as pt
    from app import jobs
    from app.settings import AppSettings
    from app.views.train_dialog import TrainDialog

    settings = AppSettings(tmp_path / "settings.ini")
    assert settings.cpu_threads() == 0  # automatic
    settings.set_cpu_threads(1)
    assert AppSettings(tmp_path / "settings.ini").cpu_threads() == 1

    dialog = TrainDialog([], 10, 0, threads=settings.cpu_threads())
    qtbot.addWidget(dialog)
    assert dialog.threads_spin.value() == 1 and dialog.choice().threads == 1
    dialog.threads_spin.setValue(0)
    assert dialog.choice().threads == 0 and "Automatic" in dialog.threads_spin.specialValueText()

    seen = {}
    monkeypatch.setattr(pt, "train_project", lambda *a, **kw: seen.update(kw))
    jobs.train_next_task(jobs.TrainRequest(tmp_path, threads=1))
    assert seen["threads"] == 1
    jobs.train_next_task(jobs.TrainRequest(tmp_path))
    assert seen["threads"] is None


def test_the_command_makes_waiting_threads_sleep_unless_the_user_chose(monkeypatch):
    import os

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
