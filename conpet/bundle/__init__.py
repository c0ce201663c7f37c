"""Adapter bundles: how trained knowledge leaves a project (to another project, a GPU server, or a
Python program), with provenance and without pickles.

A bundle is a folder, or one zip file holding the same layout at its root::

    manifest.json            format + version, conpet version, method, backbone (name, path, SHA-256 of
                             its weights), tasks in order (types with kind and description), encoder
                             settings, training config, metrics per step, data hashes, creation time,
                             the modules, the SHA-256 and size of every other file, and
                             ``manifest_sha256`` over the rest of the manifest (``conpet.bundle.checks``)
    README.md                model card: types, metrics, how to load
    method.json              the engine's method state (`PETMethod.save`)
    selector/ expert_0/ ...  one PET module each (`PETModel.save_module`): adapter_config.json,
    main/                    adapter_model.safetensors (peft), head.safetensors, module.json
    suggestions.json         optional (``conpet.suggest.suggestions``): the mention detector (detector/) and the
    detector/ relatedness/   relatedness gate (relatedness/) with their thresholds; listed in method.json's
                             ``extra.files`` like a router file, so copied and checksummed as any file

Only ``.json``, ``.safetensors`` and ``.md`` files may appear; anything else (a pickle, a script, a
symlink, a path leaving the bundle) is refused, as are checksum mismatches, missing or undeclared files,
an unknown format version, a manifest that was edited or disagrees with ``method.json`` and the modules
(type names, head sizes, versions) and, when loading, a backbone whose weights differ from the recorded ones.
Each adapter_config.json names the backbone by its public name, not the trainer's local folder.
Every refusal is a ``BundleError`` whose ``reason`` names the case and whose message says what to do.

Writing is atomic: the bundle is built in a temporary sibling of the target and renamed into place
(folder) or written to a temporary sibling file that replaces the target (zip), so a crash never
leaves a half-written bundle at the target path.

Loading from Python::

    from conpet.bundle import Bundle
    bundle = Bundle.load("people.conpet.zip")           # loads the recorded backbone, checks its SHA-256
    for s in bundle.predict([{"text": "Ada Lovelace was born in London.",
                              "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31}]}]):
        for m in s.mentions:
            print(m.kind, m.text, m.label, round(m.score, 3), m.active_experts)
"""

from conpet.bundle.card import model_card
from conpet.bundle.format import (
    ALLOWED_SUFFIXES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    file_sha256,
    read_manifest,
    unpacked,
    verify_bundle,
)
from conpet.bundle.runtime import (
    Bundle,
    MentionPrediction,
    SentencePrediction,
    resolve_backbone,
    sentence_prediction,
    sentence_queries,
)
from conpet.bundle.writer import BundleInfo, stage_method, tensor_count, write_bundle
from conpet.model.backbones import backbone_info

__all__ = [
    "ALLOWED_SUFFIXES", "FORMAT", "FORMAT_VERSION", "MANIFEST", "Bundle", "BundleError", "BundleInfo",
    "MentionPrediction", "SentencePrediction", "backbone_info", "file_sha256", "model_card", "read_manifest",
    "resolve_backbone", "sentence_prediction", "sentence_queries", "stage_method", "tensor_count", "unpacked",
    "verify_bundle", "write_bundle",
]
