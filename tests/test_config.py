"""The settings' one definition: LoRA and length settings live in LoraSettings / EncoderSettings, and
TrainConfig's flat fields (the names saved runs and `--set` use) are made from them."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from conpet.core.config import ConfigError, EncoderSettings, ExperimentConfig, LoraSettings, TrainConfig

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
# TrainConfig.to_dict() as the code before the settings' one definition wrote it (lora_alpha None, a device)
OLD_TRAIN = {
    "alpha": -100.0, "batch_limit": 400, "batch_size": 8, "device": "cpu", "eval_batch_size": 32,
    "expert_batch_limit": None, "expert_init": "selector", "grad_clip": 1.0, "head_lr_scale": 5.0,
    "lora_alpha": None, "lora_dropout": 0.0, "lora_rank": 4, "lora_targets": None, "lr": 0.002, "max_epochs": 2,
    "max_length_entity": 256, "max_length_relation": 128, "memory_per_type": 3, "min_valid_per_task": 8,
    "new_old_ratio": 1.0, "replay": True, "representation": None, "router_calibrate": False,
    "router_features": "first-task", "router_normalize": True, "router_shrinkage": 0.1, "router_weight": 1.0,
    "seed": 2, "selector_batch_limit": None, "selector_labels": "task", "selector_lr": None,
    "teacher_forcing": True, "top_t": None, "valid_ratio": 0.25, "weight_decay": 0.01,
}


def _train_fields_for(cls: type) -> dict[str, str]:
    """TrainConfig field -> the ``cls`` setting it stands for."""
    return {f.name: f.metadata["setting_of"][1] for f in fields(TrainConfig)
            if f.metadata.get("setting_of", (None,))[0] is cls}


@pytest.mark.parametrize(("cls", "prefix"), [(LoraSettings, "lora_"), (EncoderSettings, "max_length_")])
def test_lora_and_length_settings_are_defined_once(cls, prefix):
    own = {f.name: f for f in fields(cls)}
    mirrored = _train_fields_for(cls)
    # every setting of cls has one TrainConfig field, and no TrainConfig field of that family stands alone
    assert sorted(mirrored.values()) == sorted(own)
    assert sorted(mirrored) == sorted(f.name for f in fields(TrainConfig) if f.name.startswith(prefix))
    by_name = {f.name: f for f in fields(TrainConfig)}
    for name, setting in mirrored.items():
        src, mine = own[setting], by_name[name]
        assert src.default is not MISSING and mine.default == src.default, name
        assert mine.metadata["help"] == src.metadata["help"], name
        assert mine.type == src.type, name
    assert getattr(TrainConfig(), "lora" if cls is LoraSettings else "encoder_settings") == cls()


def test_train_config_hands_its_settings_on_whole():
    cfg = TrainConfig(lora_rank=8, lora_alpha=1.0, lora_dropout=0.1, lora_targets=["q_proj"],
                      max_length_entity=64, max_length_relation=48)
    assert cfg.lora == LoraSettings(rank=8, alpha=1.0, dropout=0.1, targets=("q_proj",))
    assert cfg.encoder_settings == EncoderSettings(max_length_entity=64, max_length_relation=48)
    assert cfg.replace(lora_rank=2).lora.rank == 2


@pytest.mark.parametrize(("change", "setting"), [
    ({"lora_alpha": 0.0}, "lora_alpha"), ({"lora_alpha": None}, "lora_alpha"), ({"lora_dropout": 1.0}, "lora_dropout"),
    ({"lora_targets": []}, "lora_targets"), ({"max_length_relation": 5}, "max_length_relation"),
])
def test_a_bad_lora_or_length_setting_is_refused_with_its_name(change, setting):
    with pytest.raises(ConfigError, match=setting):
        TrainConfig(**change)


def test_saved_configs_of_older_runs_load_with_the_settings_they_trained_with():
    cfg = TrainConfig.from_dict(json.loads(json.dumps(OLD_TRAIN)))
    assert cfg.lora == LoraSettings()  # None meant the module's default alpha, which it still is
    assert cfg.encoder_settings == EncoderSettings()
    assert set(OLD_TRAIN) - {"device"} <= set(cfg.to_dict())  # the JSON keys stay
    exp = ExperimentConfig.from_dict({"profile": "quick", "data": "fewrel80", "train": OLD_TRAIN})
    assert exp.train == cfg
    records = [r for f in sorted(RESULTS.rglob("results.json"))
               for r in json.loads(f.read_text(encoding="utf-8")).get("records", []) if "config" in r]
    assert records  # the committed benchmark results (older runs' configs)
    for r in records:
        assert ExperimentConfig.from_dict(r["config"]).train.lora.rank == r["config"]["train"]["lora_rank"]
