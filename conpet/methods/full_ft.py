"""Ablation "PET vs full fine-tuning" (CONPET.md, Table VI): Static ConPET (EMR*: dynamic replay of all
history with the batch limit, one head over all seen types) with every backbone weight trained
instead of a LoRA module. Same data, sampler, batch counts and validation as `emr*`.

The method loads its own copy of the backbone's weights (the shared backbone stays frozen for the
other methods of the process) and stands it in for the PET model (`FullModel` offers the part of
`PETModel`'s interface the engine uses). The backbone stays in eval mode (no dropout), as the PET
methods' does. Learning rate: `lr * lr_scale` (0.1: 1e-4 for the quick profile's 1e-3, 2e-5 for the
paper's 2e-4): full fine-tuning of a pretrained encoder diverges at LoRA's learning rates.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from conpet.core.errors import ConpetError
from conpet.core.protocols import Reporter
from conpet.methods.base import Stage, StageStats
from conpet.methods.registry import register_method
from conpet.methods.static import SingleModuleMethod
from conpet.model.encoding import Batch

FULL_FORMAT = "conpet-full-ft-module"


class FullModel:
    """A trainable copy of a backbone + one linear head per module name (the engine uses one)."""

    def __init__(self, backbone: Any) -> None:
        from conpet.model.backbones import load_backbone

        own = load_backbone(backbone.source or backbone.path, device=backbone.device, dtype=torch.float32)
        self.backbone = own
        self.model = own.model  # eval mode; requires_grad off until set_trainable
        self.heads = nn.ModuleDict()
        self._trainable: str | None = None

    @property
    def module_names(self) -> list[str]:
        return list(self.heads.keys())

    def n_outputs(self, name: str) -> int:
        return int(self.heads[name].out_features)

    def _new_head(self, n: int) -> nn.Linear:
        return nn.Linear(self.backbone.hidden_size, n).to(self.backbone.device, torch.float32)

    def add_module(self, name: str, n_outputs: int, init_from: str | None = None,
                   representation: str = "mask") -> None:
        if representation != "mask":
            raise ConpetError("full fine-tuning reads [MASK] only (representation 'mask')")
        if self.heads:
            raise ConpetError("full fine-tuning trains one model: it has a single module")
        self.heads[name] = self._new_head(n_outputs)
        self._apply_trainable()

    def grow_head(self, name: str, n_new: int) -> None:
        old = self.heads[name]
        new = self._new_head(old.out_features + n_new)
        with torch.no_grad():
            new.weight[: old.out_features].copy_(old.weight)
            new.bias[: old.out_features].copy_(old.bias)
        self.heads[name] = new
        self._apply_trainable()

    def remove_module(self, name: str) -> None:
        del self.heads[name]
        if self._trainable == name:
            self.set_trainable(None)

    def close(self) -> None:
        self.heads = nn.ModuleDict()
        self.model = None

    def module_parameters(self, name: str) -> list[nn.Parameter]:
        """Every backbone weight, then the head's weight and bias (the engine's snapshot takes all but
        the last two as the module's body)."""
        return [*self.model.parameters(), *self.heads[name].parameters()]

    def parameter_count(self, name: str) -> int:
        return sum(p.numel() for p in self.module_parameters(name))

    def set_trainable(self, name: str | None) -> None:
        self._trainable = name
        self._apply_trainable()

    def _apply_trainable(self) -> None:
        self.model.requires_grad_(self._trainable is not None)
        for n, head in self.heads.items():
            head.requires_grad_(n == self._trainable)

    def hidden(self, batch: Batch, name: str | None) -> torch.Tensor:
        batch = batch.to(self.backbone.device)
        out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        states = out.last_hidden_state
        rows = torch.arange(states.shape[0], device=states.device)
        return states[rows, batch.mask_index].float()

    def logits(self, batch: Batch, name: str) -> torch.Tensor:
        return self.heads[name](self.hidden(batch, name))

    def save_module(self, name: str, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()},
                  str(folder / "model.safetensors"))
        head = self.heads[name]
        save_file({"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
                  str(folder / "head.safetensors"))
        (folder / "module.json").write_text(json.dumps({"format": FULL_FORMAT, "name": name,
                                                        "n_outputs": self.n_outputs(name)}) + "\n")
        return folder

    def load_module(self, folder: str | Path, name: str) -> None:
        from safetensors.torch import load_file

        folder = Path(folder)
        info = json.loads((folder / "module.json").read_text())
        if info.get("format") != FULL_FORMAT:
            raise ConpetError(f"{folder}: not a full fine-tuning module")
        self.model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(self.backbone.device)))
        head_t = load_file(str(folder / "head.safetensors"))
        head = self._new_head(int(info["n_outputs"]))
        with torch.no_grad():
            head.weight.copy_(head_t["weight"])
            head.bias.copy_(head_t["bias"])
        self.heads[name] = head
        self._apply_trainable()


@register_method("full-ft", aliases=("full", "full-finetune", "fullft", "emr*-full"))
class FullFineTune(SingleModuleMethod):
    """EMR* / Static ConPET with full fine-tuning of the backbone instead of LoRA."""

    name = "full-ft"
    description = "Static ConPET with full fine-tuning of the backbone instead of LoRA (ablation)"
    lr_scale: ClassVar[float] = 0.1

    @property
    def pet(self) -> Any:
        if self._pet is None:
            self._pet = FullModel(self.backbone)
        return self._pet

    def run_stage(self, stage: Stage, rep: Reporter, lo: float, hi: float) -> StageStats:
        return super().run_stage(dataclasses.replace(stage, lr=stage.lr * self.lr_scale), rep, lo, hi)
