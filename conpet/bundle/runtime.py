"""Using a bundle from Python: ``Bundle.load`` checks it and loads its backbone and method; ``Bundle.predict``
turns sentences with marked spans into typed mentions and relations with per-module scores."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.bundle.format import BundleError, unpacked
from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressLike, as_sink
from conpet.data.argument_rules import ArgumentRule, fit_pair, restricts_any, rule
from conpet.data.example import Example, Span


@dataclass(frozen=True)
class MentionPrediction:
    """One predicted mention (entity) or pair (relation) of a sentence."""

    kind: str
    spans: tuple[Span, ...]
    text: str  # the mention, or "head -> tail"
    label: str
    score: float
    gold: str | None = None
    selector_scores: list[float] | None = None
    active_experts: list[int] | None = None
    expert_scores: dict[str, float] = field(default_factory=dict)
    module_versions: dict[str, int] = field(default_factory=dict)
    example_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        if self.kind == "entity":
            d.update(start=self.spans[0].start, end=self.spans[0].end, mention=self.text)
        else:
            d.update(head={"start": self.spans[0].start, "end": self.spans[0].end},
                     tail={"start": self.spans[1].start, "end": self.spans[1].end}, pair=self.text)
        d.update(label=self.label, score=self.score)
        if self.gold is not None:
            d["gold"] = self.gold
        d.update(selector_scores=self.selector_scores, active_experts=self.active_experts,
                 expert_scores=self.expert_scores, module_versions=self.module_versions)
        return d


@dataclass(frozen=True)
class SentencePrediction:
    text: str
    id: str
    mentions: list[MentionPrediction]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text}
        if self.id:
            d["id"] = self.id
        d["predictions"] = [m.to_dict() for m in self.mentions]
        return d


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{what} must be an integer, got {v!r}")
    return v


def sentence_queries(item: Any, kinds: set[str] | None = None) -> tuple[str, str, list[Example]]:
    """(text, id, examples to classify) for one input: a JSONL-style dict (``text``, ``entities`` with
    ``start``/``end`` and optional ``type``, ``relations`` with ``head``/``tail`` indices and optional
    ``type``), a ``conpet.data.jsonl.Sentence``, or an ``Example``. ``kinds`` limits what is asked
    (a relation-only model gets no entity questions). ``ValueError`` says what is wrong."""
    if isinstance(item, Example):
        return item.text, item.id, [item]
    if hasattr(item, "to_json") and hasattr(item, "entities"):
        item = item.to_json()
    if not isinstance(item, Mapping):
        raise ValueError(f"expected a sentence object (text, entities, relations), got {type(item).__name__}")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    sid = item.get("id", "")
    sid = str(sid) if sid is not None else ""
    source = str(item.get("source", "") or "")
    ents_raw = item.get("entities", []) or []
    rels_raw = item.get("relations", []) or []
    if not isinstance(ents_raw, list) or not isinstance(rels_raw, list):
        raise ValueError("'entities' and 'relations' must be lists")
    spans: list[tuple[Span, str | None]] = []
    for i, e in enumerate(ents_raw):
        if not isinstance(e, Mapping):
            raise ValueError(f"entity {i} must be an object with start and end")
        s, t = _int(e.get("start"), f"entity {i} start"), _int(e.get("end"), f"entity {i} end")
        if not 0 <= s < t <= len(text):
            raise ValueError(f"entity {i}: span {s}:{t} is outside the text (length {len(text)})")
        ty = e.get("type")
        spans.append((Span(s, t), ty if isinstance(ty, str) and ty else None))
    want_entity = kinds is None or "entity" in kinds
    want_relation = kinds is None or "relation" in kinds
    out: list[Example] = []
    if want_entity:
        for sp, ty in spans:
            out.append(Example(text, (sp,), ty or "", "entity", source=source, meta={"sentence_id": sid}))
    for j, r in enumerate(rels_raw):
        if not isinstance(r, Mapping):
            raise ValueError(f"relation {j} must be an object with head and tail")
        h, t = _int(r.get("head"), f"relation {j} head"), _int(r.get("tail"), f"relation {j} tail")
        for role, k in (("head", h), ("tail", t)):
            if not 0 <= k < len(spans):
                have = f"indices 0..{len(spans) - 1}" if spans else "no entities"
                raise ValueError(f"relation {j}: {role} {k} is not an entity index (this line has "
                                 f"{len(spans)} entit{'y' if len(spans) == 1 else 'ies'}: {have})")
        if h == t:
            raise ValueError(f"relation {j}: head and tail are the same entity ({h}); a relation needs two")
        if want_relation:
            ty = r.get("type")
            out.append(Example(text, (spans[h][0], spans[t][0]), ty if isinstance(ty, str) else "", "relation",
                               source=source, meta={"sentence_id": sid}))
    return text, sid, out


def _mention_text(ex: Example) -> str:
    if ex.kind == "entity":
        return ex.mention
    h, t = ex.spans
    return f"{ex.text[h.start:h.end]} -> {ex.text[t.start:t.end]}"


def sentence_prediction(text: str, sid: str, examples: Sequence[Example], preds: Sequence[Any]) -> SentencePrediction:
    """One sentence's result from its examples and the engine's predictions for them (same order)."""
    ms = [MentionPrediction(ex.kind, ex.spans, _mention_text(ex), p.label, float(p.score), ex.label or None,
                            list(p.selector_scores) if p.selector_scores is not None else None,
                            list(p.active_experts) if p.active_experts is not None else None,
                            dict(p.expert_scores), dict(p.module_versions), ex.id)
          for ex, p in zip(examples, preds, strict=True)]
    return SentencePrediction(text, sid, ms)


def fit_sentence(examples: Sequence[Example], preds: Sequence[Any],
                 rules: Mapping[str, ArgumentRule]) -> list[tuple[Example, Any]]:
    """One sentence's (example, prediction) pairs with its relation predictions kept to ``rules``: an
    argument's entity type is the input's type for that span, else this pass's prediction for it."""
    pairs = list(zip(examples, preds, strict=True))
    if not restricts_any(rules):
        return pairs
    typed: dict[Span, str] = {}
    for ex, p in pairs:
        if ex.kind == "entity":
            typed.setdefault(ex.spans[0], ex.label or p.label)
    out = []
    for ex, p in pairs:
        if ex.kind == "relation":
            p = fit_pair(p, rules, typed.get(ex.spans[0]), typed.get(ex.spans[1]))
        if p is not None:
            out.append((ex, p))
    return out


