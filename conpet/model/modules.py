"""PET modules: a peft LoRA adapter on the frozen backbone plus a linear head over a schema.

Several modules live side by side in *one* peft model under their own adapter names (peft's
``add_adapter`` / ``set_adapter``). peft injects
LoRA layers into the backbone's model in place, so every ``PETModel`` built on the same
``Backbone`` shares that one peft model (``_SharedPeft``, kept on the backbone) and prefixes its
adapter names with its own id: two PETModels on one backbone never see each other's modules.

The backbone always stays in eval mode: its weights are frozen and LoRA dropout is 0, so training
and prediction compute the same function (and cached logits stay valid). Only the LoRA weights and
the head of the module named in ``set_trainable`` have ``requires_grad``.

Defaults: rank 4 (the paper, all experiments) and ``lora_alpha = 8`` (peft's default; scaling
alpha / r = 2). The authors' code uses alpha 1 (scaling 0.25) with a 7B model; on the small
backbones here with the paper's learning rates (1e-4 .. 5e-4) and few steps, that scale learns
about 8x slower, so the default is peft's; ``LoraSettings(alpha=1)`` reproduces the paper's.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from conpet.core.config import LoraSettings  # defined with the other settings; imported from here too
from conpet.core.errors import ConpetError
from conpet.core.files import replace_folder
from conpet.model.backbones import Backbone
from conpet.model.encoding import Batch
from conpet.model.representations import REPRESENTATIONS, check_representation, layer_index

MODULE_FORMAT = "conpet-pet-module"
MODULE_FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
_ids = itertools.count(1)


def read_representation(states: torch.Tensor, batch: Batch, representation: str) -> torch.Tensor:
    """[B, T, H] hidden states -> [B, H * width] float32 at the representation's positions."""
    rows = torch.arange(states.shape[0], device=states.device)
    mask = states[rows, batch.mask_index.to(states.device)]
    if representation == "mask":
        return mask.float()
    check_representation(representation)
    if batch.marker_index is None:
        raise ValueError("this batch has no marker positions (encode it with ConpetEncoder.collate)")
    m = batch.marker_index.to(states.device)
    return torch.cat([states[rows, m[:, 0]], states[rows, m[:, 1]], mask], dim=-1).float()


class ModuleError(ConpetError):
    """A PET module folder that cannot be loaded, or a bad module name (names the path or module)."""


class _SharedPeft:
    """The one peft model wrapping a backbone's model, shared by every PETModel on that backbone."""

    def __init__(self, backbone: Backbone) -> None:
        self.backbone = backbone
        self.model: Any = None  # peft.PeftModel, created with the first adapter
        self.lock = threading.RLock()  # adapter switching + forward happen under it
        self.trainable: set[str] = set()
        self.params: dict[str, list[nn.Parameter]] = {}

    @classmethod
    def of(cls, backbone: Backbone) -> _SharedPeft:
        with _registry_lock:
            if backbone._peft is None:
                backbone._peft = cls(backbone)
            return backbone._peft

    def add(self, adapter: str, config: Any) -> None:
        from peft import get_peft_model

        with self.lock:
            try:
                if self.model is None:
                    with warnings.catch_warnings():  # transformers' is_gradient_checkpointing deprecation
                        warnings.simplefilter("ignore", FutureWarning)
                        self.model = get_peft_model(self.backbone.model, config, adapter_name=adapter)
                else:
                    self.model.add_adapter(adapter, config)
            except ValueError as exc:  # peft: "Target modules ... not found in the base model"
                targets = sorted(config.target_modules or [])
                raise ModuleError(
                    f"LoRA targets {targets} do not fit backbone {self.backbone.name!r} "
                    f"(its default targets: {self.backbone.lora_targets}): {exc}"
                ) from exc
            self.model.eval()
            self.params[adapter] = [
                p for n, p in self.model.named_parameters() if adapter in n.split(".") and "lora_" in n
            ]
            if not self.params[adapter]:
                raise ModuleError(f"adapter {adapter!r}: LoRA found no target modules")
            self.sync_grads()

    def delete(self, adapter: str) -> None:
        with self.lock:
            if self.model is not None and adapter in self.model.peft_config:
                if len(self.model.peft_config) == 1:
                    # peft cannot delete the last adapter; zero it instead of leaving a live one
                    for p in self.params[adapter]:
                        p.data.zero_()
                else:
                    with warnings.catch_warnings():  # "adapter was active, now deleted": expected
                        warnings.simplefilter("ignore", UserWarning)
                        self.model.delete_adapter(adapter)
            self.params.pop(adapter, None)
            self.trainable.discard(adapter)
            self.sync_grads()

    def activate(self, adapter: str) -> None:
        """Make ``adapter`` the active one (caller holds the lock)."""
        if self.model.active_adapter != adapter:
            self.model.set_adapter(adapter, inference_mode=True)
            self.sync_grads()

    def sync_grads(self) -> None:
        """peft's set_adapter / disable_adapter flip requires_grad; put back what PETModels asked for."""
        for adapter, params in self.params.items():
            want = adapter in self.trainable
            for p in params:
                if p.requires_grad != want:
                    p.requires_grad_(want)


