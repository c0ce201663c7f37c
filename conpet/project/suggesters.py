"""A project's suggesters (``conpet.suggest.suggestions``): their training data from the store, one continual step
of each per training run, and the inputs for suggesting on the project's sentences.

Mention detector: every sentence with a current gold entity annotation is a fully labelled sentence (its
gold mentions B/I, the rest O); a rejected entity annotation (status "rejected") is an explicit negative,
also in a sentence with no gold entity (whose other tokens then teach nothing). Relation spans do not
count: a relation-only project marks heads and tails, not every mention, so it trains no detector.

The detector's validation sentences (``detector_validation``): once the project has
``VALIDATION_MIN_SENTENCES`` fully labelled sentences, one in ``VALIDATION_EVERY`` of them (by a hash of its
text, so the choice never changes; a sentence an earlier step trained on stays in training) is held out of
the detector's training, and the detector's mention threshold (``conpet.suggest.mention_threshold``) is chosen
on them whenever the detector trains or they change; otherwise the saved threshold stays (0, every
proposal, for a project too small to hold any out).

Relatedness gate: a sentence with a current gold relation annotation is labelled for relations: its gold
pairs are ``related``, every other ordered pair of its mentions (gold entities and relation arguments) is
``no_relation``, as TACRED's; a rejected relation annotation on a pair without a gold one is
``no_relation`` wherever it is.

Continual: ``training.json`` keeps, per suggester, the sentence ids of each earlier step and a hash of what
each sentence taught. A step trains on the sentences that are new or changed since, replaying the earlier
steps' sentences (with their current annotations); when nothing changed the saved suggester is kept as it
is. A project without entity types trains no detector, one without relation labels no gate; the run's
log and notes say so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.protocols import ProgressSink, ScaledSink
from conpet.data.example import Span
from conpet.suggest.mentions import MentionSentence
from conpet.suggest.suggestions import (
    DETECTOR_FOLDER,
    RELATEDNESS_FOLDER,
    SentenceInput,
    Suggesters,
    read_info,
)

STATE_KEY = "suggesters"
VALIDATION_MIN_SENTENCES = 30  # below this the detector keeps every sentence to learn from
VALIDATION_EVERY = 10  # one labelled sentence in this many is the detector's validation


@dataclass
class SuggesterStep:
    """What a training run did with the suggesters: them (to save), the training.json state, the notes."""

    suggesters: Suggesters
    state: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    trained: set[str] = field(default_factory=set)  # the suggesters (state keys) this step trained


def _annotations(project: Any) -> tuple[dict[int, str], dict[int, list[Any]]]:
    """(texts, current gold and rejected annotations) of every sentence that has any."""
    texts: dict[int, str] = {}
    anns: dict[int, list[Any]] = {}
    ids = project.sentences.ids()
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        found = {sid: a for sid, a in project.annotations.for_sentences(part).items() if a}
        if found:
            texts.update({sid: r.text for sid, r in project.sentences.get_many(list(found)).items()})
            anns.update(found)
    return texts, anns


def detector_sentences(project: Any) -> dict[int, MentionSentence]:
    """sentence id -> what it teaches the detector (see the module docstring)."""
    texts, anns = _annotations(project)
    out = {}
    for sid, rows in anns.items():
        gold = tuple(sorted({a.spans[0] for a in rows if a.kind == "entity" and a.status == "gold"},
                            key=lambda s: (s.start, s.end)))
        rejected = tuple(sorted({a.spans[0] for a in rows if a.kind == "entity" and a.status == "rejected"},
                                key=lambda s: (s.start, s.end)))
        if gold or rejected:
            out[sid] = MentionSentence(texts[sid], gold, rejected, complete=bool(gold))
    return out


def relatedness_pairs(project: Any) -> dict[int, list[Any]]:
    """sentence id -> the gate's labelled pairs there (see the module docstring)."""
    from conpet.suggest.relation_candidates import pair_example

    texts, anns = _annotations(project)
    out: dict[int, list[Any]] = {}
    for sid, rows in anns.items():
        gold_pairs = {a.spans for a in rows if a.kind == "relation" and a.status == "gold"}
        rejected = {a.spans for a in rows if a.kind == "relation" and a.status == "rejected"} - gold_pairs
        labelled: dict[tuple[Span, ...], bool] = dict.fromkeys(rejected, False)
        if gold_pairs:
            mentions = {a.spans[0] for a in rows if a.kind == "entity" and a.status == "gold"}
            mentions |= {s for pair in gold_pairs for s in pair}
            for h in mentions:
                for t in mentions:
                    if h != t:
                        labelled.setdefault((h, t), False)
            labelled.update(dict.fromkeys(gold_pairs, True))
        if labelled:
            text = texts[sid]
            out[sid] = [pair_example(text, p[0], p[1], related) for p, related in sorted(
                labelled.items(), key=lambda kv: [(s.start, s.end) for s in kv[0]])]
    return out


