"""How a training or prediction uses the process: its random seeds and its CPU threads.

Seeds: ``seed_everything`` seeds Python's ``random``, NumPy's global generator and torch (CPU and CUDA),
so that LoRA and head initialisation, the only draws from torch's global generator, repeat for a seed.
The samplers and splits have their own generators seeded from the run's seed (``conpet.methods.replay``,
``conpet.data.tasks``), so the same seed and data give the same weights on the same machine and
thread count.

Threads: torch defaults to one thread per core, and its OpenMP threads spin while they wait; when other
programs hold some of the cores, every parallel section waits for the thread that lost its core and a
step runs 3-18x slower than with one thread (issue 17: 17.8 s idle, 82.9 s with one of two cores busy,
27.5 s busy with one thread). ``default_threads`` therefore counts only the cores that the load
average shows free, at most ``MAX_DEFAULT_THREADS``, at least one; ``--threads N`` (and the app's
setting) overrides it. ``OMP_WAIT_POLICY=PASSIVE`` (set by ``passive_omp_wait`` before torch loads, unless
the user set it) makes waiting threads sleep instead of spinning. The same count bounds NumPy's BLAS
(threadpoolctl), which does the statistical router's matrix work and would otherwise start one thread per core.
"""

from __future__ import annotations

import os
import random
from typing import Any

MAX_DEFAULT_THREADS = 4  # small models gain little beyond this, and a desktop app must leave room for others


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, task_index: int) -> int:
    """The seed of one continual step: the run's seed, distinct per task (as the samplers derive theirs)."""
    return seed * 1000 + task_index


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the platform has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def threads_for(cores: int, load: float | None) -> int:
    """Threads for ``cores`` usable cores under a load average of ``load``: the cores not taken by other
    programs, at most ``MAX_DEFAULT_THREADS``, at least 1. Without a load average: half the cores."""
    cores = max(1, int(cores))
    if load is None:
        free = cores // 2
    else:
        free = int(cores - load + 0.5)  # a core counts as free when less than half of it is in use
    return max(1, min(free, cores, MAX_DEFAULT_THREADS))


def default_threads() -> int:
    """``threads_for`` this process's cores and the machine's load average now."""
    return threads_for(cpu_cores(), load_average())


def resolve_threads(requested: int | None) -> int:
    """``requested`` when it is a positive number, else ``default_threads()``."""
    if requested is not None and int(requested) > 0:
        return int(requested)
    return default_threads()


def apply_threads(requested: int | None, device: Any = None) -> int:
    """Set torch's intra-op threads and NumPy's BLAS threads for this process (``requested``, else the
    default policy) and return the number. On a CUDA device the CPU only feeds the GPU: one thread unless
    asked for more."""
    import torch
    from threadpoolctl import threadpool_limits

    if device is not None and str(device).startswith("cuda") and not requested:
        n = 1
    else:
        n = resolve_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # stays in force: not used as a context manager
    return n


def passive_omp_wait() -> None:
    """Make OpenMP's waiting threads sleep rather than spin (only takes effect before torch is imported)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
