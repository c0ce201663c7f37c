"""The mention detector (issue 14): BIO tags from token offsets and back, the capitalised-runs baseline,
span F1, and a tiny real training run on MiniLM (proposals, save/load, replay of earlier steps)."""

from __future__ import annotations

import json

import pytest

from conpet.bench.detector import read_fewnerd_sentences
from conpet.core.errors import Cancelled
from conpet.data.example import Example, Span
from conpet.data.jsonl import Entity, Relation, Sentence
from conpet.suggest.detector import DetectorError, DetectorSettings, MentionDetector
from conpet.suggest.mentions import (
    IGNORE,
    TAG_B,
    TAG_I,
    TAG_O,
    MentionSentence,
    capitalised_runs,
    decode_tags,
    gold_sentences,
    span_scores,
    token_shapes,
    token_tags,
)


def ms(text: str, *mentions: str) -> MentionSentence:
    """A sentence with the first occurrence of each mention string marked."""
    spans, at = [], 0
    for m in mentions:
        start = text.index(m, at)
        spans.append(Span(start, start + len(m)))
        at = start + len(m)
    return MentionSentence(text, tuple(spans))


def words(text: str, spans) -> list[str]:
    return [text[s.start : s.end] for s in spans]


# --- tags from offsets and back ---------------------------------------------------------------------

# "Ada Lovelace lives in London" as a wordpiece tokenizer splits it: [CLS] ada love ##lace lives in lon
# ##don [SEP] [PAD]
TEXT = "Ada Lovelace lives in London"
OFFSETS = [(0, 0), (0, 3), (4, 8), (8, 12), (13, 18), (19, 21), (22, 25), (25, 28), (0, 0), (0, 0)]
WORD_IDS = [None, 0, 1, 1, 2, 3, 4, 4, None, None]


def test_token_tags_cover_subwords_and_skip_special_tokens():
    spans = [Span(0, 12), Span(22, 28)]
    assert token_tags(OFFSETS, spans) == [IGNORE, TAG_B, TAG_I, TAG_I, TAG_O, TAG_O, TAG_B, TAG_I, IGNORE,
                                          IGNORE]


def test_adjacent_mentions_each_start_with_b():
    # "Paris London": two mentions with nothing between them
    offsets = [(0, 0), (0, 5), (6, 12), (0, 0)]
    tags = token_tags(offsets, [Span(0, 5), Span(6, 12)])
    assert tags == [IGNORE, TAG_B, TAG_B, IGNORE]
    assert decode_tags("Paris London", offsets, tags, [None, 0, 1, None]) == [Span(0, 5), Span(6, 12)]


def test_decode_round_trips_a_mention_at_the_end():
    tags = token_tags(OFFSETS, [Span(0, 12), Span(22, 28)])
    assert words(TEXT, decode_tags(TEXT, OFFSETS, tags, WORD_IDS)) == ["Ada Lovelace", "London"]


def test_decode_widens_a_span_ending_inside_a_word():
    # only "lon" tagged: the proposal is still the whole word, never "Lon"
    tags = [TAG_O, TAG_O, TAG_O, TAG_O, TAG_O, TAG_O, TAG_B, TAG_O, TAG_O, TAG_O]
    assert words(TEXT, decode_tags(TEXT, OFFSETS, tags, WORD_IDS)) == ["London"]
    # without word ids the subword span is kept as tagged
    assert words(TEXT, decode_tags(TEXT, OFFSETS, tags)) == ["Lon"]


def test_decode_splits_at_a_b_inside_a_word_and_keeps_whole_words():
    # a B on "##lace" starts a new mention there; both widen to whole words, so they overlap and the
    # first (longer) one is kept
    tags = [IGNORE, TAG_B, TAG_I, TAG_B, TAG_O, TAG_O, TAG_O, TAG_B, IGNORE, IGNORE]
    assert words(TEXT, decode_tags(TEXT, OFFSETS, tags, WORD_IDS)) == ["Ada Lovelace", "London"]


