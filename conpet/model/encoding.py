"""The ConPET input encoding (CONPET.md, Table I): entity markers, the prompt, the ``[MASK]`` position.

Entity typing::

    ... [E1] mention [/E1] ... In this sentence, <mention> is a [MASK].

Relation classification::

    ... [E1] head [/E1] ... [E2] tail [/E2] ... In this sentence, <tail> is the [MASK] of <head>.

The example's representation is the backbone's final hidden state at ``[MASK]``.

Marker and mask tokens (``prepare_tokenizer``) borrow *existing* vocabulary entries instead of
adding new tokens: the backbone is frozen, so rows added to its embedding matrix would stay at
their random initialisation forever (only LoRA and the head train). Existing rarely used tokens
have trained (if uninformative) embeddings of the right scale and cost nothing.

- BERT-style encoders: ``[E1] [/E1] [E2] [/E2]`` = ``[unused0] [unused1] [unused2] [unused3]``;
  ``[MASK]`` is the tokenizer's own mask token (the encoder was pre-trained to fill it).
- Decoders (no mask token), as the authors' code does for LLaMA: byte tokens of ASCII control
  characters that never occur in ordinary text. For a byte-level BPE vocabulary (SmolLM2, GPT-2,
  Qwen) these are the GPT-2 byte characters of bytes 0x01, 0x02, 0x03, 0x05 for the markers and
  0x07 for ``[MASK]`` (0x04 and 0x06 have no token in SmolLM2's vocabulary); for a SentencePiece
  vocabulary (LLaMA) the tokens ``<0x01>``, ``<0x02>``, .... Control bytes used as text layout
  (tab, newline, carriage return) are skipped.
- Only when no such token exists are special tokens added (then ``load_backbone`` grows the
  embedding matrix, and the new rows stay random).

Markers are inserted as token ids between separately tokenised text pieces (cut at the spans'
character offsets), so nothing depends on the tokenizer recognising a marker string, and the
character offsets work for any Unicode text. Whitespace in front of a mention goes with the
mention (``"I love" [E1] " Paris" [/E1]``), so a byte-level BPE tokenises the mention the way it
would inside the sentence and inside the prompt.

Truncation: the special tokens and the whole prompt suffix are always kept; the sentence (with its
markers) gets the rest of the budget, as one window centred on the entities or, when a relation's
two entities are too far apart for one window, two half-windows each centred on one entity.

Within ``ConpetEncoder.kept()`` (a job: a training step with its validation and test passes, a
prediction) each example is tokenised once, however many epochs, stages and modules read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch

from conpet.core.config import EncoderSettings  # defined with the other settings; imported from here too
from conpet.data.example import Example

Arch = Literal["encoder", "decoder"]

MARKER_NAMES = ("[E1]", "[/E1]", "[E2]", "[/E2]")
ENTITY_PROMPT = ("In this sentence,", "{mention}", "is a", "[MASK]", ".")
RELATION_PROMPT = ("In this sentence,", "{tail}", "is the", "[MASK]", "of", "{head}", ".")
_LAYOUT_BYTES = {0x09, 0x0A, 0x0D}


@dataclass(frozen=True, slots=True)
class MarkerTokens:
    """The token ids standing for the markers and ``[MASK]`` (and the strings they are in the vocab)."""

    e1: int
    e1_end: int
    e2: int
    e2_end: int
    mask: int
    pad: int
    tokens: tuple[str, ...]  # vocab strings of e1, /e1, e2, /e2, mask
    added: bool = False  # True when new special tokens had to be added to the vocabulary


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded example: token ids (special tokens included), where ``[MASK]`` is, and the two
    marker positions a "markers" representation reads: a relation's ``[E1]`` and ``[E2]``; an
    entity's ``[E1]`` and position 0 (``[CLS]`` on an encoder: the sentence as a whole)."""

    input_ids: tuple[int, ...]
    mask_index: int
    marker_index: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True, slots=True)
