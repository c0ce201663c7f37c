"""Several annotators at once: an edit to a sentence that someone changed since the editor read it is
refused, naming who changed it, and nothing is lost when writers race (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from postgres_server import (  # noqa: F401 (fixtures)
    fixture_postgres_admin_url,
    fixture_postgres_url,
    fixture_project_where,
)

from conpet.store import Project, StaleSentenceError

TEXT = "Ada Lovelace was born in London ."


@pytest.fixture
def two_annotators(project_where):
    """Two app instances on one project: ana's and bob's."""
    with Project.create(project_where) as p:
        p.types.add("person")
        p.types.add("place")
        p.sentences.add(TEXT)
    ana, bob = Project.open(project_where), Project.open(project_where)
    ana.user, bob.user = "ana", "bob"
    yield ana, bob
    ana.close()
    bob.close()


def test_an_edit_to_a_sentence_changed_since_it_was_shown_is_refused_naming_who(two_annotators):
    ana, bob = two_annotators
    shown = ana.annotations.revision(1)
    assert shown == 0 and bob.annotations.revision(1) == 0
    bob.annotations.add_entity(1, 0, 12, "person", expected=bob.annotations.revision(1))
    with pytest.raises(StaleSentenceError, match="sentence 1 was changed by bob .*not saved") as err:
        ana.annotations.add_entity(1, 25, 31, "place", expected=shown)
    assert err.value.author == "bob" and err.value.revision == ana.annotations.revision(1) > shown
    assert [a.type_name for a in ana.annotations.for_sentence(1)] == ["person"]  # nothing of ana's written
    # reloaded, ana decides again and her change goes in; now bob's view is the stale one
    place = ana.annotations.add_entity(1, 25, 31, "place", expected=err.value.revision)
    with pytest.raises(StaleSentenceError, match="changed by ana"):
        bob.annotations.delete(place.id, expected=err.value.revision)
    with pytest.raises(StaleSentenceError):
        bob.annotations.edit(place.id, type="person", expected=0)
    assert ana.annotations.get(place.id).status == "gold"
    assert bob.annotations.revisions([1, 99]) == {1: ana.annotations.revision(1), 99: 0}
    bob.annotations.delete(place.id)  # without a revision, no check (scripts, imports)


def test_racing_annotators_lose_nothing(two_annotators, project_where):
    """Four writers add 12 mentions each to one sentence, each reading the revision, writing with it and
    retrying when refused: every mention is there once, with its author."""
    ana, _bob = two_annotators
    words = [f"w{i:02d}" for i in range(48)]
    sentence = ana.sentences.add(" ".join(words))
    starts = [i * 4 for i in range(48)]  # "wNN " is 4 characters
    refused = []

    def annotate(who: int) -> None:
        with Project.open(project_where) as p:
            p.user = f"annotator-{who}"
            for k in range(who, 48, 4):
                while True:
                    seen = p.annotations.revision(sentence.id)
                    try:
                        p.annotations.add_entity(sentence.id, starts[k], starts[k] + 3, "person", expected=seen)
                        break
                    except StaleSentenceError:
                        refused.append(who)

    threads = [threading.Thread(target=annotate, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = ana.annotations.for_sentence(sentence.id)
    assert sorted(a.start for a in got) == starts  # none lost, none twice
    assert {a.start: a.author for a in got} == {starts[k]: f"annotator-{k % 4}" for k in range(48)}
    assert ana.integrity_check() == "ok"