def test_decode_reads_i_after_o_as_a_start_and_strips_whitespace():
    # byte-level BPE offsets include the leading space: " London" -> "London"
    offsets = [(0, 1), (1, 8)]
    assert decode_tags("I London", offsets, [TAG_O, TAG_I]) == [Span(2, 8)]


def test_token_shapes_are_the_shapes_of_whole_words():
    # "Ada" opens the sentence; "Lovelace" and "London" are capitalised in its middle, each subword with them
    assert token_shapes(TEXT, OFFSETS, WORD_IDS) == [0, 6, 2, 2, 1, 1, 2, 2, 0, 0]
    offsets = [(0, 0), (0, 4), (5, 9), (10, 11), (0, 0)]
    assert token_shapes("NASA 1969 ,", offsets, [None, 0, 1, 2, None]) == [0, 3, 4, 5, 0]


def test_gold_sentences_merge_examples_and_take_every_entity():
    text = "Ada met Bob in Rome ."
    a, b, r = Span(0, 3), Span(8, 11), Span(15, 19)
    examples = [Example(text, (a,), "person", "entity"), Example(text, (b,), "person", "entity"),
                Example(text, (a, r), "visited", "relation")]
    assert gold_sentences(examples) == [MentionSentence(text, (a, b, r))]
    sentence = Sentence(text, (Entity(0, 3, "person"), Entity(15, 19, None)), (Relation(0, 1, "visited"),))
    assert gold_sentences([sentence]) == [MentionSentence(text, (a, r))]


# --- baseline and F1 -----------------------------------------------------------------------------------

def test_capitalised_runs_skip_a_sentence_initial_function_word():
    text = "The United Nations met in New York City , said Kofi Annan ."
    assert words(text, capitalised_runs(text)) == ["United Nations", "New York City", "Kofi Annan"]
    assert words("Paris is big .", capitalised_runs("Paris is big .")) == ["Paris"]


def test_span_scores_exact_match():
    gold = [[Span(0, 5), Span(10, 15)], [Span(3, 7)], []]
    pred = [[Span(0, 5), Span(10, 14)], [], [Span(0, 2)]]
    s = span_scores(gold, pred)
    assert (s.true_positives, s.n_gold, s.n_predicted) == (1, 3, 3)
    assert s.precision == pytest.approx(1 / 3) and s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(1 / 3)
    assert span_scores([[]], [[]]).f1 == 0.0
    with pytest.raises(ValueError, match="2 gold sentences but 1"):
        span_scores([[], []], [[]])


