"""Undoable annotation edits (QUndoCommand). Every command writes through the project model, so each
step (do, undo, redo) is one store transaction and is saved at once; the store keeps every version, so
undo adds a version rather than erasing one.

Use :func:`perform`: it runs the command's first ``redo`` and pushes it only when the store accepted
the edit, so a refused edit (an overlap, a wrong kind) never lands on the stack.

Undo and redo may change a sentence the user is not looking at, so after each one the model emits
``editReplayed`` with the annotation it touched: the annotate view goes to that sentence and
highlights it, and the window says what was undone.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from app.viewmodels.project_model import ProjectModel
from conpet.core.errors import ConpetError
from conpet.data.example import Span


class _Command(QUndoCommand):
    def __init__(self, model: ProjectModel, text: str) -> None:
        super().__init__(text)
        self.model = model
        self._pushed = False

    def first(self) -> None:
        raise NotImplementedError

    def do(self) -> None:
        raise NotImplementedError

    def undo_(self) -> None:
        raise NotImplementedError

    def touched(self) -> int | None:
        """The annotation this command changes (to show it after an undo or redo)."""
        return getattr(self, "annotation_id", None)

    def redo(self) -> None:
        if not self._pushed:  # perform() already did it
            self._pushed = True
            return
        if self._guard(self.do):
            self._replayed("Redid")

    def undo(self) -> None:
        if self._guard(self.undo_):
            self._replayed("Undid")

    def _replayed(self, verb: str) -> None:
        annotation_id = self.touched()
        if annotation_id is not None:
            self.model.editReplayed.emit(f"{verb} “{self.text()}”", annotation_id)

    def _guard(self, fn) -> bool:
        try:
            fn()
        except ConpetError as exc:
            self.setObsolete(True)
            self.model.message.emit("error", f"Could not {self.text().lower()}: {exc}")
            return False
        return True


def perform(model: ProjectModel, cmd: _Command) -> bool:
    """Do ``cmd`` now; on success put it on the undo stack. A refusal is reported and returns False."""
    refusal = attempt(model, cmd)
    if refusal is not None:
        model.message.emit("error", refusal)
    return refusal is None


def attempt(model: ProjectModel, cmd: _Command) -> str | None:
    """``perform`` for a caller that words a refusal itself: the store's reason, or None when done."""
    try:
        cmd.first()
    except ConpetError as exc:
        return str(exc)
    model.undo_stack.push(cmd)
    return None


class AddEntity(_Command):
    def __init__(self, model: ProjectModel, sentence_id: int, start: int, end: int, type_id: int) -> None:
        super().__init__(model, f"Mark entity as {model.type(type_id).name}")
        self.sentence_id, self.start, self.end, self.type_id = sentence_id, start, end, type_id
        self.annotation_id: int | None = None

    def first(self) -> None:
        self.annotation_id = self.model._add_entity(self.sentence_id, self.start, self.end, self.type_id).id

    def do(self) -> None:
        self.model._restore(self.annotation_id)

    def undo_(self) -> None:
        self.model._delete(self.annotation_id)


class AddRelation(_Command):
    def __init__(self, model: ProjectModel, sentence_id: int, head: Span, tail: Span, type_id: int) -> None:
        super().__init__(model, f"Add relation {model.type(type_id).name}")
        self.sentence_id, self.head, self.tail, self.type_id = sentence_id, head, tail, type_id
        self.annotation_id: int | None = None

    def first(self) -> None:
        self.annotation_id = self.model._add_relation(self.sentence_id, self.head, self.tail, self.type_id).id

    def do(self) -> None:
        self.model._restore(self.annotation_id)

    def undo_(self) -> None:
        self.model._delete(self.annotation_id)


class DeleteAnnotation(_Command):
    def __init__(self, model: ProjectModel, annotation_id: int) -> None:
        a = model.annotation(annotation_id)
        super().__init__(model, f"Delete {a.kind} {a.type_name}")
        self.annotation_id = annotation_id

    def first(self) -> None:
        self.model._delete(self.annotation_id)

    def do(self) -> None:
        self.model._delete(self.annotation_id)

    def undo_(self) -> None:
        self.model._restore(self.annotation_id)


class ChangeType(_Command):
    """Give an annotation another type (and make it gold): a new version in the store."""

    def __init__(self, model: ProjectModel, annotation_id: int, type_id: int) -> None:
        a = model.annotation(annotation_id)
        super().__init__(model, f"Change {a.type_name} to {model.type(type_id).name}")
        self.annotation_id = annotation_id
        self.old = (a.type_id, a.status)
        self.new = (type_id, "gold")

    def first(self) -> None:
        self.do()

    def do(self) -> None:
        self.model._edit(self.annotation_id, type_id=self.new[0], status=self.new[1])

    def undo_(self) -> None:
        self.model._edit(self.annotation_id, type_id=self.old[0], status=self.old[1])


