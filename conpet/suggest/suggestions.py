"""Suggestions on raw text: the mention detector (``conpet.suggest.detector``) and the relatedness gate
(``conpet.suggest.relation_candidates``) saved beside a model, and what they propose for the method to type.

A model folder (a project's ``modules/run-NNNN/`` or a bundle) may hold, beside the method's files::

    suggestions.json    format, which suggesters there are, the relation and the mention thresholds
    detector/           MentionDetector.save
    relatedness/        RelatednessScorer.save

Every one of those files is declared in ``method.json``'s ``extra.files`` (``declare_files``), the list a
bundle copies and checksums (``conpet.bundle.stage_method``), so bundles carry the suggesters with no
format change; a folder without ``suggestions.json`` (an older model or bundle) has none and predicts
marked spans only, as before.

``suggest`` turns sentences into the questions to ask the method: the detector's mentions on sentences
without gold entity labels, scored at or above its mention threshold (``expert_scores[DETECTOR_KEY]`` = the
span's mean tag probability; ``conpet.suggest.mention_threshold``) and, in
sentences without gold relation labels, the ordered pairs of their mentions (gold or proposed) that the gate scores at or above its threshold
(``expert_scores[RELATED_KEY]`` = P(related); ``with_scores`` makes the pair's score P(related) ×
P(type | related)); pairs below it are no_relation and not proposed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conpet.core.errors import ConpetError
from conpet.data.example import Example, Span

SUGGESTIONS_FILE = "suggestions.json"
SUGGESTIONS_FORMAT = "conpet-suggesters"
DETECTOR_FOLDER = "detector"
RELATEDNESS_FOLDER = "relatedness"
STATE_FILE = "method.json"
DETECTOR_KEY = "detector"  # expert_scores key: the detector's confidence in a proposed span
RELATED_KEY = "related"  # expert_scores key: the gate's P(related) of a proposed pair


@dataclass
class Suggesters:
    """The loaded suggesters of a model (either may be None)."""

    detector: Any = None  # MentionDetector
    relatedness: Any = None  # RelatednessScorer

    @property
    def threshold(self) -> float | None:
        return None if self.relatedness is None else float(self.relatedness.settings.threshold)

    @property
    def mention_threshold(self) -> float | None:
        return None if self.detector is None else float(self.detector.threshold)

    def close(self) -> None:
        """Take their PET modules off the (shared) backbone."""
        for part in (self.detector, self.relatedness):
            if part is not None:
                part.pet.close()


@dataclass(frozen=True)
class SentenceInput:
    """A sentence to suggest on: its gold mentions, whether it has entity labels (then the detector
    proposes nothing there), whether it has relation labels (then its other pairs are no_relation, as
    the gate learnt them, and none is proposed), the spans someone rejected (never proposed again) and
    the pairs already asked about (marked relations)."""

    text: str
    mentions: tuple[Span, ...] = ()
    labelled: bool = False
    rejected: tuple[Span, ...] = ()
    relations_labelled: bool = False
    pairs: frozenset[tuple[Span, Span]] = frozenset()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestion:
    """A question for the method (an unlabelled entity or relation example) and the suggester's score."""

    sentence: int  # index into the inputs
    example: Example
    scores: dict[str, float]


