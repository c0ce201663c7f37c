"""The ConPET encoding: markers, Table I prompts, truncation around the entities, [MASK] position."""

from __future__ import annotations

import pytest
import torch

from conpet.data.example import Example, Span
from conpet.model.encoding import Batch, ConpetEncoder, EncoderSettings, prepare_tokenizer

BACKBONE_NAMES = ["minilm", "smollm"]


def entity(text: str, mention: str, nth: int = 0, label: str = "t") -> Example:
    start = -1
    for _ in range(nth + 1):
        start = text.index(mention, start + 1)
    return Example(text, (Span(start, start + len(mention)),), label, "entity")


def relation(text: str, head: str, tail: str, label: str = "r") -> Example:
    h, t = text.index(head), text.index(tail)
    return Example(text, (Span(h, h + len(head)), Span(t, t + len(tail))), label, "relation")


@pytest.fixture(params=BACKBONE_NAMES)
def backbone(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def encoder(backbone):
    return ConpetEncoder(backbone.tokenizer, backbone.arch)


def between(ids, open_id, close_id):
    ids = list(ids)
    a = ids.index(open_id)
    return ids[a + 1 : ids.index(close_id, a)]


def ids_of(tokenizer, text):
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


# --- marker tokens -----------------------------------------------------------------------------


def test_bert_markers_use_unused_tokens_and_its_own_mask(minilm):
    m = minilm.tokenizer.conpet_markers
    assert m.tokens == ("[unused0]", "[unused1]", "[unused2]", "[unused3]", "[MASK]")
    assert m.mask == minilm.tokenizer.mask_token_id
    assert not m.added
    assert len(minilm.tokenizer) == minilm.model.get_input_embeddings().weight.shape[0]


def test_decoder_markers_are_control_byte_tokens(smollm):
    tok = smollm.tokenizer
    m = tok.conpet_markers
    # GPT-2 byte characters of bytes 0x01, 0x02, 0x03, 0x05 and 0x07
    assert m.tokens == ("\u0101", "\u0102", "\u0103", "\u0105", "\u0107")
    ids = [m.e1, m.e1_end, m.e2, m.e2_end, m.mask]
    assert len(set(ids)) == 5 and not set(ids) & set(tok.all_special_ids)
    assert not m.added and tok.pad_token_id is not None
    # ordinary text never produces them
    assert not set(ids) & set(
        ids_of(tok, "Plain text, numbers 1-2-3, tabs\tand\nnew lines; ünïcödé 東京 😀.")
    )
    assert prepare_tokenizer(tok, "decoder") is m  # idempotent


# --- text of the prompt ------------------------------------------------------------------------


def test_entity_prompt_text(minilm, smollm):
    x = entity("I love Paris in spring.", "Paris")
    assert ConpetEncoder(smollm.tokenizer, "decoder").render(x) == (
        "I love [E1] Paris [/E1] in spring. In this sentence, Paris is a [MASK]."
    )
    assert ConpetEncoder(minilm.tokenizer, "encoder").render(x) == (
        "i love [E1] paris [/E1] in spring. in this sentence, paris is a [MASK]."
    )


def test_relation_prompt_text(smollm):
    x = relation("Marie Curie was born in Warsaw, Poland.", "Marie Curie", "Warsaw")
    assert ConpetEncoder(smollm.tokenizer, "decoder").render(x) == (
        "[E1] Marie Curie [/E1] was born in [E2] Warsaw [/E2], Poland. "
        "In this sentence, Warsaw is the [MASK] of Marie Curie."
    )


def test_relation_with_tail_before_head(minilm):
    x = Example("Warsaw is where Marie Curie was born.", (Span(16, 27), Span(0, 6)), "r", "relation")
    text = ConpetEncoder(minilm.tokenizer, "encoder").render(x)
    assert text.startswith("[E2] warsaw [/E2] is where [E1] marie curie [/E1]")
    assert text.endswith("in this sentence, warsaw is the [MASK] of marie curie.")


def test_special_tokens_wrap_the_input(minilm):
    enc = ConpetEncoder(minilm.tokenizer, "encoder").encode(entity("Paris is big.", "Paris"))
    assert enc.input_ids[0] == minilm.tokenizer.cls_token_id
    assert enc.input_ids[-1] == minilm.tokenizer.sep_token_id


# --- [MASK] position ---------------------------------------------------------------------------


def test_mask_index_points_at_the_mask_token(backbone, encoder):
    mask = backbone.tokenizer.conpet_markers.mask
    for x in (
        entity("I love Paris in spring.", "Paris"),
        relation("Marie Curie was born in Warsaw, Poland.", "Marie Curie", "Warsaw"),
        entity("Zoë visited 東京 🍣 last year.", "東京"),
    ):
        enc = encoder.encode(x)
        assert enc.input_ids[enc.mask_index] == mask
        assert list(enc.input_ids).count(mask) == 1


# --- truncation --------------------------------------------------------------------------------


def filler(n: int, word: str = "word") -> str:
    return " ".join(f"{word}{i % 10}" for i in range(n))


def test_short_input_is_not_cut(encoder):
    x = entity("A short sentence about Paris.", "Paris")
    enc = encoder.encode(x)
    assert len(enc) < 40


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_long_sentence_keeps_entity_and_prompt(backbone, encoder, where):
    tok = backbone.tokenizer
    m = tok.conpet_markers
    words = filler(400)
    text = {"start": f"Paris {words}.", "middle": f"{words} Paris {words}.", "end": f"{words} Paris"}[where]
    x = entity(text, "Paris")
    enc = encoder.encode(x)
    assert len(enc) == 256
    ids = list(enc.input_ids)
    assert m.e1 in ids and m.e1_end in ids
    assert ids[enc.mask_index] == m.mask
    # the whole prompt suffix is kept: everything from the prompt start to the end
    prompt, mask_at = encoder._prompt(x, 256)
    body_end = len(ids) - len(encoder.suffix)
    assert ids[body_end - len(prompt) : body_end] == prompt
    assert enc.mask_index == body_end - len(prompt) + mask_at
    if where == "middle":  # centred: about as much context on each side
        left = ids.index(m.e1) - len(encoder.prefix)
        right = body_end - len(prompt) - ids.index(m.e1_end) - 1
        assert abs(left - right) <= 2
    if where == "end":
        assert ids[body_end - len(prompt) - 1] == m.e1_end


def test_relation_far_apart_keeps_both_entities(backbone, encoder):
    m = backbone.tokenizer.conpet_markers
    text = f"Alice {filler(300)} met Bob {filler(50)}."
    x = relation(text, "Alice", "Bob")
    enc = encoder.encode(x)
    assert len(enc) == 128
    ids = list(enc.input_ids)
    for marker in (m.e1, m.e1_end, m.e2, m.e2_end):
        assert ids.count(marker) == 1
    assert ids.index(m.e1) < ids.index(m.e1_end) < ids.index(m.e2) < ids.index(m.e2_end) < enc.mask_index
    assert ids[enc.mask_index] == m.mask


def test_relation_close_together_in_long_sentence_one_window(backbone, encoder):
    m = backbone.tokenizer.conpet_markers
    text = f"{filler(200)} Alice met Bob {filler(200)}."
    enc = encoder.encode(relation(text, "Alice", "Bob"))
    ids = list(enc.input_ids)
    assert len(enc) == 128
    assert ids.index(m.e2) - ids.index(m.e1_end) <= 3  # " met" between them, nothing cut there


def test_very_long_mention_is_capped_in_the_prompt(encoder):
    mention = filler(300, "name")
    x = Example(f"{mention} is here.", (Span(0, len(mention)),), "t", "entity")
    enc = encoder.encode(x)
    assert len(enc) <= 256
    assert enc.input_ids[enc.mask_index] == encoder.markers.mask
    assert encoder.markers.e1 in enc.input_ids and encoder.markers.e1_end in enc.input_ids


def test_custom_max_length(encoder, backbone):
    small = ConpetEncoder(backbone.tokenizer, backbone.arch, EncoderSettings(max_length_entity=32))
    enc = small.encode(entity(f"{filler(100)} Paris {filler(100)}.", "Paris"))
    assert len(enc) == 32 and enc.input_ids[enc.mask_index] == small.markers.mask
    with pytest.raises(ValueError):
        EncoderSettings(max_length_relation=5)


# --- unicode and character offsets -------------------------------------------------------------


@pytest.mark.parametrize(
    "text, mention",
    [
        ("Le café de Zoë à Montréal est ouvert.", "Montréal"),
        ("Zoë Ångström arrived.", "Zoë Ångström"),
        ("我们在东京见面了。", "东京"),
        ("We met 😀 in 東京 🍣 yesterday 👍🏽.", "東京"),
        ("Family 👨‍👩‍👧 trip to Kraków!", "Kraków"),
    ],
)
def test_unicode_mentions_are_marked_exactly(backbone, encoder, text, mention):
    tok = backbone.tokenizer
    m = tok.conpet_markers
    x = entity(text, mention)
    enc = encoder.encode(x)
    inside = between(enc.input_ids, m.e1, m.e1_end)
    start = x.spans[0].start
    while start > 0 and text[start - 1].isspace():
        start -= 1
    assert inside == ids_of(tok, text[start : x.spans[0].end])
    if backbone.arch == "decoder":  # byte-level BPE is lossless
        assert tok.decode(inside).strip() == mention
    assert enc.input_ids[enc.mask_index] == m.mask


# --- batches -----------------------------------------------------------------------------------


def test_collate_pads_right_to_the_longest(backbone, encoder):
    xs = [
        entity("Paris.", "Paris"),
        relation("Marie Curie was born in Warsaw, the capital of Poland.", "Marie Curie", "Warsaw"),
        entity("I love Berlin.", "Berlin"),
    ]
    encs = [encoder.encode(x) for x in xs]
    batch = encoder.collate(encs)
    width = max(len(e) for e in encs)
    assert isinstance(batch, Batch) and len(batch) == 3
    assert batch.input_ids.shape == batch.attention_mask.shape == (3, width)
    assert batch.input_ids.dtype == torch.long
    pad = backbone.tokenizer.pad_token_id
    for row, e in enumerate(encs):
        assert batch.input_ids[row, : len(e)].tolist() == list(e.input_ids)
        assert batch.attention_mask[row].tolist() == [1] * len(e) + [0] * (width - len(e))
        assert batch.input_ids[row, len(e) :].eq(pad).all()
        assert batch.input_ids[row, batch.mask_index[row]] == encoder.markers.mask
    assert batch.mask_index.tolist() == [e.mask_index for e in encs]
    again = encoder.batch(xs)
    assert torch.equal(again.input_ids, batch.input_ids) and torch.equal(again.mask_index, batch.mask_index)
    assert batch.to("cpu").input_ids is batch.input_ids
    with pytest.raises(ValueError):
        encoder.collate([])
