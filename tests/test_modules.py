"""PET modules: LoRA adapters + heads in one peft model; training touches only one module;
head growth; mixed batches; save/load round trip."""

from __future__ import annotations

import json

import pytest
import torch

from conpet.data.example import Example, Span
from conpet.model.encoding import ConpetEncoder
from conpet.model.modules import LoraSettings, ModuleError, PETModel


def _examples() -> list[Example]:
    return [
        Example("I love Paris in spring.", (Span(7, 12),), "city", "entity"),
        Example("Marie Curie was born in Warsaw.", (Span(0, 11), Span(24, 30)), "born_in", "relation"),
        Example("Acme Corp hired Zoë.", (Span(0, 9),), "company", "entity"),
    ]


@pytest.fixture(scope="module")
def batch(minilm):
    return ConpetEncoder(minilm.tokenizer, minilm.arch).batch(_examples())


@pytest.fixture
def pet(minilm):
    model = PETModel(minilm)
    yield model
    model.close()


def _snapshot(pet: PETModel) -> dict[str, torch.Tensor]:
    state = {n: p.detach().clone() for n, p in pet.backbone.model.named_parameters()}
    for name, head in pet.heads.items():
        for n, p in head.named_parameters():
            state[f"head.{name}.{n}"] = p.detach().clone()
    return state


def _train_step(pet: PETModel, batch, name: str, lr: float = 1e-2) -> None:
    pet.set_trainable(name)
    opt = torch.optim.AdamW(pet.module_parameters(name), lr=lr)
    n = pet.n_outputs(name)
    loss = torch.nn.functional.cross_entropy(pet.logits(batch, name), torch.arange(len(batch)) % n)
    loss.backward()
    opt.step()
    opt.zero_grad()


def test_parameter_count_is_lora_plus_head(pet, minilm):
    pet.add_module("a", 3)
    per_target = 4 * 384 + 384 * 4  # A (r x in) + B (out x r)
    lora = per_target * 2 * 6  # query + value in 6 layers
    assert pet.parameter_count("a") == lora + 384 * 3 + 3
    assert pet.module_names == ["a"] and pet.n_outputs("a") == 3


def test_a_lora_step_changes_only_that_module(pet, batch):
    pet.add_module("a", 3)
    pet.add_module("b", 2)
    _train_step(pet, batch, "b")  # make b's LoRA non-trivial first
    before = _snapshot(pet)
    _train_step(pet, batch, "a")
    after = _snapshot(pet)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "the step changed nothing"
    adapter_a = pet._adapter("a")
    for n in changed:
        assert n.startswith("head.a.") or (f".{adapter_a}." in n and "lora_" in n), n
    assert any(n.startswith("head.a.") for n in changed)
    assert any("lora_B" in n for n in changed)


def test_only_the_trainable_module_requires_grad(pet, batch):
    pet.add_module("a", 3)
    pet.add_module("b", 2)
    pet.set_trainable("a")
    # peft's set_adapter (used to switch modules) flips requires_grad; it must be put back
    with torch.no_grad():
        pet.hidden(batch, "b")
        pet.hidden(batch, None)
    trainable = {id(p) for p in pet.module_parameters("a")}
    everything = [*pet.backbone.model.parameters(), *pet.heads.parameters()]
    assert {id(p) for p in everything if p.requires_grad} == trainable
    pet.set_trainable(None)
    assert not any(p.requires_grad for p in everything)


def test_grow_head_keeps_old_rows(pet, batch):
    pet.add_module("sel", 2)
    _train_step(pet, batch, "sel")
    old_w = pet.heads["sel"].weight.detach().clone()
    old_b = pet.heads["sel"].bias.detach().clone()
    with torch.no_grad():
        old_logits = pet.logits(batch, "sel")
    pet.grow_head("sel", 3)
    assert pet.n_outputs("sel") == 5
    assert torch.equal(pet.heads["sel"].weight[:2], old_w)
    assert torch.equal(pet.heads["sel"].bias[:2], old_b)
    with torch.no_grad():  # (a wider matmul may round differently in the last bit)
        assert torch.allclose(pet.logits(batch, "sel")[:, :2], old_logits, atol=1e-6)
    pet.set_trainable("sel")
    assert all(p.requires_grad for p in pet.module_parameters("sel"))


