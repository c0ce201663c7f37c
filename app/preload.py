"""Get the process ready for training without stalling the window later.

1. Import the engine's heavy libraries (torch, transformers, peft) once, in the background, right after
   the window appears: loading their native libraries holds Python's GIL for up to half a second at a
   time. Done at start-up, the first training run does not pay it.
2. Then ``gc.freeze()``: the half a million long-lived objects those libraries (and Qt) create move out of
   the cyclic garbage collector's reach. Without it, each full collection, triggered by whichever thread
   allocates (e.g. the training worker), walks them all while holding the GIL: measured pauses of up to
   0.6 s of the GUI thread during a run (``python -m app.bench_responsiveness``)."""

from __future__ import annotations

import gc
import importlib
import time

MODULES = (
    "torch", "transformers", "peft", "safetensors.torch",
    "conpet.model.backbones", "conpet.model.encoding", "conpet.model.modules", "conpet.methods.registry",
    "conpet.methods.dynamic", "conpet.methods.static", "conpet.eval.continual", "conpet.project.training",
)


def preload_engine(sink=None) -> float:
    """Import every module above; returns the seconds it took (0 when already loaded)."""
    t0 = time.monotonic()
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # a missing optional piece shows up later, with a clear message, when used
            pass
    from transformers import AutoModel, AutoTokenizer  # noqa: F401 - the lazy module resolves on first use

    gc.freeze()
    return time.monotonic() - t0