_registry_lock = threading.Lock()


class PETModel:
    """Several named PET modules (LoRA adapter + linear head) on one frozen backbone."""

    def __init__(self, backbone: Backbone, lora: LoraSettings | None = None) -> None:
        self.backbone = backbone
        self.lora = lora or LoraSettings()
        self.heads = nn.ModuleDict()
        self._shared = _SharedPeft.of(backbone)
        self._prefix = f"m{next(_ids)}_"
        self._settings: dict[str, LoraSettings] = {}
        self._repr: dict[str, str] = {}  # module -> representation its head reads
        self._trainable: str | None = None

    # --- bookkeeping ---------------------------------------------------------------------------

    @property
    def module_names(self) -> list[str]:
        return list(self.heads.keys())

    def n_outputs(self, name: str) -> int:
        return int(self._head(name).out_features)

    def settings(self, name: str) -> LoraSettings:
        self._head(name)
        return self._settings[name]

    def _adapter(self, name: str) -> str:
        return self._prefix + name

    def _head(self, name: str) -> nn.Linear:
        if name not in self.heads:
            raise KeyError(f"no PET module named {name!r} (have: {', '.join(self.module_names) or 'none'})")
        return self.heads[name]  # type: ignore[return-value]

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ModuleError(f"bad module name {name!r}: use letters, digits, '_' and '-' (at most 100)")
        if name in self.heads:
            raise ModuleError(f"a PET module named {name!r} already exists")

    def _lora_config(self, settings: LoraSettings) -> Any:
        from peft import LoraConfig

        targets = list(settings.targets) if settings.targets else list(self.backbone.lora_targets)
        return LoraConfig(
            r=settings.rank,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=targets,
            bias="none",
        )

    def _new_head(self, n_outputs: int, representation: str = "mask") -> nn.Linear:
        width = self.backbone.hidden_size * REPRESENTATIONS[representation]
        return nn.Linear(width, n_outputs).to(self.backbone.device, torch.float32)

    # --- building ------------------------------------------------------------------------------

    def add_module(self, name: str, n_outputs: int, init_from: str | None = None,
                   representation: str = "mask") -> None:
        """A new module: fresh LoRA (B = 0, so it starts as the plain backbone) and a head with
        ``n_outputs`` rows over ``representation``; with ``init_from`` its LoRA weights are copied from
        that module."""
        self._check_new_name(name)
        if n_outputs < 1:
            raise ValueError(f"a module needs at least one output, got {n_outputs}")
        check_representation(representation)
        settings = self.lora
        if init_from is not None:
            self._head(init_from)
            settings = self._settings[init_from]
        self._shared.add(self._adapter(name), self._lora_config(settings))
        self._settings[name] = settings
        self._repr[name] = representation
        self.heads[name] = self._new_head(n_outputs, representation)
        if init_from is not None:
            self._copy_lora(init_from, name)
        self._apply_trainable()

    def _copy_lora(self, source: str, target: str) -> None:
        with torch.no_grad():
            for src, dst in zip(
                self._shared.params[self._adapter(source)],
                self._shared.params[self._adapter(target)],
                strict=True,
            ):
                dst.copy_(src)

    def grow_head(self, name: str, n_new: int) -> None:
        """Append ``n_new`` output rows to a module's head; old rows and biases are kept exactly.
        (The head is a new Parameter: rebuild any optimizer that held the old one.)"""
        if n_new < 0:
            raise ValueError(f"n_new must be >= 0, got {n_new}")
        old = self._head(name)
        if n_new == 0:
            return
        new = self._new_head(old.out_features + n_new, self.representation(name))
        with torch.no_grad():
            new.weight[: old.out_features].copy_(old.weight)
            new.bias[: old.out_features].copy_(old.bias)
        self.heads[name] = new
        self._apply_trainable()

    def remove_module(self, name: str) -> None:
        self._head(name)
        self._shared.delete(self._adapter(name))
        del self.heads[name]
        del self._settings[name]
        self._repr.pop(name, None)
        if self._trainable == name:
            self.set_trainable(None)

    def close(self) -> None:
        """Remove every module of this model from the shared peft model."""
        for name in self.module_names:
            self.remove_module(name)

    # --- training state ------------------------------------------------------------------------

    def module_parameters(self, name: str) -> list[nn.Parameter]:
        """LoRA weights and head of one module: what its optimizer trains. Order is fixed: the LoRA
        tensors (peft's parameter order), then the head's weight, then its bias."""
        head = self._head(name)
        return [*self._shared.params[self._adapter(name)], *head.parameters()]

    def parameter_count(self, name: str) -> int:
        return sum(p.numel() for p in self.module_parameters(name))

    def set_trainable(self, name: str | None) -> None:
        """Only module ``name`` (LoRA + head) gets requires_grad; None freezes every module."""
        if name is not None:
            self._head(name)
        self._trainable = name
        self._apply_trainable()

    def _apply_trainable(self) -> None:
        with self._shared.lock:
            mine = {self._adapter(n) for n in self.heads}
            self._shared.trainable -= mine
            if self._trainable is not None:
                self._shared.trainable.add(self._adapter(self._trainable))
            self._shared.sync_grads()
        for n, head in self.heads.items():
            head.requires_grad_(n == self._trainable)

    # --- forward -------------------------------------------------------------------------------

    def _forward(self, batch: Batch, representation: str = "mask", layers: Sequence[str] = ("last",)) -> torch.Tensor:
        batch = batch.to(self.backbone.device)
        model = self._shared.model if self._shared.model is not None else self.backbone.model
        inner = tuple(layers) != ("last",)  # other layers' states come only when asked (they cost memory)
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    **({"output_hidden_states": True} if inner else {}))
        reads = []
        for layer in layers:
            if layer == "last":
                states = out.last_hidden_state
            else:
                states = out.hidden_states[layer_index(layer, len(out.hidden_states) - 1)]
            reads.append(read_representation(states, batch, representation))
        return reads[0] if len(reads) == 1 else torch.cat(reads, dim=-1)

    def representation(self, name: str) -> str:
        """What module ``name``'s head reads: "mask" or "markers" (see ``REPRESENTATIONS``)."""
        self._head(name)
        return self._repr.get(name, "mask")

    def feature_size(self, name: str) -> int:
        return self.backbone.hidden_size * REPRESENTATIONS[self.representation(name)]

    def hidden(self, batch: Batch, name: str | None, representation: str | None = None,
               layers: Sequence[str] = ("last",)) -> torch.Tensor:
        """Hidden states at the positions of ``representation`` (default: the module's own) with module
        ``name``'s adapter (None: no adapter, default "mask"), [B, H * width * len(layers)] float32: the
        final layer's by default, else those of ``layers`` concatenated in that order
        (``conpet.model.representations.FEATURE_LAYERS``)."""
        shared = self._shared
        with shared.lock:
            if name is None:
                with self._no_adapter():
                    return self._forward(batch, representation or "mask", layers)
            rep = representation or self.representation(name)
            shared.activate(self._adapter(name))
            return self._forward(batch, rep, layers)

    def head_logits(self, name: str, features: torch.Tensor) -> torch.Tensor:
        """Module ``name``'s head over wider features that end with what it reads (a feature map's
        several layers of "markers": the final layer's come last, and "mask" is the last H of "markers"),
        or over its own representation: one pass can serve a feature map and the module's logits."""
        size = self.feature_size(name)
        if features.shape[-1] != size:
            features = features[..., -size:]
        return self._head(name)(features)

    @contextmanager
    def _no_adapter(self) -> Iterator[None]:
        shared = self._shared
        if shared.model is None:
            yield
            return
        try:
            with shared.model.disable_adapter():
                yield
        finally:
            shared.sync_grads()

    def logits(self, batch: Batch, name: str) -> torch.Tensor:
        """``f(M, x)``: the module's head over its representation, [B, n_outputs(name)] float32."""
        return self._head(name)(self.hidden(batch, name))

    # --- persistence ---------------------------------------------------------------------------

    def save_module(self, name: str, folder: str | Path) -> Path:
        """Write ``folder`` with adapter_config.json + adapter_model.safetensors (peft's own save),
        head.safetensors and module.json; replaces an existing folder as a whole."""
        from safetensors.torch import save_file

        head = self._head(name)
        adapter = self._adapter(name)

        def write(out: Path) -> None:
            with self._shared.lock:
                peft_dir = out / "peft"
                self._shared.model.save_pretrained(str(peft_dir), selected_adapters=[adapter])
                self._shared.sync_grads()
            for fname in ("adapter_config.json", "adapter_model.safetensors"):
                shutil.move(str(peft_dir / adapter / fname), str(out / fname))
            shutil.rmtree(peft_dir)
            tensors = {
                "weight": head.weight.detach().cpu().contiguous(),
                "bias": head.bias.detach().cpu().contiguous(),
            }
            save_file(tensors, str(out / "head.safetensors"), metadata={"format": "pt"})
            (out / "module.json").write_text(
                json.dumps(self._module_info(name), indent=2, sort_keys=True) + "\n"
            )

        return replace_folder(folder, write)

    def _module_info(self, name: str) -> dict[str, Any]:
        import peft
        import transformers

        return {
            "format": MODULE_FORMAT,
            "format_version": MODULE_FORMAT_VERSION,
            "name": name,
            "n_outputs": self.n_outputs(name),
            "hidden_size": self.backbone.hidden_size,
            "representation": self.representation(name),
            "lora": self._settings[name].to_dict(),
            "lora_targets": list(self._settings[name].targets or self.backbone.lora_targets),
            "backbone": {"name": self.backbone.name, "model_type": self.backbone.model_type},
            "versions": {
                "peft": peft.__version__,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
        }

    def load_module(self, folder: str | Path, name: str) -> None:
        """Add module ``name`` from a folder written by ``save_module`` (checked before anything changes)."""
        from peft import LoraConfig
        from peft.utils import load_peft_weights, set_peft_model_state_dict
        from safetensors.torch import load_file

        folder = Path(folder)
        self._check_new_name(name)
        if not folder.is_dir():
            raise ModuleError(f"{folder}: not a PET module folder (no such folder)")
        missing = [
            f
            for f in ("module.json", "adapter_config.json", "adapter_model.safetensors", "head.safetensors")
            if not (folder / f).is_file()
        ]
        if missing:
            raise ModuleError(f"{folder}: not a PET module folder, missing {', '.join(missing)}")
        try:
            info = json.loads((folder / "module.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModuleError(f"{folder / 'module.json'}: unreadable ({exc})") from exc
        if not isinstance(info, dict) or info.get("format") != MODULE_FORMAT:
            raise ModuleError(f"{folder / 'module.json'}: not a {MODULE_FORMAT} file")
        if int(info.get("format_version", 0)) > MODULE_FORMAT_VERSION:
            raise ModuleError(
                f"{folder / 'module.json'}: format version {info.get('format_version')} is newer than this "
                f"program reads ({MODULE_FORMAT_VERSION})"
            )
        if int(info.get("hidden_size", -1)) != self.backbone.hidden_size:
            raise ModuleError(
                f"{folder}: made for a backbone with hidden size {info.get('hidden_size')} "
                f"({info.get('backbone', {}).get('name')}), this one has {self.backbone.hidden_size}"
            )
        try:
            head_tensors = load_file(str(folder / "head.safetensors"))
            config = LoraConfig.from_pretrained(str(folder))
            weights = load_peft_weights(str(folder), device="cpu")
            settings = LoraSettings.from_dict(info["lora"])
        except Exception as exc:
            raise ModuleError(f"{folder}: unreadable module files ({exc})") from exc
        n = int(info.get("n_outputs", -1))
        representation = info.get("representation", "mask")  # modules saved before it existed read [MASK]
        if representation not in REPRESENTATIONS:
            raise ModuleError(f"{folder / 'module.json'}: unknown representation {representation!r} "
                              f"(this version reads {', '.join(REPRESENTATIONS)})")
        width = self.backbone.hidden_size * REPRESENTATIONS[representation]
        w, b = head_tensors.get("weight"), head_tensors.get("bias")
        if (
            w is None
            or b is None
            or tuple(w.shape) != (n, width)
            or tuple(b.shape) != (n,)
        ):
            raise ModuleError(
                f"{folder / 'head.safetensors'}: head does not match module.json (n_outputs {n}, "
                f"representation {representation})"
            )
        config.inference_mode = False
        config.base_model_name_or_path = None  # the backbone is given (a bundle names it, not its local path)
        adapter = self._adapter(name)
        try:
            self._shared.add(adapter, config)
        except ModuleError as exc:
            raise ModuleError(f"{folder}: {exc}") from exc
        try:
            with self._shared.lock:
                result = set_peft_model_state_dict(self._shared.model, weights, adapter_name=adapter)
                unexpected = list(getattr(result, "unexpected_keys", []) or [])
                expected = len(self._shared.params[adapter])
                if unexpected or len(weights) != expected:
                    raise ModuleError(
                        f"{folder / 'adapter_model.safetensors'}: {len(weights)} tensors for {expected} LoRA "
                        f"weights of this backbone (unexpected: {unexpected[:3]})"
                    )
                self._shared.sync_grads()
        except Exception:
            self._shared.delete(adapter)
            raise
        head = self._new_head(n, representation)
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b)
        self.heads[name] = head
        self._settings[name] = settings
        self._repr[name] = representation
        self._apply_trainable()