class Batch:
    """A padded batch: ``input_ids`` and ``attention_mask`` are ``[B, T]``, ``mask_index`` is ``[B]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mask_index: torch.Tensor
    marker_index: torch.Tensor | None = None  # [B, 2], see Encoded.marker_index

    def to(self, device: Any) -> Batch:
        if self.input_ids.device == torch.device(device):
            return self
        markers = self.marker_index.to(device) if self.marker_index is not None else None
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.mask_index.to(device),
                     markers)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


# --- tokenizer preparation ---------------------------------------------------------------------


def _gpt2_byte_char(b: int) -> str:
    """The character GPT-2's byte-level BPE uses for byte ``b`` (only for bytes 0..32 here)."""
    return chr(256 + b)


def _find_existing(vocab: dict[str, int], candidates: Sequence[str], n: int, avoid: set[int]) -> list[str]:
    found: list[str] = []
    for tok in candidates:
        if tok in vocab and vocab[tok] not in avoid and tok not in found:
            found.append(tok)
            if len(found) == n:
                break
    return found


def prepare_tokenizer(tokenizer: Any, arch: Arch) -> MarkerTokens:
    """Choose the marker and mask tokens for this tokenizer (idempotent) and make sure it can pad.

    The choice is stored on the tokenizer as ``tokenizer.conpet_markers`` and returned.
    """
    existing = getattr(tokenizer, "conpet_markers", None)
    if isinstance(existing, MarkerTokens):
        return existing
    vocab: dict[str, int] = tokenizer.get_vocab()
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    unused = [f"[unused{i}]" for i in range(100)]
    sentencepiece_bytes = [f"<0x{b:02X}>" for b in range(1, 32) if b not in _LAYOUT_BYTES]
    bpe_bytes = [_gpt2_byte_char(b) for b in range(1, 32) if b not in _LAYOUT_BYTES]

    added = False
    mask_tok = tokenizer.mask_token if arch == "encoder" and tokenizer.mask_token_id is not None else None
    need = 4 if mask_tok is not None else 5
    chosen = _find_existing(vocab, unused, need, specials)
    if len(chosen) < need:
        chosen = _find_existing(vocab, sentencepiece_bytes, need, specials)
    if len(chosen) < need:
        chosen = _find_existing(vocab, bpe_bytes, need, specials)
    if len(chosen) < need:
        chosen = ["[E1]", "[/E1]", "[E2]", "[/E2]", "[MASK]"][:need]
        tokenizer.add_special_tokens({"additional_special_tokens": chosen})
        vocab = tokenizer.get_vocab()
        added = True
    if mask_tok is None:
        mask_tok = chosen[4]
    chosen = chosen[:4]

    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.pad_token = mask_tok
    ids = [vocab[t] for t in chosen] + [vocab[mask_tok]]
    markers = MarkerTokens(
        e1=ids[0],
        e1_end=ids[1],
        e2=ids[2],
        e2_end=ids[3],
        mask=ids[4],
        pad=int(tokenizer.pad_token_id),
        tokens=(*chosen, mask_tok),
        added=added,
    )
    tokenizer.conpet_markers = markers
    return markers


# --- the encoder -------------------------------------------------------------------------------


