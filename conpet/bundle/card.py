"""The model card (README.md) written into every bundle: what it knows, how well, and how to load it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _pct(v: Any) -> str:
    if isinstance(v, (int, float)) and v == v:
        return f"{100 * v:.1f}" if v <= 1.0 else f"{v:.1f}"
    return "–"


def _suggesters_lines(entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return []
    parts = []
    if entry.get("detector"):
        floor = entry.get("mention_threshold")
        parts.append("a mention detector (proposes entity spans in text without them" + (
            f", those it scores at least {floor:.3f}, a threshold chosen on validation sentences)"
            if isinstance(floor, (int, float)) and floor > 0 else ")"))
    if entry.get("relatedness"):
        parts.append(f"a relatedness gate (proposes a pair of mentions when P(related) >= "
                     f"{entry.get('relation_threshold')}; below it: no_relation)")
    return [f"- **Suggesters**: {'; '.join(parts)}", ""] if parts else []


def model_card(manifest: Mapping[str, Any], bundle_name: str = "BUNDLE") -> str:
    """The README.md of a bundle: what it knows, how well, and how to use it."""
    bb = manifest["backbone"]
    lines = [f"# {manifest.get('title') or 'ConPET adapter bundle'}", "",
             f"A ConPET Studio adapter bundle (format {manifest['format_version']}, conpet "
             f"{manifest['conpet_version']}), created {manifest['created_at']}.", "",
             f"- **Method**: `{manifest['method']}`",
             f"- **Backbone**: `{bb.get('name')}` (SHA-256 of its weights `{bb.get('sha256')}`); the same "
             "weights are required to load it.",
             f"- **Tasks**: {len(manifest['tasks'])}, **types**: {len(manifest['types'])}",
             "- **Modules**: " + ", ".join(f"`{m['name']}` ({m['parameter_count']:,} parameters)"
                                           for m in manifest["modules"]), "",
             *_suggesters_lines(manifest.get("suggesters")),
             "## Knowledge types, by task", ""]
    for t in manifest["tasks"]:
        lines.append(f"### {t['name']} (task {t['index'] + 1})")
        for ty in t["types"]:
            desc = f": {ty['description']}" if ty.get("description") else ""
            kind = f" ({ty['kind']})" if ty.get("kind") else ""
            lines.append(f"- `{ty['name']}`{kind}{desc}")
        lines.append("")
    metrics = manifest.get("metrics") or []
    if metrics:
        lines += ["## Metrics per step (held-out test examples, %)", "",
                  "| step | whole accuracy | average accuracy | selector accuracy |", "|---|---|---|---|"]
        for i, m in enumerate(metrics):
            lines.append(f"| {m.get('step', i + 1)} | {_pct(m.get('whole_acc'))} | {_pct(m.get('avg_acc'))} | "
                         f"{_pct(m.get('selector_acc'))} |")
        lines.append("")
    lines += [
        "## How to use", "",
        "From the command line (input: one JSON object per line with `text` and character-offset `entities`, "
        "and `relations` as head/tail entity indices):", "",
        "```", f"conpet predict {bundle_name} sentences.jsonl --out predictions.jsonl", "```", "",
        "From Python:", "",
        "```python",
        "from conpet.bundle import Bundle",
        "",
        f'bundle = Bundle.load("{bundle_name}")  # loads and checks the backbone',
        'result = bundle.predict([{"text": "Ada Lovelace was born in London.",',
        '                          "entities": [{"start": 0, "end": 12}, {"start": 25, "end": 31}]}])',
        "for m in result[0].mentions:",
        "    print(m.kind, m.text, m.label, m.score)",
        "```", "",
        "Into another ConPET Studio project: `conpet import-bundle PROJECT_DIR " + bundle_name + "`.", "",
        "Every file's SHA-256 is in `manifest.json`; a bundle that fails its checksums is refused.", "",
    ]
    return "\n".join(lines)
