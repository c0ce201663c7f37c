"""Many sentences in one transaction (pasted text, the Label view's add field): ids in order, duplicates
(already in the project, or twice in the batch) not added again, an empty text refused with nothing
written; and the lean read of a run's prediction signals that the "next most useful" queue orders."""

from __future__ import annotations

import pytest

from conpet.data.example import Span
from conpet.store import Project
from conpet.store.errors import StoreError
from conpet.store.records import NewPrediction


def test_add_many_keeps_order_and_counts_duplicates(tmp_path):
    with Project.create(tmp_path / "p") as p:
        old = p.sentences.add("Ada lives in Porto.").id
        out = p.sentences.add_many(["Bo flew to Oslo.", "Ada lives in Porto.", "Cy met Di.", "Bo flew to Oslo."],
                                   source="pasted")
        assert [created for _, created in out] == [True, False, True, False]
        assert out[1][0] == old and out[3][0] == out[0][0]
        assert [p.sentences.get(i).text for i, _ in out] == ["Bo flew to Oslo.", "Ada lives in Porto.", "Cy met Di.",
                                                             "Bo flew to Oslo."]
        assert p.sentences.get(out[0][0]).source == "pasted"
        with pytest.raises(StoreError, match="must not be empty"):
            p.sentences.add_many(["Eve is new.", "  "])
        assert p.sentences.by_text("Eve is new.") is None and p.sentences.count() == 3


def test_ids_with_current_annotations_by_status(tmp_path):
    with Project.create(tmp_path / "p") as p:
        p.types.add("City", "entity")
        a, b, c = (p.sentences.add(t).id for t in ("Bo flew to Oslo.", "Cy is in Rome.", "Di sings."))
        p.annotations.add_entity(a, 11, 15, "City")
        p.annotations.add_entity(b, 9, 13, "City", status="rejected")
        gone = p.annotations.add_entity(c, 0, 2, "City")
        p.annotations.delete(gone.id)  # a deleted annotation is not current gold
        assert p.sentences.ids_with_current() == {a}
        assert p.sentences.ids_with_current(("gold", "rejected")) == {a, b}
        assert p.sentences.ids_with_current(("gold",)) == set(p.sentences.ids(status="annotated"))


def test_signals_for_run_are_the_records_fields(tmp_path):
    with Project.create(tmp_path / "p") as p:
        p.types.add("City", "entity")
        sid = p.sentences.add("Bo flew to Oslo.").id
        run = p.runs.start("dynamic-lda", purpose="predict")
        p.predictions.add_many(run.id, [NewPrediction(sid, (Span(11, 15),), "City", 0.7, selector_scores=(0.4, 0.6),
                                                      expert_scores={"detector": 0.9}),
                                        NewPrediction(sid, (Span(0, 2),), "City", 0.2)])
        got = sorted(p.predictions.signals_for_run(run.id), key=lambda r: r[1])
        assert got == [(sid, 0.2, None, {}), (sid, 0.7, [0.4, 0.6], {"detector": 0.9})]
