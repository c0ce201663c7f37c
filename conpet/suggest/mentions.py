"""Type-agnostic mentions: gold spans from annotated sentences, BIO tags over subword tokens and back,
the capitalised-runs baseline, and span-level precision / recall / F1 (exact match). Torch-free.

Tags are ``O`` (0), ``B`` (1, a mention's first token) and ``I`` (2, inside a mention). A token is
given by its character offsets ``(start, end)`` in the sentence, as a fast tokenizer's
``return_offsets_mapping`` gives them; special and padding tokens have ``start == end`` and get no tag
(``IGNORE``, skipped by the loss). A token that overlaps a mention belongs to it, so a mention boundary
inside a subword still tags the whole subword.

Decoding turns tags back into character spans: a ``B`` starts a mention, an ``I`` continues the one
before it (an ``I`` after ``O`` starts one, the lenient reading). Spans are then widened to the whole
words they touch (``word_ids`` from the tokenizer: a mention never ends inside ``Lon|don``) and the
whitespace at their edges is cut (byte-level BPE offsets include a token's leading space). Tagging a
word by its first subword alone was tried and scored lower on Few-NERD (F1 0.618 against 0.630).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conpet.data.example import Example, Span

TAGS = ("O", "B", "I")
TAG_O, TAG_B, TAG_I = 0, 1, 2
IGNORE = -100  # torch's cross_entropy ignore_index

Offsets = Sequence[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class MentionSentence:
    """A sentence and its gold mentions (type-agnostic, sorted, not overlapping).

    ``negatives`` are spans known not to be mentions (rejected proposals): their tokens are ``O``.
    ``complete``: every token outside ``spans`` is ``O`` (a labelled sentence); when False only the
    negatives' tokens are (a sentence where someone rejected a proposal but labelled nothing), and the
    rest teaches nothing (``IGNORE``).
    """

    text: str
    spans: tuple[Span, ...] = ()
    negatives: tuple[Span, ...] = ()
    complete: bool = True


def gold_sentences(items: Iterable[object]) -> list[MentionSentence]:
    """Every gold mention of ``items``, one ``MentionSentence`` per distinct text (first-seen order).

    An item is a ``conpet.data.jsonl.Sentence`` (all its entities, typed or not), an ``Example`` (its span
    or spans: an entity example's mention, a relation's head and tail) or a ``MentionSentence``. Examples
    of one text are merged; an overlapping span (a nested mention) keeps the earlier, longer one.
    """
    spans: dict[str, set[Span]] = {}
    negatives: dict[str, set[Span]] = {}
    complete: dict[str, bool] = {}
    for item in items:
        text, found = _item_spans(item)
        spans.setdefault(text, set()).update(found)
        negatives.setdefault(text, set()).update(getattr(item, "negatives", ()) if isinstance(item, MentionSentence)
                                                 else ())
        whole = item.complete if isinstance(item, MentionSentence) else True
        complete[text] = complete.get(text, False) or whole
    out = []
    for text, found in spans.items():
        kept = _non_overlapping(found)
        # a span someone marked gold is a mention, whatever else was rejected on it
        neg = tuple(sorted((n for n in negatives[text] if not any(_overlap(n, g) for g in kept)),
                           key=lambda s: (s.start, s.end)))
        out.append(MentionSentence(text, kept, neg, complete[text]))
    return out


def _overlap(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def sentence_tags(offsets: Offsets, sentence: MentionSentence) -> list[int]:
    """The training tags of one sentence: ``token_tags`` of its mentions, with an incomplete sentence's
    tokens outside its negatives (and its mentions) ignored; a negative's tokens are ``O``."""
    tags = token_tags(offsets, sentence.spans)
    if sentence.complete:
        return tags
    out = []
    for tag, (start, end) in zip(tags, offsets, strict=True):
        known = tag != TAG_O or any(start < n.end and n.start < end for n in sentence.negatives)
        out.append(tag if known else IGNORE)
    return out


def _item_spans(item: object) -> tuple[str, tuple[Span, ...]]:
    if isinstance(item, MentionSentence):
        return item.text, item.spans
    if isinstance(item, Example):
        return item.text, item.spans
    entities = getattr(item, "entities", None)
    text = getattr(item, "text", None)
    if isinstance(text, str) and entities is not None:
        return text, tuple(Span(e.start, e.end) for e in entities)
    raise TypeError(f"not a sentence or an example: {type(item).__name__}")


def _non_overlapping(spans: Iterable[Span]) -> tuple[Span, ...]:
    kept: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if not kept or s.start >= kept[-1].end:
            kept.append(s)
    return tuple(kept)


def token_tags(offsets: Offsets, spans: Sequence[Span]) -> list[int]:
    """The BIO tag of each token (``IGNORE`` for special tokens) for the mentions ``spans``."""
    tags = []
    ordered = sorted(spans, key=lambda s: s.start)
    k = 0  # the first mention that may still overlap this token or a later one
    current: Span | None = None  # the mention the previous tagged token belonged to
    for start, end in offsets:
        if start >= end:
            tags.append(IGNORE)
            continue
        while k < len(ordered) and ordered[k].end <= start:
            k += 1
        span = ordered[k] if k < len(ordered) and ordered[k].start < end else None
        if span is None:
            tags.append(TAG_O)
        else:
            tags.append(TAG_I if span == current else TAG_B)
        current = span
    return tags


