"""``conpet bench-threads``: how fast one LoRA training step runs with each CPU thread setting, on an idle
machine and with other processes keeping cores busy (what the default thread policy of
``conpet.core.runtime`` is chosen from).

Each setting runs in a fresh child process (OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads):
the packaged ``minilm``, one rank-4 LoRA module with a 4-way head, a fixed batch of 8 sentences, a few
warm-up steps, then ``--steps`` timed steps (forward, backward, AdamW); the settings take turns, ``--rounds`` times. The
busy condition starts
``--busy`` processes that spin on a core each for the whole measurement. Prints seconds per step (the
median of the timed steps) per setting and condition, with the load average before each condition.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

SENTENCES = [
    "Ada Lovelace was born in London and worked with Charles Babbage on the Analytical Engine.",
    "The company opened a new office in Berlin after the merger with a smaller rival last spring.",
    "Doctors prescribed a new drug to patients with the disease after the trial had ended early.",
    "Marie Curie moved to Paris to study physics and later won two Nobel prizes for her research.",
]


def _child(threads: int | None, steps: int, warmup: int) -> dict[str, Any]:
    """One setting, in this process: seconds of each timed training step."""
    import torch

    from conpet.core.runtime import apply_threads
    from conpet.data.example import Example, Span
    from conpet.model.backbones import load_backbone
    from conpet.model.encoding import ConpetEncoder
    from conpet.model.modules import LoraSettings, PETModel

    n = apply_threads(threads)
    torch.manual_seed(0)
    bb = load_backbone("minilm", device="cpu")
    pet = PETModel(bb, LoraSettings())
    pet.add_module("m", 4)
    pet.set_trainable("m")
    enc = ConpetEncoder(bb.tokenizer, bb.arch)
    examples = [Example(s, (Span(0, 3),), "x", "entity") for s in SENTENCES * 2]
    batch = enc.batch(examples).to("cpu")
    gold = torch.tensor([i % 4 for i in range(len(examples))])
    opt = torch.optim.AdamW(pet.module_parameters("m"), lr=1e-3)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(pet.logits(batch, "m"), gold)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"threads": n, "seconds": times, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _spinner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _run_setting(threads: int | None, passive: bool, steps: int, warmup: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    code = ("import json, sys; from conpet.bench.threads import _child; "
            f"print(json.dumps(_child({threads!r}, {steps}, {warmup})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(settings: list[tuple[str, int | None, bool]], busy: int, steps: int, warmup: int,
            rounds: int = 1) -> list[dict[str, Any]]:
    """Per condition and setting: the median over ``rounds`` of each child's median seconds per step. The
    settings take turns within each round, so that a change in the machine's other load hits them alike."""
    from conpet.core.runtime import cpu_cores, load_average

    rows = []
    for condition, n_busy in (("idle", 0), (f"{busy} core(s) busy", busy)):
        if condition != "idle" and not busy:
            continue
        spinners = [_spinner() for _ in range(n_busy)]
        try:
            time.sleep(2.0 if n_busy else 0.0)
            load = load_average()
            medians: dict[str, list[float]] = {label: [] for label, _, _ in settings}
            used: dict[str, int] = {}
            for _ in range(rounds):
                for label, threads, passive in settings:
                    res = _run_setting(threads, passive, steps, warmup)
                    medians[label].append(statistics.median(res["seconds"]))
                    used[label] = res["threads"]
                    print(f"{condition:>16}  {label:<12} {res['threads']} thread(s)  {medians[label][-1]:.3f} s/step",
                          file=sys.stderr, flush=True)
            for label, _, _ in settings:
                rows.append({"condition": condition, "setting": label, "threads": used[label],
                             "seconds_per_step": statistics.median(medians[label]), "rounds": medians[label],
                             "load_average_before": load, "load_average_after": load_average(),
                             "cores": cpu_cores()})
        finally:
            for p in spinners:
                p.kill()
                p.wait()
    return rows


def parse_settings(text: str) -> list[tuple[str, int | None, bool]]:
    """`--threads` text ("1,2,auto,2+passive") as (label, threads or None for the default policy, passive)."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        base, _, flag = item.partition("+")
        threads = None if base == "auto" else int(base)
        out.append((item, threads, flag == "passive"))
    return out
