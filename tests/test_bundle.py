"""Adapter bundles: round trip in folder and zip form, predictions equal to the in-process method's
(also from a fresh process), and every refusal case (checksums, backbone, format version, file types,
undeclared and missing files, zip slip, symlinks), atomic writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from conpet.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    Bundle,
    BundleError,
    BundleInfo,
    backbone_info,
    read_manifest,
    verify_bundle,
    write_bundle,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "resources" / "demo" / "demo.jsonl"


def _tiny_tasks(per_type: int = 6):
    from conpet.data.jsonl import read_jsonl
    from conpet.data.tasks import TaskData, split_examples

    by = defaultdict(list)
    for ex in read_jsonl(DEMO):
        by[ex.label].append(ex)
    out = []
    for k, types in enumerate((("Person", "City"), ("Company", "Drug"))):
        exs = [e for t in types for e in by[t][:per_type]]
        tr, va, te = split_examples(exs, 1)
        out.append(TaskData(k, types, tr, va, te))
    return out


@pytest.fixture(scope="module")
def trained(minilm):
    """A Dynamic ConPET model that has learnt two tiny tasks (a few batches each), and its predictions."""
    import torch

    from conpet.core.config import TrainConfig
    from conpet.methods.registry import make_method

    torch.manual_seed(0)
    tasks = _tiny_tasks()
    cfg = TrainConfig(lr=1e-3, batch_limit=2, max_epochs=1, min_valid_per_task=2, eval_batch_size=8)
    method = make_method("dynamic", minilm, cfg)
    for k, t in enumerate(tasks):
        method.learn_task(t, tasks[:k])
    test = [ex for t in tasks for ex in t.train[:3] + t.test]
    # Another torch thread count sums in another order (the last digits of a float differ), and an earlier
    # in-process command may have picked the thread count from the machine's load: record the one used here.
    method.prediction_threads = torch.get_num_threads()
    return method, tasks, test, method.predict(test)


def _info(minilm, **kw):
    tasks = [{"index": 0, "name": "people and places",
              "types": [{"name": "Person", "kind": "entity", "description": "a human"},
                        {"name": "City", "kind": "entity", "description": "a town"}]},
             {"index": 1, "name": "business", "types": [{"name": "Company", "kind": "entity", "description": ""},
                                                       {"name": "Drug", "kind": "entity", "description": ""}]}]
    return BundleInfo(backbone=backbone_info(minilm), tasks=tasks,
                      metrics=[{"step": 1, "whole_acc": 0.5, "avg_acc": 0.5}], data={"tasks": []}, **kw)


@pytest.fixture(scope="module")
def bundles(trained, minilm, tmp_path_factory):
    method = trained[0]
    base = tmp_path_factory.mktemp("bundles")
    folder = write_bundle(method, base / "model", _info(minilm))
    zipped = write_bundle(method, base / "model.zip", _info(minilm))
    return folder, zipped


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    return dst


def _rewrite_manifest(folder: Path, fn, reseal: bool = False) -> None:
    """Edit a bundle's manifest by hand; ``reseal`` also re-computes its digest (a careful forger)."""
    from conpet.bundle.checks import DIGEST_KEY, manifest_digest

    man = json.loads((folder / MANIFEST).read_text())
    fn(man)
    if reseal:
        man[DIGEST_KEY] = manifest_digest(man)
    (folder / MANIFEST).write_text(json.dumps(man))


def _refused(path, reason: str, **kw) -> BundleError:
    with pytest.raises(BundleError) as info:
        verify_bundle(path, **kw)
    assert info.value.reason == reason, str(info.value)
    return info.value


# --- format and round trip -----------------------------------------------------------------------