# --- loading and predicting ----------------------------------------------------------------------


class Bundle:
    """A loaded bundle: its manifest and the method ready to predict.

    ``Bundle.load(path)`` verifies the files, loads the recorded backbone (or uses ``backbone``, a name,
    path or loaded ``Backbone``), refuses it when its weights' SHA-256 differs, and restores the modules.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], method: Any, backbone: Any,
                 suggesters: Any = None) -> None:
        from conpet.suggest.suggestions import Suggesters

        self.path = path
        self.manifest = manifest
        self.method = method
        self.backbone = backbone
        # the mention detector and the relatedness gate, when the bundle has them (conpet.suggest.suggestions)
        self.suggesters = suggesters if suggesters is not None else Suggesters()

    # --- what it knows ---
    @property
    def method_name(self) -> str:
        return str(self.manifest["method"])

    @property
    def types(self) -> list[str]:
        return list(self.manifest["types"])

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return list(self.manifest["tasks"])

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("metrics") or [])

    def argument_rules(self) -> dict[str, ArgumentRule]:
        """Every relation type of the bundle -> the entity types its head and tail take (from the project
        it was exported from; a bundle written before rules were kept restricts nothing)."""
        return {str(ty["name"]): rule(ty.get("head_types") or (), ty.get("tail_types") or ())
                for t in self.tasks for ty in t["types"] if ty.get("kind") == "relation"}

    @property
    def kinds(self) -> set[str] | None:
        ks = {ty.get("kind") for t in self.tasks for ty in t["types"]}
        return None if None in ks or not ks else {str(k) for k in ks}

    @classmethod
    def load(cls, path: str | Path, backbone: Any = None, *, device: str | None = None, cache: Any = None,
             progress: ProgressLike = None, relation_threshold: float | None = None,
             mention_threshold: float | None = None) -> Bundle:
        """``relation_threshold`` replaces the relatedness gate's saved threshold (a bundle with one),
        ``mention_threshold`` the mention detector's."""
        from conpet.methods.registry import load_method
        from conpet.suggest.suggestions import load_suggesters

        path = Path(path).expanduser()
        with unpacked(path, progress) as (folder, manifest):
            bb = resolve_backbone(manifest, backbone, device=device, where=path)
            try:
                method = load_method(folder, bb, cache=cache)
                suggesters = load_suggesters(folder, bb, relation_threshold, mention_threshold)
            except BundleError:
                raise
            except ConpetError as exc:
                raise BundleError(path, "manifest", f"the bundle's modules cannot be loaded: {exc}") from exc
        return cls(path, manifest, method, bb, suggesters)

    def with_suggestions(self, parsed: Sequence[tuple[str, str, list[Example]]]
                         ) -> tuple[list[list[Example]], dict[str, dict[str, float]]]:
        """Per sentence (``sentence_queries`` results), its questions plus the suggesters' proposals (mentions
        on a sentence without entities, candidate pairs above the threshold), and the proposals' scores by
        example id (to add to their predictions' ``expert_scores``). A bundle without suggesters adds none."""
        from conpet.suggest.suggestions import SentenceInput, suggest

        questions = [list(exs) for _, _, exs in parsed]
        if self.suggesters.detector is None and self.suggesters.relatedness is None:
            return questions, {}
        inputs = []
        for text, _sid, exs in parsed:
            mentions = tuple(dict.fromkeys(sp for ex in exs for sp in ex.spans))
            pairs = frozenset(ex.spans for ex in exs if ex.kind == "relation")
            inputs.append(SentenceInput(text, mentions, labelled=any(ex.kind == "entity" for ex in exs),
                                        pairs=pairs, relations_labelled=bool(pairs)))
        kinds = set(self.method.type_kinds.values()) or (self.kinds or {"entity", "relation"})
        scores: dict[str, dict[str, float]] = {}
        for sug in suggest(self.suggesters, inputs, kinds):
            if sug.example.id not in scores:
                questions[sug.sentence].append(sug.example)
                scores[sug.example.id] = sug.scores
        return questions, scores

    def predict_examples(self, examples: Sequence[Example], progress: ProgressLike = None) -> list[Any]:
        """The engine's ``Prediction`` per example (what the method itself returns)."""
        with self.method.job():  # each example is encoded once for the selector's and the experts' passes
            return list(self.method.predict(list(examples), as_sink(progress)))

    def predict(self, sentences: Iterable[Any], progress: ProgressLike = None) -> list[SentencePrediction]:
        """Predict every marked entity (and listed head/tail pair) of each sentence, and, with a bundle that
        has suggesters, the proposed mentions and pairs (``with_suggestions``; a sentence may then be text
        alone). A sentence is a dict in the JSONL form, a ``conpet.data.jsonl.Sentence`` or an ``Example``."""
        parsed = [sentence_queries(s, self.kinds) for s in sentences]
        return self.predict_parsed(parsed, progress)

    def predict_parsed(self, parsed: Sequence[tuple[str, str, list[Example]]],
                       progress: ProgressLike = None) -> list[SentencePrediction]:
        """``predict`` on ``sentence_queries`` results."""
        from conpet.suggest.suggestions import with_scores

        questions, scores = self.with_suggestions(parsed)
        flat = [ex for exs in questions for ex in exs]
        preds = self.predict_examples(flat, progress) if flat else []
        out, pos = [], 0
        rules = self.argument_rules()
        for (text, sid, _), exs in zip(parsed, questions, strict=True):
            mine = preds[pos:pos + len(exs)]
            pos += len(exs)
            kept = fit_sentence(exs, mine, rules)  # the declared head / tail types, before the gate's score
            kept = [(ex, with_scores(p, scores[p.example_id]) if p.example_id in scores else p) for ex, p in kept]
            out.append(sentence_prediction(text, sid, [ex for ex, _ in kept], [p for _, p in kept]))
        return out

    def close(self) -> None:
        """Remove this bundle's modules (and its suggesters') from the (possibly shared) backbone."""
        pet = getattr(self.method, "_pet", None)
        if pet is not None and hasattr(pet, "close"):
            pet.close()
        self.suggesters.close()