class ConpetEncoder:
    """Turns ``Example``s into token ids with markers, prompt and ``[MASK]`` position, and batches them."""

    def __init__(self, tokenizer: Any, arch: Arch, settings: EncoderSettings | None = None) -> None:
        self.tokenizer = tokenizer
        self.arch = arch
        self.settings = settings or EncoderSettings()
        self.markers = prepare_tokenizer(tokenizer, arch)
        self.prefix, self.suffix = self._special_tokens()
        self._kept: dict[tuple[str, str, tuple[Any, ...]], Encoded] | None = None  # see kept()

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text (``[CLS]``/``[SEP]``, a BOS, or none)."""
        probe = "hello"
        plain = self._ids(probe)
        full = list(self.tokenizer(probe, add_special_tokens=True)["input_ids"])
        for i in range(len(full) - len(plain) + 1):
            if full[i : i + len(plain)] == plain:
                return full[:i], full[i + len(plain) :]
        return [], []

    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def max_length(self, example: Example) -> int:
        s = self.settings
        return s.max_length_entity if example.kind == "entity" else s.max_length_relation

    # -- pieces

    def _sentence(self, example: Example) -> tuple[list[int], list[tuple[int, int]]]:
        """Sentence ids with markers, and per entity the (start marker, end marker) indices."""
        text = example.text
        m = self.markers
        opens = [m.e1, m.e2]
        closes = [m.e1_end, m.e2_end]
        # (character position, order, marker id, entity, is_open); at the same position close
        # markers come before open markers, and nested spans open outer-first / close inner-first.
        events: list[tuple[int, int, int, int, bool]] = []
        for k, span in enumerate(example.spans):
            # Leading whitespace belongs with the mention, but never crosses another span's edge.
            others = [e for o in example.spans if o is not span for e in (o.start, o.end) if e <= span.start]
            limit = max(others, default=0)
            start = span.start
            while start > limit and text[start - 1].isspace():
                start -= 1
            events.append((start, 1, -span.end, k, True))
            events.append((span.end, 0, -span.start, k, False))
        events.sort()
        ids: list[int] = []
        where: dict[tuple[int, bool], int] = {}
        pos = 0
        for at, _, _, k, is_open in events:
            ids.extend(self._ids(text[pos:at]))
            pos = max(pos, at)
            where[(k, is_open)] = len(ids)
            ids.append(opens[k] if is_open else closes[k])
        ids.extend(self._ids(text[pos:]))
        ranges = [(where[(k, True)], where[(k, False)]) for k in range(len(example.spans))]
        return ids, ranges

    def _prompt(self, example: Example, max_length: int) -> tuple[list[int], int]:
        """Prompt suffix ids and the index of ``[MASK]`` inside it. Mentions longer than
        ``max_length // 8`` tokens are cut there, so the prompt always fits."""
        cap = max(1, max_length // 8)
        text = example.text
        fill = {
            "{mention}": text[example.spans[0].start : example.spans[0].end],
            "{head}": text[example.head.start : example.head.end],
            "{tail}": text[example.tail.start : example.tail.end],
        }
        template = ENTITY_PROMPT if example.kind == "entity" else RELATION_PROMPT
        ids: list[int] = []
        mask_at = -1
        for part in template:
            if part == "[MASK]":
                mask_at = len(ids)
                ids.append(self.markers.mask)
            elif part in fill:
                ids.extend(self._ids(" " + fill[part].strip())[:cap])
            elif part == ".":
                ids.extend(self._ids(part))
            else:
                ids.extend(self._ids(" " + part))
        return ids, mask_at

    # -- public

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Within this (re-entrant) block each example is encoded once and then read back; the encodings
        are forgotten when the outermost block ends. They are kept by what an encoding depends on besides
        this encoder's tokenizer and settings: the example's kind, text and spans (not its id or label, so
        a relabelled example cannot be given another's tokens)."""
        if self._kept is not None:
            yield
            return
        self._kept = {}
        try:
            yield
        finally:
            self._kept = None

    def encode(self, example: Example) -> Encoded:
        if self._kept is None:
            return self._encode(example)
        key = (example.kind, example.text, example.spans)
        enc = self._kept.get(key)
        if enc is None:
            enc = self._kept[key] = self._encode(example)
        return enc

    def _encode(self, example: Example) -> Encoded:
        max_length = self.max_length(example)
        sentence, ranges = self._sentence(example)
        prompt, mask_at = self._prompt(example, max_length)
        budget = max_length - len(self.prefix) - len(self.suffix) - len(prompt)
        sentence = _window(sentence, ranges, budget)
        ids = [*self.prefix, *sentence, *prompt, *self.suffix]
        return Encoded(tuple(ids), len(self.prefix) + len(sentence) + mask_at,
                       self._marker_positions(sentence, example.kind))

    def _marker_positions(self, sentence: list[int], kind: str) -> tuple[int, int]:
        """Where the start markers ended up after truncation (the window always keeps them)."""
        off = len(self.prefix)
        e1 = off + sentence.index(self.markers.e1) if self.markers.e1 in sentence else 0
        if kind == "relation" and self.markers.e2 in sentence:
            return e1, off + sentence.index(self.markers.e2)
        return e1, 0

    def collate(self, items: Sequence[Encoded]) -> Batch:
        """Pad to the longest item (right padding); ``[MASK]`` is read at its recorded index."""
        if not items:
            raise ValueError("cannot collate an empty batch")
        width = max(len(e) for e in items)
        input_ids = torch.full((len(items), width), self.markers.pad, dtype=torch.long)
        attention = torch.zeros((len(items), width), dtype=torch.long)
        for row, e in enumerate(items):
            input_ids[row, : len(e)] = torch.tensor(e.input_ids, dtype=torch.long)
            attention[row, : len(e)] = 1
        mask_index = torch.tensor([e.mask_index for e in items], dtype=torch.long)
        markers = torch.tensor([e.marker_index for e in items], dtype=torch.long)
        return Batch(input_ids, attention, mask_index, markers)

    def batch(self, examples: Sequence[Example]) -> Batch:
        return self.collate([self.encode(x) for x in examples])

    def render(self, example: Example) -> str:
        """The encoded input as text with the marker names put back (for display and tests)."""
        enc = self.encode(example)
        names = dict(
            zip(
                (self.markers.e1, self.markers.e1_end, self.markers.e2, self.markers.e2_end),
                MARKER_NAMES,
                strict=True,
            )
        )
        names[self.markers.mask] = "[MASK]"
        out: list[str] = []
        run: list[int] = []
        specials = set(self.prefix) | set(self.suffix)
        for i, tid in enumerate(enc.input_ids):
            if tid in names or (
                tid in specials and (i < len(self.prefix) or i >= len(enc) - len(self.suffix))
            ):
                if run:
                    out.append(self.tokenizer.decode(run).strip())
                    run = []
                if tid in names:
                    out.append(names[tid])
            else:
                run.append(tid)
        if run:
            out.append(self.tokenizer.decode(run).strip())
        text = ""
        for piece in (p for p in out if p):
            glue = "" if not text or piece[0] in ".,;:!?)" else " "
            text += glue + piece
        return text


def _window(ids: list[int], ranges: list[tuple[int, int]], budget: int) -> list[int]:
    """Cut ``ids`` to at most ``budget`` tokens keeping every entity's markers.

    One window centred on the entities when they fit together, else (two entities far apart) one
    half-window centred on each. An entity longer than its window keeps its first tokens and
    both markers.
    """
    if len(ids) <= budget:
        return ids
    budget = max(budget, 2 * len(ranges))
    lo = min(a for a, _ in ranges)
    hi = max(b for _, b in ranges)
    if hi - lo + 1 <= budget or len(ranges) == 1:
        return _centred(ids, lo, hi, budget, 0, len(ids))
    (a1, b1), (a2, b2) = sorted(ranges)
    if a2 <= b1:  # overlapping or nested entities: one window must do
        return _centred(ids, lo, hi, budget, 0, len(ids))
    first = budget // 2
    left = _centred(ids, a1, b1, first, 0, a2)
    right = _centred(ids, a2, b2, budget - len(left), b1 + 1, len(ids))
    return left + right


def _centred(ids: list[int], lo: int, hi: int, size: int, floor: int, ceil: int) -> list[int]:
    """A window of ``ids[floor:ceil]`` of length <= size around ``ids[lo..hi]``."""
    if hi - lo + 1 > size:
        return ids[lo : lo + size - 1] + [ids[hi]]  # mention itself too long: keep head + end marker
    extra = size - (hi - lo + 1)
    start = max(floor, lo - extra // 2)
    end = min(ceil, start + size)
    start = max(floor, end - size)
    return ids[start:end]