def test_layout_and_manifest(bundles, minilm, trained):
    folder, zipped = bundles
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert MANIFEST in names and "README.md" in names and "method.json" in names
    for mod in ("selector", "expert_0", "expert_1"):
        for f in ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "module.json"):
            assert f"{mod}/{f}" in names
    assert all(Path(n).suffix in (".json", ".safetensors", ".md") for n in names)
    man = verify_bundle(folder)
    assert man["format_version"] == FORMAT_VERSION and man["method"] == "dynamic"
    assert man["backbone"]["sha256"] == minilm.weights_sha256() and man["backbone"]["name"] == "minilm"
    assert [[t["name"] for t in task["types"]] for task in man["tasks"]] == [["Person", "City"], ["Company", "Drug"]]
    assert man["tasks"][0]["types"][0]["description"] == "a human"
    assert man["encoder"]["max_length_entity"] == 256 and man["metrics"][0]["whole_acc"] == 0.5
    assert man["created_at"] and man["conpet_version"]
    assert set(man["files"]) == set(names) - {MANIFEST}
    for name, entry in man["files"].items():
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert {m["name"] for m in man["modules"]} == {"selector", "expert_0", "expert_1"}
    assert all(m["parameter_count"] > 0 for m in man["modules"])
    assert json.loads((folder / "method.json").read_text())["config"]["device"] is None
    card = (folder / "README.md").read_text()
    assert "Person" in card and "Bundle.load" in card and minilm.weights_sha256() in card
    # the zip holds the same layout at its root
    with zipfile.ZipFile(zipped) as zf:
        assert sorted(zf.namelist()) == names
    zman = read_manifest(zipped)["files"]
    assert {k: v for k, v in zman.items() if k != "README.md"} == {k: v for k, v in man["files"].items() if k != "README.md"}


@pytest.mark.parametrize("form", ["folder", "zip"])
def test_round_trip_predictions_equal(bundles, trained, minilm, form):
    method, _, test, expected = trained
    path = bundles[0] if form == "folder" else bundles[1]
    bundle = Bundle.load(path, minilm)
    try:
        got = bundle.predict_examples(test)
        assert [p.to_dict() for p in got] == [p.to_dict() for p in expected]
        assert bundle.types == ["Person", "City", "Company", "Drug"] and bundle.method_name == "dynamic"
    finally:
        bundle.close()


def test_predict_sentences(bundles, trained, minilm):
    method, _, test, expected = trained
    bundle = Bundle.load(bundles[1], minilm)
    try:
        ex = test[0]
        s = {"text": ex.text, "id": "s1", "entities": [{"start": ex.spans[0].start, "end": ex.spans[0].end,
                                                          "type": ex.label}]}
        (res,) = bundle.predict([s])
        (m,) = res.mentions
        assert res.id == "s1" and m.kind == "entity" and m.gold == ex.label and m.text == ex.mention
        # a batch of one pads differently from the batch of 8 behind `expected`: equal up to float rounding
        assert (m.label, m.active_experts) == (expected[0].label, expected[0].active_experts)
        assert m.score == pytest.approx(expected[0].score, abs=1e-5)
        assert len(m.selector_scores) == 2 and set(m.expert_scores) <= set(bundle.types)
        d = res.to_dict()
        assert d["predictions"][0]["start"] == ex.spans[0].start and "module_versions" in d["predictions"][0]
        # a sentence object and an entity without a type work too; relations need two entity indices
        from conpet.data.jsonl import Entity, Sentence

        (r2,) = bundle.predict([Sentence(ex.text, (Entity(ex.spans[0].start, ex.spans[0].end),))])
        assert r2.mentions[0].label == m.label and r2.mentions[0].score == m.score and r2.mentions[0].gold is None
        with pytest.raises(ValueError, match="relation 0"):
            bundle.predict([{"text": "a b", "entities": [{"start": 0, "end": 1}], "relations": [{"head": 0, "tail": 0}]}])
    finally:
        bundle.close()