def detector_validation(data: Mapping[int, MentionSentence], saved: Mapping[str, Any]) -> set[int]:
    """The sentence ids held out of the detector's training to choose its threshold (the module docstring)."""
    if len(data) < VALIDATION_MIN_SENTENCES:
        return set()
    trained = {sid for step in saved.get("steps") or [] for sid in step}
    return {sid for sid, s in data.items() if s.complete and sid not in trained
            and int(hashlib.sha256(s.text.encode("utf-8")).hexdigest()[:8], 16) % VALIDATION_EVERY == 0}


def _digest(item: Any) -> str:
    return hashlib.sha256(repr(item).encode("utf-8")).hexdigest()[:16]


def _plan(data: Mapping[int, Any], saved: Mapping[str, Any]) -> tuple[list[int], list[list[int]], dict[str, str]]:
    """(new or changed sentence ids, earlier steps' ids still present, the hashes after this step)."""
    hashes = {str(sid): _digest(item) for sid, item in data.items()}
    before = dict(saved.get("hashes") or {})
    new = sorted(sid for sid in data if before.get(str(sid)) != hashes[str(sid)])
    fresh = set(new)
    old = [[sid for sid in step if sid in data and sid not in fresh] for step in saved.get("steps") or []]
    return new, [s for s in old if s], hashes


def train_suggesters(project: Any, backbone: Any, prev: Path | None, saved: Mapping[str, Any],
                     sink: ProgressSink | None = None, settings: Mapping[str, Mapping[str, Any]] | None = None,
                     budget: Mapping[str, Any] | None = None) -> SuggesterStep:
    """One continual step of the detector and of the relatedness gate (each skipped, with a note, when the
    project gives it nothing to learn). ``saved``: training.json's ``suggesters`` of the previous model;
    ``settings``: {"detector": DetectorSettings fields, "relatedness": RelatednessSettings fields} for a
    new suggester (a saved one keeps its own, but for ``budget``: batch_limit, seed)."""
    from conpet.suggest.detector import DetectorSettings, MentionDetector
    from conpet.suggest.relation_candidates import RelatednessScorer, RelatednessSettings

    settings = settings or {}
    info = read_info(prev) if prev is not None else None
    step = SuggesterStep(Suggesters())
    try:
        has_entities = any(t.kind == "entity" for t in project.types.list())
        det_data = detector_sentences(project) if has_entities else {}
        saved_det = dict(saved.get("detector") or {})
        held = detector_validation(det_data, saved_det)
        step.suggesters.detector = _one_step(
            "detector", "mention detector", {i: s for i, s in det_data.items() if i not in held}, saved_det, step,
            lambda: MentionDetector(backbone, _settings(DetectorSettings, settings.get("detector"), budget)),
            (lambda: MentionDetector.load(prev / DETECTOR_FOLDER, backbone))
            if info and info.get("detector") and prev is not None else None,
            lambda d, new, old, s: d.train([det_data[i] for i in new], [[det_data[i] for i in o] for o in old],
                                           progress=s),
            ScaledSink(sink, 0.0, 0.6) if sink is not None else None,
            "the project has no entity types" if not has_entities else "no sentence has entity labels yet")
        if step.suggesters.detector is not None:
            _mention_threshold(step, [det_data[i] for i in sorted(held)], saved_det)
        rel_data = relatedness_pairs(project)
        step.suggesters.relatedness = _one_step(
            "relatedness", "relatedness gate", rel_data, dict(saved.get("relatedness") or {}), step,
            lambda: RelatednessScorer(backbone, _settings(RelatednessSettings, settings.get("relatedness"), budget)),
            (lambda: RelatednessScorer.load(prev / RELATEDNESS_FOLDER, backbone))
            if info and info.get("relatedness") and prev is not None else None,
            lambda g, new, old, s: g.train([p for i in new for p in rel_data[i]],
                                           [[p for i in o for p in rel_data[i]] for o in old], progress=s),
            ScaledSink(sink, 0.6, 1.0) if sink is not None else None,
            "no sentence has relation labels yet")
    except BaseException:
        step.suggesters.close()
        raise
    return step


