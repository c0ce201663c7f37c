"""A pytest plugin recording each test's CPU seconds (this process and its reaped subprocesses, set-up and
tear-down included) and wall seconds; load it with ``-p cputime_plugin`` (this folder on PYTHONPATH). With
``CPUTIME_OUT=PREFIX`` set, the session writes ``PREFIX.<worker>.<pid>.json``: {"rows": [[nodeid, cpu,
wall], ...], "startup_cpu": ..., "total": ...}. CPU time, unlike wall time, means something on a busy machine.
"""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

_rows: list[tuple[str, float, float]] = []
_start_cpu = 0.0


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu0, wall0 = _cpu(), time.perf_counter()
    yield
    _rows.append((item.nodeid, _cpu() - cpu0, time.perf_counter() - wall0))


def pytest_sessionstart(session) -> None:
    global _start_cpu
    _start_cpu = _cpu()


def pytest_sessionfinish(session, exitstatus) -> None:
    prefix = os.environ.get("CPUTIME_OUT")
    if not prefix:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{prefix}.{worker}.{os.getpid()}.json", "w", encoding="utf-8") as fh:
        json.dump({"rows": _rows, "startup_cpu": _start_cpu, "total": _cpu()}, fh)