def test_fresh_process_gives_identical_predictions(bundles, trained, tmp_path):
    method, _, test, expected = trained
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps([{"text": e.text, "spans": [[s.start, s.end] for s in e.spans], "label": e.label,
                                     "kind": e.kind, "id": e.id} for e in test]))
    script = textwrap.dedent(f"""
        import json, sys
        import torch
        torch.set_num_threads({method.prediction_threads})
        from conpet.bundle import Bundle
        from conpet.data.example import Example, Span
        raw = json.load(open({str(examples)!r}))
        exs = [Example(r["text"], tuple(Span(*s) for s in r["spans"]), r["label"], r["kind"], id=r["id"]) for r in raw]
        b = Bundle.load({str(bundles[1])!r}, device="cpu")
        print(json.dumps([p.to_dict() for p in b.predict_examples(exs)]))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == [p.to_dict() for p in expected]


def test_zip_of_the_folder_with_a_top_directory_loads(bundles, tmp_path):
    folder = bundles[0]
    z = tmp_path / "zipped-by-hand.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, "model/" + p.relative_to(folder).as_posix())
    assert verify_bundle(z)["method"] == "dynamic"


def test_write_from_a_saved_folder(trained, minilm, tmp_path):
    method = trained[0]
    method.save(tmp_path / "saved")
    out = write_bundle(tmp_path / "saved", tmp_path / "b", _info(minilm))
    assert verify_bundle(out)["types"] == ["Person", "City", "Company", "Drug"]


def test_task_descriptions_must_match_the_model(trained, minilm, tmp_path):
    info = _info(minilm)
    info.tasks[1]["types"][0]["name"] = "Firm"
    with pytest.raises(BundleError, match="differ from the model"):
        write_bundle(trained[0], tmp_path / "b", info)
    assert not (tmp_path / "b").exists() and not list(tmp_path.iterdir())


# --- refusals ------------------------------------------------------------------------------------


def test_checksum_mismatch_folder_and_zip(bundles, tmp_path):
    folder = _copy(bundles[0], tmp_path / "f")
    head = folder / "expert_0" / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 0x01
    head.write_bytes(bytes(data))
    err = _refused(folder, "checksum")
    assert "expert_0/head.safetensors" in str(err)
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(bundles[1]) as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == "selector/adapter_model.safetensors":
                raw = raw[:-1] + bytes([raw[-1] ^ 1])
            dst.writestr(info, raw)
    assert "selector/adapter_model.safetensors" in str(_refused(z, "checksum"))


def test_backbone_mismatch(bundles, minilm, tmp_path):
    other = dataclasses.replace(minilm, _sha256="0" * 64)
    with pytest.raises(BundleError) as info:
        Bundle.load(bundles[1], other)
    assert info.value.reason == "backbone" and "mismatch" in str(info.value)
    folder = _copy(bundles[0], tmp_path / "f")
    _rewrite_manifest(folder, lambda m: m["backbone"].update(sha256="f" * 64), reseal=True)
    with pytest.raises(BundleError) as info:
        Bundle.load(folder, minilm)
    assert info.value.reason == "backbone"


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, "1"])
def test_unknown_format_version(bundles, tmp_path, version):
    folder = _copy(bundles[0], tmp_path / "f")
    _rewrite_manifest(folder, lambda m: m.update(format_version=version))
    err = _refused(folder, "format_version")
    if version == FORMAT_VERSION + 1:
        assert "newer" in str(err) and "update" in str(err)


@pytest.mark.parametrize("name", ["evil.pkl", "expert_0/weights.bin", "run.py", "selector/model.pt", "noext"])
def test_undeclared_file_type_refused(bundles, tmp_path, name):
    folder = _copy(bundles[0], tmp_path / "f")
    (folder / name).write_bytes(b"\x80\x04K\x01.")
    err = _refused(folder, "file_type")
    assert name in str(err)


def test_declared_pickle_refused(bundles, tmp_path):
    folder = _copy(bundles[0], tmp_path / "f")
    raw = b"\x80\x04K\x01."
    (folder / "extra.pkl").write_bytes(raw)
    _rewrite_manifest(folder, lambda m: m["files"].update({"extra.pkl": {
        "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}}))
    assert "declares" in str(_refused(folder, "file_type"))


def test_undeclared_allowed_file_refused(bundles, tmp_path):
    folder = _copy(bundles[0], tmp_path / "f")
    (folder / "notes.json").write_text("{}")
    _refused(folder, "extra_file")


def test_missing_files(bundles, tmp_path):
    folder = _copy(bundles[0], tmp_path / "f")
    (folder / "expert_1" / "head.safetensors").unlink()
    assert "expert_1/head.safetensors" in str(_refused(folder, "missing_file"))
    folder2 = _copy(bundles[0], tmp_path / "g")
    _rewrite_manifest(folder2, lambda m: m["files"].pop("expert_1/module.json"))
    (folder2 / "expert_1" / "module.json").unlink()
    _refused(folder2, "missing_file")  # the module entry still needs it


def test_not_a_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(tmp_path / "empty", "not_a_bundle")
    _refused(tmp_path / "nothing-here", "not_found")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    _refused(tmp_path / "junk.zip", "not_a_bundle")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / MANIFEST).write_text("{not json")
    _refused(tmp_path / "m", "manifest")


def _rename_city(man) -> None:
    for ty in man["tasks"][0]["types"]:
        if ty["name"] == "City":
            ty["name"] = "Town"
    man["types"] = ["Town" if t == "City" else t for t in man["types"]]


def test_edited_manifest_refused(bundles, tmp_path, capsys):
    """Renaming a type by hand in manifest.json used to pass verify-bundle (predict then printed the old name)."""
    from conpet import cli

    folder = _copy(bundles[0], tmp_path / "f")
    _rewrite_manifest(folder, _rename_city)
    err = _refused(folder, "checksum")
    assert "manifest.json was changed after export" in str(err)
    with pytest.raises(BundleError, match="manifest.json was changed"):
        Bundle.load(folder)
    assert cli.main(["verify-bundle", str(folder)]) == 1
    assert "manifest.json was changed after export" in capsys.readouterr().err
    # the same edit inside a zip
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(bundles[1]) as src, zipfile.ZipFile(z, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            if info.filename == MANIFEST:
                man = json.loads(raw)
                _rename_city(man)
                raw = json.dumps(man).encode()
            dst.writestr(info, raw)
    _refused(z, "checksum")


def test_resealed_manifest_must_agree_with_the_modules(bundles, tmp_path):
    """A manifest whose digest was re-computed still has to describe the modules the model is built from."""
    folder = _copy(bundles[0], tmp_path / "renamed")
    _rewrite_manifest(folder, _rename_city, reseal=True)
    err = str(_refused(folder, "inconsistent"))
    assert "task 1" in err and "'Town'" in err and "'City'" in err

    def grow_expert(man):
        next(m for m in man["modules"] if m["name"] == "expert_1")["n_outputs"] = 3

    folder = _copy(bundles[0], tmp_path / "head")
    _rewrite_manifest(folder, grow_expert, reseal=True)
    err = str(_refused(folder, "inconsistent"))
    assert "module 'expert_1': head sizes disagree (manifest 3, module.json 2, head 2, tasks 2)" in err

    # module.json edited and its checksum updated: the head's real size gives it away
    folder = _copy(bundles[0], tmp_path / "module")
    info_file = folder / "selector" / "module.json"
    info = json.loads(info_file.read_text())
    info["n_outputs"] = 5
    info_file.write_text(json.dumps(info))
    raw = info_file.read_bytes()

    def reseal_file(man):
        man["files"]["selector/module.json"] = {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}

    _rewrite_manifest(folder, reseal_file, reseal=True)
    assert "module 'selector': head sizes disagree" in str(_refused(folder, "inconsistent"))

    folder = _copy(bundles[0], tmp_path / "method")
    _rewrite_manifest(folder, lambda m: m.update(method="static"), reseal=True)
    assert "method is 'static' in the manifest, 'dynamic' in method.json" in str(_refused(folder, "inconsistent"))


def test_adapter_configs_name_the_public_backbone_and_load_with_plain_peft(bundles, minilm):
    """peft wrote the trainer's local backbone folder into each adapter_config.json; a bundle names the
    backbone publicly, and each expert still loads with plain PeftModel.from_pretrained."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel

    folder = bundles[0]
    for module in ("selector", "expert_0", "expert_1"):
        config = json.loads((folder / module / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert str(minilm.path) not in "".join(p.read_text() for p in folder.glob("*/adapter_config.json"))
    assert verify_bundle(folder)["backbone"]["public_name"] == "sentence-transformers/all-MiniLM-L6-v2"

    base = AutoModel.from_pretrained(minilm.path, local_files_only=True)
    model = PeftModel.from_pretrained(base, str(folder / "expert_0"))
    saved = load_file(str(folder / "expert_0" / "adapter_model.safetensors"))
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(saved) > 0
    for key, value in saved.items():
        match = [v for k, v in loaded.items() if k.replace(".default", "") == key]
        assert len(match) == 1 and torch.equal(match[0], value), key
    with torch.no_grad():
        ids = minilm.tokenizer("Ada Lovelace was born in London.", return_tensors="pt")
        assert model(**ids).last_hidden_state.shape[-1] == minilm.hidden_size


def _zip_with(src_zip: Path, out: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(src_zip) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for name, raw in extra:
            dst.writestr(name, raw)
    return out


@pytest.mark.parametrize("member", ["../evil.json", "/etc/evil.json", "a/../../evil.json", "C:/evil.json",
                                    "a\\..\\evil.json", "./x.json"])
def test_zip_slip_refused(bundles, tmp_path, member):
    z = _zip_with(bundles[1], tmp_path / "slip.zip", [(member, b"{}")])
    _refused(z, "unsafe_path")
    with pytest.raises(BundleError):
        Bundle.load(z)
    assert not (tmp_path.parent / "evil.json").exists()


def test_zip_symlink_and_declared_slip_refused(bundles, tmp_path):
    info = zipfile.ZipInfo("link.json")
    info.external_attr = (0o120777 << 16)
    z = _zip_with(bundles[1], tmp_path / "link.zip", [(info, b"/etc/passwd")])
    _refused(z, "unsafe_path")
    folder = _copy(bundles[0], tmp_path / "f")
    _rewrite_manifest(folder, lambda m: m["files"].update({"../outside.json": {"sha256": "0" * 64, "size": 2}}))
    _refused(folder, "unsafe_path")


def test_folder_symlink_refused(bundles, tmp_path):
    folder = _copy(bundles[0], tmp_path / "f")
    (folder / "linked.json").symlink_to("/etc/hostname")
    _refused(folder, "unsafe_path")


# --- atomic writing ------------------------------------------------------------------------------


def test_existing_target_refused_unless_overwrite(trained, minilm, tmp_path):
    out = write_bundle(trained[0], tmp_path / "b.zip", _info(minilm))
    with pytest.raises(BundleError) as info:
        write_bundle(trained[0], out, _info(minilm))
    assert info.value.reason == "exists"
    write_bundle(trained[0], out, _info(minilm), overwrite=True)
    verify_bundle(out)


@pytest.mark.parametrize("target", ["b", "b.zip"])
def test_failure_mid_write_leaves_no_bundle(trained, minilm, tmp_path, monkeypatch, target):
    import conpet.bundle.writer as mod

    calls = {"n": 0}
    real = mod.sha256_stream

    def failing(chunks):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (simulated)")
        return real(chunks)

    monkeypatch.setattr(mod, "sha256_stream", failing)
    with pytest.raises(OSError, match="simulated"):
        write_bundle(trained[0], tmp_path / target, _info(minilm))
    assert list(tmp_path.iterdir()) == []  # no target, no temporary sibling left


def test_failed_overwrite_keeps_the_old_bundle(trained, minilm, tmp_path, monkeypatch):
    import conpet.bundle.writer as mod

    out = write_bundle(trained[0], tmp_path / "b", _info(minilm))
    before = verify_bundle(out)["files"]

    def boom(*a, **k):
        raise OSError("crash (simulated)")

    monkeypatch.setattr(mod, "model_card", boom)
    with pytest.raises(OSError):
        write_bundle(trained[0], out, _info(minilm), overwrite=True)
    assert verify_bundle(out)["files"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_killed_writer_never_leaves_a_half_bundle(bundles, trained, tmp_path):
    """SIGKILL a process while it writes a zip bundle (slowed down): the target is absent or complete."""
    method = trained[0]
    saved = tmp_path / "saved"
    method.save(saved)
    info = tmp_path / "info.json"
    info.write_text(json.dumps(read_manifest(bundles[0])["backbone"]))
    target = tmp_path / "out" / "b.zip"
    script = textwrap.dedent(f"""
        import json, time, zipfile
        import conpet.bundle as mod
        real = zipfile.ZipFile.write
        def slow(self, *a, **k):
            print("writing", flush=True)
            time.sleep(0.5)
            return real(self, *a, **k)
        zipfile.ZipFile.write = slow
        mod.write_bundle({str(saved)!r}, {str(target)!r}, mod.BundleInfo(backbone=json.load(open({str(info)!r}))))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for _ in range(3):  # a few members into the zip
            assert proc.stdout.readline().startswith("writing")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.1)
    assert not target.exists()
    leftovers = [p.name for p in target.parent.iterdir()]
    assert all(n.startswith(".b.zip.tmp-") for n in leftovers)


def test_overwrite_whose_final_rename_fails_keeps_the_old_bundle(trained, minilm, tmp_path, monkeypatch):
    """Issue 24 (8): the old folder bundle is moved aside before the new one takes its place; when that
    rename fails the old one must come back, not be deleted with the temporary folder."""
    out = write_bundle(trained[0], tmp_path / "b", _info(minilm))
    before = verify_bundle(out)["files"]
    real = Path.rename

    def failing(self, target):
        if Path(target) == out and self.name == "bundle":  # the new bundle's rename into place
            raise OSError("rename failed (simulated)")
        return real(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="simulated"):
        write_bundle(trained[0], out, _info(minilm), overwrite=True)
    monkeypatch.undo()
    assert verify_bundle(out)["files"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("command", ["verify", "read"])
def test_a_manifest_that_inflates_past_the_limit_is_refused_before_it_is_read(tmp_path, command):
    """Issue 24 (6): a small zip whose manifest inflates to 64 MiB (a 4 GiB one exhausts memory the same
    way) is refused from the zip's header: the manifest is never held in memory whole."""
    import tracemalloc

    from conpet.bundle.format import MAX_MANIFEST_BYTES

    bomb = tmp_path / "bomb.zip"
    size = 64 * 1024 * 1024
    assert size > MAX_MANIFEST_BYTES
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("manifest.json", "w") as f:
        block = b" " * (1 << 20)
        for _ in range(size // len(block)):
            f.write(block)
    assert bomb.stat().st_size < size // 100
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="larger than") as info:
            verify_bundle(bomb) if command == "verify" else read_manifest(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "manifest"
    assert peak < 8 * 1024 * 1024, f"{peak} bytes held while refusing the manifest"


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_export(trained, minilm, tmp_path):
    """Issue 24's crash campaign: a writer killed mid-export leaves a hidden temporary folder beside the
    target; the next export there removes it when its process is gone (a live writer's stays)."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        dead = tmp_path / f".b.zip.tmp-{gone.pid}@{host}-abcd1234"
        live = tmp_path / f".b.zip.tmp-{alive.pid}@{host}-efgh5678"
        foreign = tmp_path / f".b.zip.tmp-{gone.pid}@{host}-3-ijkl9012"  # host "<ours>-3": not ours
        for folder in (dead, live, foreign):
            (folder / "bundle").mkdir(parents=True)
            (folder / "bundle" / "manifest.json").write_text("{}")
        write_bundle(trained[0], tmp_path / "b.zip", _info(minilm))
        assert not dead.exists() and live.exists() and foreign.exists()
        verify_bundle(tmp_path / "b.zip")
    finally:
        alive.kill()
        alive.wait()