def _settings(cls: Any, given: Mapping[str, Any] | None, budget: Mapping[str, Any] | None) -> Any:
    values = {k: v for k, v in (budget or {}).items() if v is not None}
    values.update(given or {})
    return cls.from_dict(values)


def _one_step(key: str, name: str, data: Mapping[int, Any], saved: dict[str, Any], step: SuggesterStep,
              make: Callable[[], Any], load: Callable[[], Any] | None,
              train: Callable[[Any, list[int], list[list[int]], Any], Any], sink: Any, why_none: str) -> Any:
    if not data:
        step.notes.append(f"{name}: not trained ({why_none})")
        return None
    new, old, hashes = _plan(data, saved)
    part = load() if load is not None else make()
    if load is None:  # a new suggester (or the saved one went missing): learn everything, nothing to replay
        new, old = sorted(data), []
    if not new:
        step.notes.append(f"{name}: unchanged (no new or changed labelled sentences)")
        step.state[key] = saved
        return part
    train(part, new, old, sink)
    step.trained.add(key)
    step.state[key] = {"steps": [*old, new], "hashes": hashes}
    step.notes.append(f"{name}: step {len(old) + 1} on {len(new)} new or changed sentence(s), "
                      f"replaying {sum(map(len, old))} earlier one(s)")
    return part


def _mention_threshold(step: SuggesterStep, validation: list[MentionSentence], saved: Mapping[str, Any]) -> None:
    """Choose the detector's threshold on its validation sentences when it trained or they changed."""
    detector = step.suggesters.detector
    digest = _digest([_digest(s) for s in validation])
    step.state["detector"] = {**step.state.get("detector", {}), "validation": digest}
    if not validation:
        if detector.threshold == 0.0:
            step.notes.append(f"mention threshold: none (fewer than {VALIDATION_MIN_SENTENCES} labelled sentences "
                              "to hold some out): every proposal is kept")
        return
    if "detector" not in step.trained and saved.get("validation") == digest:
        return  # the same detector and the same validation sentences: the saved threshold stands
    choice = detector.choose_threshold(validation)
    step.notes.append("mention threshold: " + (choice.describe() if choice is not None else
                                               f"kept at {detector.threshold:.3f} (no gold mention or no proposal "
                                               f"on the {len(validation)} validation sentence(s))"))


# --- suggesting on a project's sentences -----------------------------------------------------------


def sentence_inputs(project: Any, sentence_ids: Sequence[int]) -> tuple[list[int], list[SentenceInput]]:
    """(ids, inputs) for ``conpet.suggest.suggestions.suggest``: each sentence's gold and rejected mentions, whether
    it has a gold entity label, the pairs marked already."""
    ids, out = [], []
    for chunk in range(0, len(sentence_ids), 500):
        part = list(sentence_ids[chunk:chunk + 500])
        texts = project.sentences.get_many(part)
        anns = project.annotations.for_sentences(part)
        for sid in part:
            rows = anns.get(sid, [])
            gold = tuple(a.spans[0] for a in rows if a.kind == "entity" and a.status == "gold")
            rejected = tuple(a.spans[0] for a in rows if a.kind == "entity" and a.status == "rejected")
            pairs = frozenset(a.spans for a in rows if a.kind == "relation")
            relation_args = tuple(s for a in rows if a.kind == "relation" and a.status == "gold" for s in a.spans)
            ids.append(sid)
            out.append(SentenceInput(texts[sid].text, tuple(dict.fromkeys((*gold, *relation_args))),
                                     labelled=bool(gold), rejected=rejected, pairs=pairs,  # type: ignore[arg-type]
                                     relations_labelled=bool(relation_args),
                                     meta={"sentence_id": sid}))
    return ids, out