def test_fewnerd_sentences_keep_unlabelled_ones_and_io_runs(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("New\tlocation-GPE\nYork\tlocation-GPE\nis\tO\nbig\tO\n\nno\tO\nmentions\tO\n", "utf-8")
    first, second = read_fewnerd_sentences(path)
    assert words(first.text, first.spans) == ["New York"]
    assert second == MentionSentence("no mentions", ())


# --- a tiny real run on MiniLM ----------------------------------------------------------------------------

PEOPLE = [ms("Alice Smith met Bob in the hall .", "Alice Smith", "Bob"),
          ms("Yesterday Carol spoke with Dave .", "Carol", "Dave"),
          ms("The letter was written by Erin Jones .", "Erin Jones"),
          ms("Nothing happened that day .")]
PLACES = [ms("We flew from Berlin to Rome .", "Berlin", "Rome"),
          ms("The river runs through Vienna .", "Vienna"),
          ms("They moved to Madrid last year .", "Madrid"),
          ms("It rained all week .")]
SETTINGS = DetectorSettings(batch_size=4, max_epochs=30, learning_rate=3e-3)


@pytest.fixture(scope="module")
def trained(minilm):
    """A detector trained in two steps: people first, then places (with replay of the people)."""
    detector = MentionDetector(minilm, SETTINGS)
    detector.train(PEOPLE)
    first = detector.propose([s.text for s in PEOPLE])
    seen = []

    class Sink:
        def report(self, event):
            pass

        def cancel_requested(self):
            return False

    original = detector._loss

    def recording_loss(batch):
        seen.append([s.text for s in batch])
        return original(batch)

    detector._loss = recording_loss
    report = detector.train(PLACES, progress=Sink())
    del detector._loss
    return detector, first, seen, report


def test_detector_learns_the_gold_mentions_and_proposes_them(trained):
    detector, first, _seen, _report = trained
    assert [[p.span for p in ps] for ps in first] == [list(s.spans) for s in PEOPLE]
    proposals = detector.propose([s.text for s in PLACES])
    assert [[p.span for p in ps] for ps in proposals] == [list(s.spans) for s in PLACES]
    assert all(0.5 < p.score <= 1.0 for ps in proposals for p in ps)


def test_a_later_step_replays_earlier_sentences_and_keeps_their_mentions(trained):
    detector, _first, seen, report = trained
    people = {s.text for s in PEOPLE}
    places = {s.text for s in PLACES}
    assert report.n_replayed_tasks == 1 and detector.last_plan.n_old == 2
    assert all(sum(t in people for t in batch) == 2 and sum(t in places for t in batch) == 2 for batch in seen)
    # the first step's mentions are still proposed after the second step
    after = detector.propose([s.text for s in PEOPLE])
    assert [[p.span for p in ps] for ps in after] == [list(s.spans) for s in PEOPLE]


def test_save_load_round_trip_gives_the_same_proposals(trained, minilm, tmp_path):
    detector, _first, _seen, _report = trained
    texts = [s.text for s in PEOPLE + PLACES] + ["Frank lives in Oslo ."]
    folder = detector.save(tmp_path / "det")
    assert sorted(p.name for p in folder.iterdir()) == ["detector.json", "module", "shape.safetensors"]
    loaded = MentionDetector.load(folder, minilm)
    assert loaded.steps == 2 and loaded.settings == SETTINGS
    assert loaded.propose(texts) == detector.propose(texts)


def test_load_refuses_a_folder_that_is_not_a_detector(tiny_bert, tmp_path):
    with pytest.raises(DetectorError, match="no detector.json"):
        MentionDetector.load(tmp_path, tiny_bert)
    (tmp_path / "detector.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(DetectorError, match="detector.json: not a conpet-mention-detector file"):
        MentionDetector.load(tmp_path, tiny_bert)


def test_training_stops_between_batches_when_cancelled(tiny_bert):
    class CancelAfterTwo:
        def __init__(self):
            self.reports = 0

        def report(self, event):
            self.reports += 1

        def cancel_requested(self):
            return self.reports >= 2

    detector = MentionDetector(tiny_bert, SETTINGS)
    sink = CancelAfterTwo()
    with pytest.raises(Cancelled):
        detector.train(PEOPLE, progress=sink)
    assert sink.reports == 2 and detector.steps == 0 and detector.tasks == []


def test_detect_bench_reports_detector_and_baseline(minilm, tmp_path, capsys):
    from conpet.cli.main import main

    folder = tmp_path / "fewnerd"
    folder.mkdir()
    block = "Alice\tperson-other\nmet\tO\nBob\tperson-other\n.\tO\n\nIt\tO\nrained\tO\n\n"
    for name in ("inter_dev.txt", "inter_test.txt"):
        (folder / name).write_text(block * 3, encoding="utf-8")
    out = tmp_path / "bench.json"
    assert main(["detect-bench", "--data-root", str(tmp_path), "--train", "4", "--test", "6", "--epochs", "1",
                 "--threads", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["train_sentences"], report["test_sentences"], report["test_mentions"]) == (4, 6, 6)
    # "Alice", "Bob" are capitalised runs; the sentence-initial "It" is skipped: the baseline is exact here
    assert report["baseline_capitalised_runs"]["f1"] == 1.0
    assert report["detector"]["gold"] == 6 and 0 <= report["detector"]["f1"] <= 1
    assert "capitalised runs" in capsys.readouterr().out