def resolve_backbone(manifest: Mapping[str, Any], backbone: Any = None, *, device: str | None = None,
                     where: str | Path = "") -> Any:
    """The backbone a bundle needs: ``backbone`` (loaded, or a name/path) or the recorded one; refused
    when its weights' SHA-256 differs from the manifest's."""
    from conpet.core.errors import BackboneError
    from conpet.model.backbones import BACKBONES, load_backbone

    rec = manifest["backbone"]
    if backbone is None or isinstance(backbone, (str, os.PathLike)):
        candidates = [str(backbone)] if backbone is not None else [
            c for c in (rec.get("name"), rec.get("path")) if c and (c in BACKBONES or Path(c).exists())]
        if not candidates:
            raise BundleError(where, "backbone",
                              f"the backbone {rec.get('name')!r} ({rec.get('path')}) is not available here; "
                              "pass the path of the same weights (backbone=... / --backbone)")
        try:
            backbone = load_backbone(candidates[0], device=device)
        except BackboneError as exc:
            raise BundleError(where, "backbone", f"cannot load the bundle's backbone: {exc}") from exc
    sha = backbone.weights_sha256()
    if sha != rec["sha256"]:
        raise BundleError(where, "backbone",
                          f"refused: backbone mismatch: the bundle was trained on {rec.get('name')!r} with weights "
                          f"SHA-256 {rec['sha256'][:16]}…, but {getattr(backbone, 'name', '?')!r} has {sha[:16]}…")
    if int(rec.get("hidden_size") or backbone.hidden_size) != int(backbone.hidden_size):
        raise BundleError(where, "backbone", "refused: backbone hidden size differs from the bundle's")
    return backbone