class _DecidePrediction(_Command):
    """A decision on a prediction, recorded with the model and run as its author: ``status`` "gold"
    (accepted: a new annotation, or a new version of the one on that span) or "rejected" (kept, so that
    training can use it as a negative)."""

    status = "gold"
    verb = "Accept"

    def __init__(self, model: ProjectModel, prediction_id: int) -> None:
        p = model.prediction(prediction_id)
        super().__init__(model, f"{self.verb} prediction {p.label}")
        self.prediction_id = prediction_id
        self.author = model.provenance(p)
        self.annotation_id: int | None = None
        self.created = False
        self.old: tuple[int, str] | None = None
        self.new: tuple[int, str] | None = None

    def _decide(self):
        if self.status == "gold":
            return self.model._accept_prediction(self.prediction_id, author=self.author)
        return self.model._reject_prediction(self.prediction_id, author=self.author)

    def first(self) -> None:
        p = self.model.prediction(self.prediction_id)
        history = self.model.project.annotations.history
        versions_before = {a.id: len(history(a.id)) for a in self.model.annotations(p.sentence_id)
                           if a.kind == p.kind and a.spans == p.spans}  # the only ones a decision can touch
        a = self._decide()
        self.annotation_id = a.id
        versions = history(a.id)
        self.created = a.id not in versions_before
        if not self.created and len(versions) > versions_before[a.id]:  # a new version of an annotation
            before = versions[-2]
            self.old = (before.type_id, before.status)
            self.new = (a.type_id, a.status)
        # else it was decided that way already: nothing changed, nothing to undo

    def do(self) -> None:
        if self.created:
            self.model._restore_as(self.annotation_id, self.author)
        elif self.new is not None:
            self.model._edit(self.annotation_id, type_id=self.new[0], status=self.new[1], author=self.author)

    def undo_(self) -> None:
        if self.created:
            self.model._delete(self.annotation_id)
        elif self.old is not None:
            self.model._edit(self.annotation_id, type_id=self.old[0], status=self.old[1])


class AcceptPrediction(_DecidePrediction):
    """The prediction becomes a gold annotation (a new one, or a new version of the one on that span)."""


class RejectPrediction(_DecidePrediction):
    """The predicted type is wrong for this span: a "rejected" annotation, kept and shown as such."""

    status = "rejected"
    verb = "Reject"


class CorrectPrediction(_Command):
    """The right type for a predicted mention or pair: retypes the annotation on that span, or adds one."""

    def __init__(self, model: ProjectModel, prediction_id: int, type_id: int) -> None:
        p = model.prediction(prediction_id)
        super().__init__(model, f"Correct {p.label} to {model.type(type_id).name}")
        self.p = p
        self.type_id = type_id
        self.inner: _Command | None = None

    def touched(self) -> int | None:
        return self.inner.touched() if self.inner is not None else None

    def first(self) -> None:
        p = self.p
        same = [a for a in self.model.annotations(p.sentence_id) if a.kind == p.kind and a.spans == p.spans]
        for a in sorted(same, key=lambda a: a.status != "gold"):  # a gold one first
                self.inner = ChangeType(self.model, a.id, self.type_id)
                break
        else:
            if p.kind == "entity":
                self.inner = AddEntity(self.model, p.sentence_id, p.start, p.end, self.type_id)
            else:
                self.inner = AddRelation(self.model, p.sentence_id, p.spans[0], p.spans[1], self.type_id)
        self.inner.first()

    def do(self) -> None:
        self.inner.do()

    def undo_(self) -> None:
        self.inner.undo_()


class SetRelationArguments(_Command):
    """Restrict a relation type's head and tail entity types (empty: any); undo brings the old lists back."""

    def __init__(self, model: ProjectModel, type_id: int, head: tuple[int, ...], tail: tuple[int, ...]) -> None:
        t = model.type(type_id)
        super().__init__(model, f"Change the head and tail types of {t.name}")
        self.type_id = type_id
        self.old = (t.head_type_ids, t.tail_type_ids)
        self.new = (tuple(head), tuple(tail))

    def first(self) -> None:
        self.do()

    def do(self) -> None:
        self.model.set_relation_arguments(self.type_id, *self.new)

    def undo_(self) -> None:
        self.model.set_relation_arguments(self.type_id, *self.old)

    def _replayed(self, verb: str) -> None:  # no annotation to show: say it in the status lines
        self.model.message.emit("ok", f"{verb} “{self.text()}”.")