def save_suggesters(folder: Path, suggesters: Suggesters) -> None:
    """Write the suggesters into a model folder that already holds ``method.json`` and declare their files."""
    if suggesters.detector is None and suggesters.relatedness is None:
        return
    if suggesters.detector is not None:
        suggesters.detector.save(folder / DETECTOR_FOLDER)
    if suggesters.relatedness is not None:
        suggesters.relatedness.save(folder / RELATEDNESS_FOLDER)
    info = {"format": SUGGESTIONS_FORMAT, "format_version": 1,
            "detector": DETECTOR_FOLDER if suggesters.detector is not None else None,
            "relatedness": RELATEDNESS_FOLDER if suggesters.relatedness is not None else None,
            "relation_threshold": suggesters.threshold, "mention_threshold": suggesters.mention_threshold,
            "keys": {"mention": DETECTOR_KEY, "pair": RELATED_KEY}}
    (folder / SUGGESTIONS_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    declare_files(folder)


def declare_files(folder: Path) -> list[str]:
    """Add ``suggestions.json`` and every file of the suggesters' folders to method.json's ``extra.files``."""
    state_path = folder / STATE_FILE
    state = json.loads(state_path.read_text(encoding="utf-8"))
    extra = dict(state.get("extra") or {})
    mine = [SUGGESTIONS_FILE]
    for sub in (DETECTOR_FOLDER, RELATEDNESS_FOLDER):
        if (folder / sub).is_dir():
            mine += sorted(p.relative_to(folder).as_posix() for p in (folder / sub).rglob("*") if p.is_file())
    others = [f for f in extra.get("files") or [] if f not in mine]
    extra["files"] = [*others, *mine]
    state["extra"] = extra
    state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return mine


def read_info(folder: Path) -> dict[str, Any] | None:
    """``suggestions.json`` of a model folder, or None when it has none (an older model)."""
    path = folder / SUGGESTIONS_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConpetError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(info, dict) or info.get("format") != SUGGESTIONS_FORMAT:
        raise ConpetError(f"{path}: not a {SUGGESTIONS_FORMAT} file")
    return info


def load_suggesters(folder: Path, backbone: Any, threshold: float | None = None,
                    mention_threshold: float | None = None) -> Suggesters:
    """The suggesters saved in ``folder`` (none for an older model). ``threshold`` replaces the gate's saved
    relation threshold, ``mention_threshold`` the detector's (``--mention-threshold``, the app's setting)."""
    from conpet.suggest.detector import DetectorError, MentionDetector, check_threshold
    from conpet.suggest.relation_candidates import RelatednessScorer

    if mention_threshold is not None:  # refused before anything loads
        try:
            mention_threshold = check_threshold(mention_threshold, "mention threshold")
        except DetectorError as exc:
            raise ConpetError(str(exc)) from exc
    info = read_info(folder)
    out = Suggesters()
    if info is None:
        return out
    try:
        if info.get("detector"):
            out.detector = MentionDetector.load(folder / str(info["detector"]), backbone)
            if mention_threshold is not None:
                out.detector.threshold = mention_threshold
        if info.get("relatedness"):
            out.relatedness = RelatednessScorer.load(folder / str(info["relatedness"]), backbone)
            if threshold is not None:
                try:
                    out.relatedness.settings = dataclasses.replace(out.relatedness.settings, threshold=threshold)
                except ValueError as exc:
                    raise ConpetError(f"relation threshold: {exc}") from exc
    except BaseException:
        out.close()
        raise
    return out


def suggest(suggesters: Suggesters, sentences: Sequence[SentenceInput], kinds: set[str]) -> list[Suggestion]:
    """Proposed mentions (sentences without entity labels) and candidate pairs above the threshold."""
    out: list[Suggestion] = []
    proposed: list[list[Span]] = [[] for _ in sentences]
    if suggesters.detector is not None and "entity" in kinds:
        todo = [i for i, s in enumerate(sentences) if not s.labelled]
        found = suggesters.detector.propose([sentences[i].text for i in todo]) if todo else []
        for i, props in zip(todo, found, strict=True):
            s = sentences[i]
            for p in props:
                if p.span in s.mentions or p.span in s.rejected:
                    continue  # a marked span is predicted as such; a rejected one is not a mention
                proposed[i].append(p.span)
                out.append(Suggestion(i, Example(s.text, (p.span,), "", "entity", meta=dict(s.meta)),
                                      {DETECTOR_KEY: p.score}))
    if suggesters.relatedness is not None and "relation" in kinds:
        out += _pairs(suggesters.relatedness, sentences, proposed)
    return out


def _pairs(gate: Any, sentences: Sequence[SentenceInput], proposed: Sequence[Sequence[Span]]) -> list[Suggestion]:
    from conpet.suggest.relation_candidates import pair_example

    candidates: list[tuple[int, Example]] = []
    for i, s in enumerate(sentences):
        if s.relations_labelled:
            continue
        mentions = sorted({*s.mentions, *proposed[i]}, key=lambda m: (m.start, m.end))[: gate.settings.max_mentions]
        for h in mentions:
            for t in mentions:
                if h != t and (h, t) not in s.pairs:
                    candidates.append((i, pair_example(s.text, h, t, **s.meta)))
    scores = gate.score([ex for _, ex in candidates]) if candidates else []
    threshold = gate.settings.threshold
    return [Suggestion(i, ex, {RELATED_KEY: p}) for (i, ex), p in zip(candidates, scores, strict=True)
            if p >= threshold]


def with_scores(prediction: Any, scores: dict[str, float]) -> Any:
    """The engine's prediction of a proposal with the suggester's score added to its ``expert_scores``. A
    proposed pair's score becomes P(related) × P(type | related): the relation experts type every pair they
    are given (their score is the type's probability *given* a relation), so without the gate's probability
    a pair the gate barely let through would look as certain as a sure one."""
    related = scores.get(RELATED_KEY)
    score = prediction.score if related is None else float(prediction.score) * float(related)
    return dataclasses.replace(prediction, score=score, expert_scores={**prediction.expert_scores, **scores})