def test_init_from_copies_lora_weights(pet, batch):
    pet.add_module("sel", 2)
    _train_step(pet, batch, "sel")
    pet.add_module("expert", 4, init_from="sel")
    with torch.no_grad():
        assert torch.equal(pet.hidden(batch, "expert"), pet.hidden(batch, "sel"))
    for a, b in zip(pet.module_parameters("expert")[:-2], pet.module_parameters("sel")[:-2], strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_no_adapter_hidden_is_the_plain_backbone(pet, batch, minilm):
    # A separate copy of the weights: the shared backbone may carry other tests' active adapters.
    from transformers import AutoModel

    untouched = AutoModel.from_pretrained(minilm.path).eval()
    with torch.no_grad():
        plain = untouched(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        plain = plain[torch.arange(len(batch)), batch.mask_index]
    pet.add_module("a", 2)
    _train_step(pet, batch, "a")
    with torch.no_grad():
        assert torch.allclose(pet.hidden(batch, None), plain, atol=1e-5)
        assert not torch.allclose(pet.hidden(batch, "a"), plain, atol=1e-5)


def test_save_load_round_trip_gives_identical_logits(pet, batch, tmp_path, minilm):
    pet.add_module("a", 3)
    _train_step(pet, batch, "a")
    folder = pet.save_module("a", tmp_path / "mod")
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "head.safetensors",
        "module.json",
    ]
    info_text = (folder / "module.json").read_text()
    info = json.loads(info_text)
    assert info_text == json.dumps(info, indent=2, sort_keys=True) + "\n"
    assert info["n_outputs"] == 3 and info["lora"]["rank"] == 4 and "peft" in info["versions"]

    other = PETModel(minilm)  # a second model on the same backbone
    try:
        other.load_module(folder, "a")
        with torch.no_grad():
            assert torch.equal(other.logits(batch, "a"), pet.logits(batch, "a"))
        assert other.settings("a") == pet.settings("a")
    finally:
        other.close()
    # saving again replaces the folder as a whole
    pet.grow_head("a", 1)
    pet.save_module("a", folder)
    assert json.loads((folder / "module.json").read_text())["n_outputs"] == 4


def test_two_models_on_one_backbone_do_not_share_modules(minilm, batch):
    first, second = PETModel(minilm), PETModel(minilm)
    try:
        first.add_module("a", 2)
        second.add_module("a", 2)
        _train_step(first, batch, "a")
        with torch.no_grad():
            assert not torch.allclose(first.hidden(batch, "a"), second.hidden(batch, "a"))
            assert torch.allclose(second.hidden(batch, "a"), second.hidden(batch, None), atol=1e-6)
    finally:
        first.close()
        second.close()


def test_bad_names_and_bad_folders(pet, tmp_path, batch):
    pet.add_module("a", 2)
    with pytest.raises(ModuleError, match="already exists"):
        pet.add_module("a", 2)
    with pytest.raises(ModuleError, match="bad module name"):
        pet.add_module("has.dot", 2)
    with pytest.raises(KeyError):
        pet.hidden(batch, "nope")
    with pytest.raises(ModuleError, match="no such folder"):
        pet.load_module(tmp_path / "absent", "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModuleError, match="missing module.json"):
        pet.load_module(tmp_path / "empty", "b")
    folder = pet.save_module("a", tmp_path / "saved")
    info = json.loads((folder / "module.json").read_text())
    (folder / "module.json").write_text(json.dumps({**info, "hidden_size": 4096}))
    with pytest.raises(ModuleError, match="hidden size 4096"):
        pet.load_module(folder, "b")
    (folder / "module.json").write_text("{not json")
    with pytest.raises(ModuleError, match="unreadable"):
        pet.load_module(folder, "b")
    assert pet.module_names == ["a"]


def test_targets_missing_from_the_backbone(minilm):
    pet = PETModel(minilm, LoraSettings(targets=("q_proj",)))
    with pytest.raises(ModuleError, match=r"LoRA targets \['q_proj'\] do not fit backbone 'minilm'"):
        pet.add_module("a", 2)
    assert pet.module_names == []


def test_lora_settings_validate():
    with pytest.raises(ValueError):
        LoraSettings(rank=0)
    with pytest.raises(ValueError):
        LoraSettings(dropout=1.0)
    s = LoraSettings(alpha=1, targets=["q_proj"])
    assert s.targets == ("q_proj",)
    assert LoraSettings.from_dict(s.to_dict()) == s


def test_decoder_module_reads_hidden_at_mask(smollm):
    encoder = ConpetEncoder(smollm.tokenizer, smollm.arch)
    short = Example("Paris is big.", (Span(0, 5),), "city", "entity")
    batch = encoder.batch([short, _examples()[0]])  # rows of different lengths: right padding
    pet = PETModel(smollm)
    try:
        pet.add_module("a", 2)
        pet.add_module("b", 2)
        _train_step(pet, batch, "a", lr=1e-3)
        with torch.no_grad():
            alone = pet.hidden(encoder.batch([short]), "a")[0]
            both = pet.hidden(batch, "a")
            assert both.shape == (2, 576)
            assert torch.allclose(both[0], alone, atol=1e-4)  # padding does not change the [MASK] state
    finally:
        pet.close()