def decode_tags(text: str, offsets: Offsets, tags: Sequence[int],
                word_ids: Sequence[int | None] | None = None) -> list[Span]:
    """Character spans of the mentions that ``tags`` mark (see the module docstring)."""
    runs: list[list[int]] = []  # token indices of each mention
    prev = TAG_O
    for i, ((start, end), tag) in enumerate(zip(offsets, tags, strict=True)):
        if start >= end or tag == IGNORE:
            continue
        if tag == TAG_B or (tag == TAG_I and prev == TAG_O):
            runs.append([i])
        elif tag == TAG_I:
            runs[-1].append(i)
        prev = tag
    spans = [_run_span(run, offsets, word_ids) for run in runs]
    out = [_strip(text, s) for s in spans]
    return list(_non_overlapping(s for s in out if s is not None))


def _run_span(run: list[int], offsets: Offsets, word_ids: Sequence[int | None] | None) -> Span:
    first, last = run[0], run[-1]
    if word_ids is not None:
        word = word_ids[first]
        while first > 0 and word is not None and word_ids[first - 1] == word:
            first -= 1
        word = word_ids[last]
        while last + 1 < len(word_ids) and word is not None and word_ids[last + 1] == word:
            last += 1
    return Span(offsets[first][0], offsets[last][1])


def _strip(text: str, span: Span) -> Span | None:
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if start < end else None


# --- word shapes ---------------------------------------------------------------------------------------

# The shape of the word a token belongs to, as written: uncased backbones (MiniLM lowercases) never see
# capitals, the strongest single cue for a named mention, so the detector's head adds a learnt bias per shape.
SHAPES = ("none", "lower", "Capital", "UPPER", "digit", "other", "Capital-first")
N_SHAPES = len(SHAPES)


def word_shape(word: str, first: bool) -> int:
    """The ``SHAPES`` index of ``word``; ``first``: it opens the sentence (where capitals say less)."""
    if any(c.isdigit() for c in word):
        return 4
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 5
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return 3
    if word[0].isupper():
        return 6 if first else 2
    return 1


def token_shapes(text: str, offsets: Offsets, word_ids: Sequence[int | None]) -> list[int]:
    """Per token, the shape of its whole word (0 for special and padding tokens)."""
    extent: dict[int, tuple[int, int]] = {}
    for (start, end), w in zip(offsets, word_ids, strict=True):
        if w is not None and start < end:
            a, b = extent.get(w, (start, end))
            extent[w] = (min(a, start), max(b, end))
    first_word = min(extent, default=None)
    shapes = []
    for (start, end), w in zip(offsets, word_ids, strict=True):
        if w is None or start >= end:
            shapes.append(0)
            continue
        a, b = extent[w]
        shapes.append(word_shape(text[a:b].strip(), w == first_word))
    return shapes


# --- the capitalised-runs baseline --------------------------------------------------------------------

_WORD = re.compile(r"\w+(?:[-'’.&]\w+)*|[^\w\s]")
# Capitalised only because they open the sentence; skipped there (a mention starting with them is rare)
FUNCTION_WORDS = frozenset(
    "a an the this that these those in on at of for from to by with as after before during since while "
    "when where if but and or so it its he she they we i you his her their our my there here however "
    "although though".split()
)


def capitalised_runs(text: str) -> list[Span]:
    """Mentions by the trivial rule: maximal runs of capitalised words (any punctuation or lower-case
    word ends a run); a sentence-initial function word ("The", "In") is not part of one."""
    spans: list[Span] = []
    run: list[re.Match[str]] = []
    for n, word in enumerate(_WORD.finditer(text)):
        token = word.group()
        capital = token[0].isupper()
        if capital and n == 0 and token.lower() in FUNCTION_WORDS:
            capital = False
        if capital:
            run.append(word)
            continue
        if run:
            spans.append(Span(run[0].start(), run[-1].end()))
            run = []
    if run:
        spans.append(Span(run[0].start(), run[-1].end()))
    return spans


# --- span-level precision / recall / F1 -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SpanScores:
    """Exact-match span counts and their precision, recall and F1 (0 where undefined)."""

    true_positives: int
    n_gold: int
    n_predicted: int

    def scores(self) -> tuple[float, float, float]:
        """scikit-learn's binary precision, recall and F1 over the matched and unmatched items (0 where
        undefined)."""
        from sklearn.metrics import precision_recall_fscore_support

        tp, fn, fp = self.true_positives, self.n_gold - self.true_positives, self.n_predicted - self.true_positives
        if tp + fn + fp == 0:
            return 0.0, 0.0, 0.0
        y_true = np.repeat([1, 1, 0], [tp, fn, fp])
        y_pred = np.repeat([1, 0, 1], [tp, fn, fp])
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", zero_division=0)
        return float(p), float(r), float(f)

    @property
    def precision(self) -> float:
        return self.scores()[0]

    @property
    def recall(self) -> float:
        return self.scores()[1]

    @property
    def f1(self) -> float:
        return self.scores()[2]

    def to_dict(self) -> dict[str, float]:
        precision, recall, f1 = self.scores()
        return {"precision": precision, "recall": recall, "f1": f1,
                "true_positives": self.true_positives, "gold": self.n_gold, "predicted": self.n_predicted}


def span_scores(gold: Sequence[Iterable[Any]], predicted: Sequence[Iterable[Any]]) -> SpanScores:
    """Exact-match scores over sentences: ``gold[i]`` and ``predicted[i]`` are sentence i's spans (or any
    hashable items: (span, type) pairs, relation triples)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = set(g), set(p)
        tp += len(gs & ps)
        n_gold += len(gs)
        n_pred += len(ps)
    return SpanScores(tp, n_gold, n_pred)
