"""The mention detector's confidence threshold (issue 23, item 7): chosen on validation sentences the
detector did not train on, saved with the model (detector.json, suggestions.json, the bundle's manifest),
replaced by ``--mention-threshold``, and applied by default so that low-confidence proposals are dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from demo_data import DEMO

from conpet import cli
from conpet.bench.mentions import split_sample, threshold_rows
from conpet.bundle import Bundle, read_manifest
from conpet.core.errors import ConpetError
from conpet.data.example import Span
from conpet.project.bundles import export_bundle
from conpet.project.model import current_model_folder, read_model_state
from conpet.project.suggesters import VALIDATION_MIN_SENTENCES, detector_sentences, detector_validation
from conpet.project.training import train_project
from conpet.store import Project
from conpet.store.importer import import_file
from conpet.suggest.detector import DetectorError, MentionDetector, Proposal
from conpet.suggest.mention_threshold import choose_threshold, f_beta, scores_at
from conpet.suggest.mentions import MentionSentence, SpanScores, capitalised_runs
from conpet.suggest.suggestions import DETECTOR_KEY, SentenceInput, Suggesters, load_suggesters, suggest

TINY = {"batch_limit": 1, "max_epochs": 1, "min_valid_per_task": 2}
CHEAP = {"detector": {"batch_size": 8, "max_epochs": 1, "batch_limit": 1},
         "relatedness": {"batch_size": 8, "max_epochs": 1, "batch_limit": 1}}
SURE, UNSURE = 0.9, 0.4


# --- choosing the threshold (pure) -------------------------------------------------------------------------

def test_the_best_f1_threshold_is_chosen_and_a_tie_keeps_the_higher_one():
    a, b, c, d = Span(0, 3), Span(4, 7), Span(8, 11), Span(12, 15)
    gold = [[a, b], [c]]
    proposed = [[(a, 0.95), (b, 0.6), (d, 0.7)], [(c, 0.9), (d, 0.3)]]
    choice = choose_threshold(gold, proposed, beta=1.0)
    # >= 0.95: 1/1, R 1/3; >= 0.9: 2/2, F1 .8; >= 0.7: 2/3; >= 0.6: 3/4, F1 .857; >= 0.3: 3/5, F1 .75
    assert choice is not None and choice.threshold == 0.6
    assert (choice.chosen.true_positives, choice.chosen.n_predicted, choice.chosen.n_gold) == (3, 4, 3)
    assert choice.every_proposal == SpanScores(3, 3, 5) and choice.sentences == 2
    assert scores_at(gold, proposed, 0.6) == choice.chosen
    # the default, beta 0.5, weighs precision more: 0.9 keeps two right proposals and nothing wrong
    assert choose_threshold(gold, proposed).threshold == 0.9 and choose_threshold(gold, proposed).beta == 0.5
    # a tie (0.5: one right of one, R .5; 0.3: two right of four, R 1; F1 2/3 both) keeps the higher threshold
    tie = choose_threshold([[a, b]], [[(a, 0.5), (c, 0.4), (b, 0.3), (d, 0.3)]], beta=1.0)
    assert tie is not None and tie.threshold == 0.5
    assert choose_threshold([[]], [[(a, 0.5)]]) is None and choose_threshold([[a]], [[]]) is None
    assert f_beta(SpanScores(0, 3, 0)) == 0.0


# --- the detector applies, saves and loads it --------------------------------------------------------------

def _fixed_proposals(self, texts):
    """Hand-made proposals: each capitalised run is sure (0.9); its last word alone, when the run has
    several, is an unsure (0.4) and wrong one. Stands in for the trained tagger so the threshold is known."""
    out = []
    for text in texts:
        props = []
        for run in capitalised_runs(text):
            props.append(Proposal(run.start, run.end, SURE))
            last = text.rfind(" ", run.start, run.end)
            if last > 0:
                props.append(Proposal(last + 1, run.end, UNSURE))
        out.append(props)
    return out


@pytest.fixture
def fixed_detector(minilm, monkeypatch):
    monkeypatch.setattr(MentionDetector, "_propose_batch", _fixed_proposals)
    detector = MentionDetector(minilm)
    yield detector
    detector.pet.close()


def test_the_default_threshold_drops_low_confidence_proposals(fixed_detector):
    text = "Ada Lovelace met Charles Babbage in London ."
    every = fixed_detector.propose([text])[0]
    assert fixed_detector.threshold == 0.0 and {p.score for p in every} == {SURE, UNSURE}  # none chosen yet
    fixed_detector.threshold = 0.5
    kept = fixed_detector.propose([text])[0]
    assert [text[p.start:p.end] for p in kept] == ["Ada Lovelace", "Charles Babbage", "London"]
    assert len(fixed_detector.propose([text], min_score=0.0)[0]) == 5  # an explicit floor replaces it
    found = suggest(Suggesters(detector=fixed_detector), [SentenceInput(text)], {"entity"})
    assert sorted(s.scores[DETECTOR_KEY] for s in found) == [SURE, SURE, SURE]


def test_threshold_chosen_on_validation_sentences_survives_save_and_load(fixed_detector, minilm, tmp_path):
    validation = [MentionSentence("Ada Lovelace met Charles Babbage .", (Span(0, 12), Span(17, 32))),
                  MentionSentence("They walked to Hyde Park .", (Span(15, 24),))]
    choice = fixed_detector.choose_threshold(validation)
    assert choice is not None and fixed_detector.threshold == SURE  # every unsure proposal is wrong here
    fixed_detector.save(tmp_path / "detector")
    header = json.loads((tmp_path / "detector" / "detector.json").read_text())
    assert header["threshold"] == SURE and header["threshold_choice"]["validation_sentences"] == 2
    loaded = MentionDetector.load(tmp_path / "detector", minilm)
    try:
        assert loaded.threshold == SURE and loaded.threshold_choice == choice.to_dict()
    finally:
        loaded.pet.close()
    header["threshold"] = 1.5
    (tmp_path / "detector" / "detector.json").write_text(json.dumps(header))
    with pytest.raises(DetectorError, match=r"detector\.json: threshold: a mention threshold is a number"):
        MentionDetector.load(tmp_path / "detector", minilm)


def test_a_detector_saved_before_thresholds_keeps_every_proposal(minilm, tmp_path):
    detector = MentionDetector(minilm)
    try:
        detector.save(tmp_path / "d")
    finally:
        detector.pet.close()
    header = json.loads((tmp_path / "d" / "detector.json").read_text())
    del header["threshold"], header["threshold_choice"]
    (tmp_path / "d" / "detector.json").write_text(json.dumps(header))
    old = MentionDetector.load(tmp_path / "d", minilm)
    try:
        assert old.threshold == 0.0 and old.threshold_choice is None
    finally:
        old.pet.close()


# --- a project: held-out validation sentences, saved with the model and its bundle, overridden -------------

def _labelled_demo(n: int, out: Path) -> Path:
    lines = [ln for ln in DEMO.read_text(encoding="utf-8").splitlines()
             if any(e["type"] in {"Person", "City"} for e in json.loads(ln)["entities"])][:n]
    kept = []
    for line in lines:
        obj = json.loads(line)
        obj["entities"] = [e for e in obj["entities"] if e["type"] in {"Person", "City"}]
        obj["relations"] = []
        kept.append(json.dumps(obj))
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory, minilm) -> Path:
    """A trained project of 60 labelled demo sentences (Person, City) whose detector proposes the
    hand-made proposals (``_fixed_proposals``) so that the threshold it must choose is known."""
    mp = pytest.MonkeyPatch()
    mp.setattr(MentionDetector, "_propose_batch", _fixed_proposals)
    try:
        tmp = tmp_path_factory.mktemp("threshold")
        folder = tmp / "proj"
        with Project.create(folder) as p:
            import_file(p, _labelled_demo(60, tmp / "labelled.jsonl"))
            p.sentences.add("Maria Lopez moved to Valencia last spring.")  # unlabelled: proposals go here
        train_project(folder, backbone=minilm, profile="smoke", overrides=TINY, suggesters=CHEAP)
    finally:
        mp.undo()
    return folder


def test_training_holds_out_validation_sentences_and_chooses_the_threshold_on_them(project):
    with Project.open(project) as p:
        data = detector_sentences(p)
        folder = current_model_folder(p)
        log = p.runs.list()[0].log
    _, training = read_model_state(folder)
    state = training["suggesters"]["detector"]
    trained = {sid for step in state["steps"] for sid in step}
    held = detector_validation(data, {})
    assert len(data) >= VALIDATION_MIN_SENTENCES and held and not held & trained
    assert trained | held == set(data)
    header = json.loads((folder / "detector" / "detector.json").read_text())
    expected = choose_threshold([data[i].spans for i in sorted(held)],
                                [[(p.span, p.score) for p in props]
                                 for props in _fixed_proposals(None, [data[i].text for i in sorted(held)])])
    assert expected is not None
    assert header["threshold"] == expected.threshold and header["threshold_choice"] == expected.to_dict()
    assert header["threshold_choice"]["validation_sentences"] == len(held)
    info = json.loads((folder / "suggestions.json").read_text())
    assert info["mention_threshold"] == expected.threshold
    assert "mention threshold: threshold" in log


def test_a_later_step_keeps_earlier_trained_sentences_out_of_validation():
    data = {i: MentionSentence(f"Sentence number {i} of Ada .", (Span(19, 22),)) for i in range(40)}
    held = detector_validation(data, {})
    assert held and len(held) < len(data)
    assert detector_validation(data, {"steps": [sorted(held)]}) == set()  # trained once: trained for good
    small = {i: data[i] for i in range(VALIDATION_MIN_SENTENCES - 1)}
    assert detector_validation(small, {}) == set()


def test_the_bundle_carries_the_threshold_and_the_override_replaces_it(project, minilm, tmp_path, monkeypatch):
    monkeypatch.setattr(MentionDetector, "_propose_batch", _fixed_proposals)
    path = export_bundle(project, tmp_path / "b.zip")
    with Project.open(project) as p:
        saved = json.loads((current_model_folder(p) / "detector" / "detector.json").read_text())["threshold"]
    assert read_manifest(path)["suggesters"]["mention_threshold"] == saved == SURE
    bundle = Bundle.load(path, minilm)
    try:
        default = bundle.predict([{"text": "Maria Lopez moved to Valencia last spring."}])[0]
        assert {m.expert_scores[DETECTOR_KEY] for m in default.mentions} == {SURE}
    finally:
        bundle.close()
    every = Bundle.load(path, minilm, mention_threshold=0.0)
    try:
        scores = {m.expert_scores[DETECTOR_KEY] for m in every.predict([{"text": "Maria Lopez moved to Valencia."}])[0].mentions}
        assert scores == {SURE, UNSURE}
    finally:
        every.close()
    with pytest.raises(ConpetError, match="mention threshold: a mention threshold is a number from 0 to 1"):
        load_suggesters(Path("nowhere"), minilm, mention_threshold=2.0)


def test_conpet_predict_project_takes_the_override(project, monkeypatch, capsys):
    monkeypatch.setattr(MentionDetector, "_propose_batch", _fixed_proposals)
    out = project.parent / "predictions.jsonl"
    for floor, expected in (("0", {SURE, UNSURE}), (None, {SURE})):
        argv = ["predict", str(project), "--out", str(out), "--device", "cpu", "--threads", "1", "--quiet"]
        assert cli.main(argv + (["--mention-threshold", floor] if floor else [])) == 0
        lines = [json.loads(ln) for ln in out.read_text().splitlines()]
        scores = {p["expert_scores"][DETECTOR_KEY] for ln in lines for p in ln["predictions"]
                  if DETECTOR_KEY in p["expert_scores"]}
        assert scores == expected
    with pytest.raises(SystemExit):
        cli.main(["predict", str(project), "--mention-threshold", "1.5"])
    assert "expected a number from 0 to 1, got '1.5'" in capsys.readouterr().err


# --- the bench's table ---------------------------------------------------------------------------------------

def test_the_bench_table_scores_typed_and_span_only_proposals_by_threshold():
    a, b = Span(0, 3), Span(4, 7)
    gold = [[(a, "person")], []]
    proposed = [[(a, "person", 0.9), (b, "city", 0.5)], [(a, "city", 0.7)]]
    rows = threshold_rows(gold, proposed, [0.0, 0.8])
    assert rows[0]["typed"]["precision"] == pytest.approx(1 / 3) and rows[0]["untyped"]["predicted"] == 3
    assert rows[0]["proposals_per_gold"] == 3.0
    assert rows[1]["typed"]["f1"] == 1.0 and rows[1]["untyped"]["f1"] == 1.0
    train, test = split_sample([(str(i), []) for i in range(10)], 6, 3, seed=1)
    assert len(train) == 6 and len(test) == 3 and not {t for t, _ in train} & {t for t, _ in test}
