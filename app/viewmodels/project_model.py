"""The open project as the views see it: a QObject over ``conpet.store.Project`` that forwards reads to the
store's repositories (frozen records) and announces every change with a signal, so that each view
refreshes itself. All writes made by the user go through here (one store transaction each) and, for
annotation edits, through the undo stack (see ``app.undo``).

Workers never use this object: they open their own ``Project`` on their own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from app.viewmodels.type_defaults import free_colour, free_shortcut, same_name
from conpet.core.errors import ConpetError
from conpet.data.example import Span
from conpet.store import (
    AnnotationRecord,
    PredictionRecord,
    Project,
    RunRecord,
    SentenceRecord,
    StaleSentenceError,
    TaskRecord,
    TypeRecord,
)


def _article(word: str) -> str:
    """ "an entity", "a relation" """
    return "an" if word[:1].lower() in "aeiou" else "a"


class ProjectModel(QObject):
    typesChanged = Signal()
    annotationsChanged = Signal(int)  # sentence id (-1: many sentences)
    sentencesChanged = Signal()  # sentences added (an import)
    runsChanged = Signal()
    predictionsChanged = Signal()
    tasksChanged = Signal()
    message = Signal(str, str)  # (level "info" | "ok" | "error", text): the views' status lines
    editReplayed = Signal(str, int)  # (what was undone / redone, in words; the annotation it touched)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.folder: Path = project.folder  # a server project's working folder on this machine
        self.where: str = project.location.target  # what workers open: the folder or the server's URL
        self.undo_stack = QUndoStack(self)
        self._type_cache: dict[int, TypeRecord] | None = None
        self._task_cache: list[TaskRecord] | None = None  # read for every routed prediction shown
        self._shown: dict[int, int] = {}  # sentence id -> the revision this app last read (app.undo's edits)
        self._token: dict[str, object] | None = None  # what poll_changes saw last
        self.typesChanged.connect(self._drop_type_cache)
        self.tasksChanged.connect(self._drop_type_cache)
        self.runsChanged.connect(self._drop_type_cache)  # a training run adds a task when it ends

    @classmethod
    def open(cls, folder: str | Path, parent: QObject | None = None) -> ProjectModel:
        """A project folder, or a ``postgresql://`` URL."""
        from conpet.project.model import open_folder

        return cls(open_folder(folder), parent)  # orphaned run and temporary folders are collected

    def close(self) -> None:
        self.undo_stack.clear()
        self.project.close()

    @property
    def name(self) -> str:
        return self.project.info().name

    # --- types ----------------------------------------------------------------------------------
    def _drop_type_cache(self) -> None:
        self._type_cache = None
        self._task_cache = None

    def refresh_types(self) -> None:
        """Forget the cached types (a worker may have added some)."""
        self._drop_type_cache()

    def types(self, kind: str | None = None) -> list[TypeRecord]:
        if self._type_cache is None:
            self._type_cache = {t.id: t for t in self.project.types.list()}
        return [t for t in self._type_cache.values() if kind is None or t.kind == kind]

    def type(self, type_id: int) -> TypeRecord:
        for t in self.types():
            if t.id == type_id:
                return t
        return self.project.types.get(type_id)  # a deleted type (old annotations keep it)

    def type_by_shortcut(self, key: str) -> TypeRecord | None:
        for t in self.types():
            if t.shortcut and t.shortcut.lower() == key.lower():
                return t
        return None

    def gold_counts(self) -> dict[int, int]:
        return self.project.types.gold_counts()

    def add_type(self, name: str, kind: str, *, description: str = "", colour: str | None = None,
                 shortcut: str | None = None) -> TypeRecord:
        self._refuse_same_name(name, kind)
        t = self.project.types.add(name, kind, description=description, colour=colour or free_colour(self.types()),
                                   shortcut=shortcut or None)
        self.typesChanged.emit()
        return t

    def _refuse_same_name(self, name: str, kind: str, exclude: int | None = None) -> None:
        """"city" beside "City" would split one type's examples in two: names are compared without case."""
        other = same_name(self.types(), name, kind, exclude=exclude)
        if other is not None:
            raise ConpetError(f"there is already {_article(kind)} {kind} type called {other.name!r} (names are compared "
                              "without regard to case)")

    def rename_type(self, type_id: int, name: str) -> TypeRecord:
        self._refuse_same_name(name, self.type(type_id).kind, exclude=type_id)
        t = self.project.types.rename(type_id, name)
        self.typesChanged.emit()
        self.annotationsChanged.emit(-1)
        return t

    def describe_type(self, type_id: int, description: str) -> TypeRecord:
        t = self.project.types.describe(type_id, description)
        self.typesChanged.emit()
        return t

    def set_type_colour(self, type_id: int, colour: str) -> TypeRecord:
        t = self.project.types.set_colour(type_id, colour)
        self.typesChanged.emit()
        self.annotationsChanged.emit(-1)
        return t

    def set_type_shortcut(self, type_id: int, shortcut: str | None) -> TypeRecord:
        t = self.project.types.set_shortcut(type_id, shortcut or None)
        self.typesChanged.emit()
        return t

    def set_relation_arguments(self, type_id: int, head: Sequence[int], tail: Sequence[int]) -> TypeRecord:
        """The entity types a relation type's head and tail may have (empty: any); through
        ``app.undo.SetRelationArguments`` when the user does it. Refused while gold relations disagree."""
        t = self.project.types.set_arguments(type_id, head=list(head), tail=list(tail))
        self.typesChanged.emit()
        return t

    def tidy_new_types(self, type_ids: set[int]) -> None:
        """Give types an import created a colour no other type has and a free shortcut key."""
        for t in sorted((t for t in self.types() if t.id in type_ids), key=lambda t: t.id):
            others = [o for o in self.types() if o.id != t.id]
            if any(o.colour.lower() == t.colour.lower() for o in others):
                self.project.types.set_colour(t.id, free_colour(others))
            if not t.shortcut:
                key = free_shortcut(others)
                if key:
                    self.project.types.set_shortcut(t.id, key)
            self._drop_type_cache()

    def delete_type(self, type_id: int) -> None:
        """Refused by the store (TypeInUseError, with the reason) when a trained task uses the type."""
        self.project.types.delete(type_id)
        self.undo_stack.clear()  # earlier edits may refer to the annotations this deleted
        self.typesChanged.emit()
        self.annotationsChanged.emit(-1)

    # --- sentences and annotations --------------------------------------------------------------
    def sentence_ids(self, text: str | None = None, *, type_id: int | None = None,
                     status: str | None = None) -> list[int]:
        return self.project.sentences.ids(text or None, type=type_id, status=status)

    def sentences(self, ids: Sequence[int]) -> dict[int, SentenceRecord]:
        return self.project.sentences.get_many(list(ids))

    def sentence(self, sentence_id: int) -> SentenceRecord:
        return self.project.sentences.get(sentence_id)

    def add_sentences(self, texts: list[str], source: str = "") -> list[tuple[int, bool]]:
        """Add sentences in one transaction: ``(id, created)`` per text (a text already there is not added)."""
        out = self.project.sentences.add_many(texts, source)
        if any(created for _, created in out):
            self.sentencesChanged.emit()
        return out

    def annotations(self, sentence_id: int) -> list[AnnotationRecord]:
        """The sentence's annotations, its revision noted first (a change in between makes the noted
        revision older, so the next write is refused rather than overwriting unseen work)."""
        revision = self.project.annotations.revision(sentence_id)
        out = self.project.annotations.for_sentence(sentence_id)
        self._shown[sentence_id] = revision
        return out

    def annotations_for(self, sentence_ids: Sequence[int]) -> dict[int, list[AnnotationRecord]]:
        revisions = self.project.annotations.revisions(list(sentence_ids))
        out = self.project.annotations.for_sentences(list(sentence_ids))
        self._shown.update(revisions)
        return out

    def annotation(self, annotation_id: int) -> AnnotationRecord:
        return self.project.annotations.get(annotation_id)

    # Raw edits: each is one store transaction. The undo commands in app.undo call these. Each passes the
    # revision at which this app last read the sentence: a sentence a teammate changed since is refused
    # (StaleSentenceError, naming who), reloaded, and the refusal reported by app.undo.
    def _write(self, sentence_id: int, write: Callable[[int | None], AnnotationRecord]) -> AnnotationRecord:
        try:
            a = write(self._shown.get(sentence_id))
        except StaleSentenceError:
            self._shown.pop(sentence_id, None)
            self.annotationsChanged.emit(sentence_id)  # the views reload it (and read its revision again)
            raise
        self._shown[sentence_id] = self.project.annotations.revision(sentence_id)
        self.annotationsChanged.emit(sentence_id)
        return a

    def _sentence_of(self, annotation_id: int) -> int:
        return self.project.annotations.get(annotation_id).sentence_id

    def _add_entity(self, sentence_id: int, start: int, end: int, type_id: int) -> AnnotationRecord:
        return self._write(sentence_id, lambda seen: self.project.annotations.add_entity(
            sentence_id, start, end, type_id, expected=seen))

    def _add_relation(self, sentence_id: int, head: Span, tail: Span, type_id: int) -> AnnotationRecord:
        return self._write(sentence_id, lambda seen: self.project.annotations.add_relation(
            sentence_id, head, tail, type_id, expected=seen))

    def _delete(self, annotation_id: int) -> AnnotationRecord:
        return self._write(self._sentence_of(annotation_id), lambda seen: self.project.annotations.delete(
            annotation_id, expected=seen))

    def _restore(self, annotation_id: int) -> AnnotationRecord:
        return self._write(self._sentence_of(annotation_id), lambda seen: self.project.annotations.restore(
            annotation_id, expected=seen))

    def _edit(self, annotation_id: int, *, type_id: int | None = None, status: str | None = None,
              author: str | None = None) -> AnnotationRecord:
        return self._write(self._sentence_of(annotation_id), lambda seen: self.project.annotations.edit(
            annotation_id, type=type_id, status=status, author=author, expected=seen))

    def _restore_as(self, annotation_id: int, author: str) -> AnnotationRecord:
        return self._write(self._sentence_of(annotation_id), lambda seen: self.project.annotations.restore(
            annotation_id, author=author, expected=seen))

    def _accept_prediction(self, prediction_id: int, author: str | None = None) -> AnnotationRecord:
        sid = self.project.predictions.get(prediction_id).sentence_id
        return self._write(sid, lambda seen: self.project.annotations.accept_prediction(
            prediction_id, author=author, expected=seen))

    def _reject_prediction(self, prediction_id: int, author: str | None = None) -> AnnotationRecord:
        sid = self.project.predictions.get(prediction_id).sentence_id
        return self._write(sid, lambda seen: self.project.annotations.reject_prediction(
            prediction_id, author=author, expected=seen))

    def poll_changes(self) -> int:
        """Announce what teammates (other app instances, workers, other machines) changed since the last
        poll: the sentences whose annotations changed, new types or type edits, runs, sentences. Returns
        how many sentences changed. The main window calls it every few seconds."""
        token = self.project.change_token()
        if self._token is None or token == self._token:
            self._token = token
            return 0
        before, self._token = self._token, token
        changed = self.project.annotations.changed_since(before["annotation_version"])
        teammates = [sid for sid, rev in changed.items() if self._shown.get(sid) != rev]
        for sid in teammates:
            self._shown.pop(sid, None)
            self.annotationsChanged.emit(sid)
        if token["type_edit"] != before["type_edit"]:
            self.typesChanged.emit()
        if token["run"] != before["run"]:
            self.runsChanged.emit()
        if token["sentences"] != before["sentences"]:
            self.sentencesChanged.emit()
        return len(teammates)

    def provenance(self, prediction: PredictionRecord) -> str:
        """The author of an annotation decided on a prediction: who decided, and the model (its method) and
        run that proposed it ("ana via model:dynamic-lda run 3")."""
        try:
            method = self.run(prediction.run_id).method
        except ConpetError:
            method = ""
        return f"{self.project.user} via model:{method + ' ' if method else ''}run {prediction.run_id}"

    # --- tasks, runs, modules, predictions ------------------------------------------------------
    def tasks(self) -> list[TaskRecord]:
        if self._task_cache is None:
            self._task_cache = self.project.tasks.list()
        return list(self._task_cache)

    def runs(self, *, purpose: str | None = None) -> list[RunRecord]:
        runs = self.project.runs.list()
        return [r for r in runs if purpose is None or r.purpose == purpose]

    def run(self, run_id: int) -> RunRecord:
        return self.project.runs.get(run_id)

    def latest_prediction_run(self) -> RunRecord | None:
        """The newest finished whole-project prediction run (what routing review and the confidence
        filter show); a "Predict this sentence" run covers one sentence and does not count."""
        for r in self.project.runs.list(status="finished"):
            if r.purpose == "predict" and r.config.get("sentences", "all") == "all":
                return r
        return None

    def predictions_for_sentence(self, sentence_id: int) -> list[PredictionRecord]:
        """The newest predictions of this sentence (a whole-project run, a one-sentence run, or the test
        predictions a training run stores)."""
        return self.project.predictions.for_sentence(sentence_id)

    def predictions_for_run(self, run_id: int) -> list[PredictionRecord]:
        return self.project.predictions.for_run(run_id)

    def prediction(self, prediction_id: int) -> PredictionRecord:
        return self.project.predictions.get(prediction_id)

    def step_metrics(self) -> list[dict]:
        """One metrics entry per learnt step, oldest first (accuracies as fractions; see
        conpet.project.training): task_index, types, whole_acc, avg_acc, task_acc, selector_acc, ..."""
        from conpet.project.model import step_metrics

        return step_metrics(self.project)

    def counts(self) -> dict[str, int]:
        return self.project.counts()

    # --- after a worker wrote to the store ------------------------------------------------------
    def refresh_all(self) -> None:
        self._drop_type_cache()
        self.typesChanged.emit()
        self.tasksChanged.emit()
        self.sentencesChanged.emit()
        self.annotationsChanged.emit(-1)
        self.runsChanged.emit()
        self.predictionsChanged.emit()
