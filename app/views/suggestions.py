"""The model's suggestions in the Label view: which predictions are still open, how they and the
rejected ones are drawn, and the keys that decide on them.

Keys (in the editor): Tab / Shift+Tab (or a click) selects a suggestion, Space accepts it, Delete rejects
it, Enter accepts every suggestion in the sentence and goes on, Alt+N goes to the next most useful
sentence (the model's least sure; ``app.viewmodels.review_queue``). A decision is one undo step and is
recorded with the model and run as its author (``ProjectModel.provenance``); a rejection is kept as a
"rejected" annotation, drawn struck through, so that it is not offered again and training can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.undo import AcceptPrediction, DeleteAnnotation, RejectPrediction, attempt, perform
from app.widgets.annotation_editor import Arc, Mark
from conpet.data.example import Span
from conpet.store import AnnotationRecord, PredictionRecord

KEYS_HELP = ("Tab selects a suggestion (or click it) · Space accepts it · Delete rejects it · "
             "Enter accepts all and goes on · Alt+N: next most useful")


def open_suggestions(predictions: list[PredictionRecord], annotations: list[AnnotationRecord]) -> list[PredictionRecord]:
    """The predictions still to decide on, mentions first: no gold label on their span, not over a gold
    mention (which the store would refuse anyway), and not rejected already with that type. A relation is
    offered only once both mentions it connects are gold: before, accepting it would make a gold relation
    on a mention that may still be rejected (and export it with untyped arguments)."""
    gold = [a for a in annotations if a.status == "gold"]
    spans = {(a.kind, a.spans) for a in gold}
    rejected = {(a.kind, a.spans, a.type_name) for a in annotations if a.status == "rejected"}
    mentions = [Span(a.start, a.end) for a in gold if a.kind == "entity"]
    out = []
    for p in predictions:
        if (p.kind, p.spans) in spans or (p.kind, p.spans, p.label) in rejected:
            continue
        if p.kind == "entity" and any(Span(p.start, p.end).overlaps(m) for m in mentions):
            continue
        if p.kind == "relation" and not all(end in mentions for end in p.spans):
            continue
        out.append(p)
    return sorted(out, key=lambda p: (p.kind != "entity", p.start, p.tail_start or -1))


def relations_on(span: Span, annotations: list[AnnotationRecord]) -> list[AnnotationRecord]:
    """The gold relations whose head or tail is exactly ``span``."""
    return [a for a in annotations if a.kind == "relation" and a.status == "gold" and span in a.spans]


def gold_label(a: AnnotationRecord) -> str:
    """A gold mark's tooltip: its type, and where it came from when a model proposed it (and who accepted it)."""
    if a.author.startswith("model:"):  # recorded before decisions named who made them
        return f"{a.type_name} (accepted from {a.author})"
    who, via, source = a.author.partition(" via ")
    if via and source.startswith("model:"):
        return f"{a.type_name} (accepted from {source} by {who})"
    return f"{a.type_name} (by {a.author})"


def suggestion_key(prediction_id: int) -> tuple[str, int]:
    """How the editor's marks name a suggestion (an annotation's mark is its plain id)."""
    return ("prediction", prediction_id)


def suggestion_label(p: PredictionRecord) -> str:
    return f"suggested: {p.label} ({100 * p.score:.0f} %, run {p.run_id}) · Space accepts, Delete rejects"


def suggestion_marks(suggestions: list[PredictionRecord], annotations: list[AnnotationRecord],
                     colour_of: Callable[[str], str]) -> tuple[list[Mark], list[Arc]]:
    """What to draw for the open suggestions (pale, dotted; relations dashed) and the rejections
    (struck through)."""
    marks = [Mark(a.start, a.end, "#8a8a8a", f"rejected: {a.type_name} (by {a.author})", a.id, rejected=True)
             for a in annotations if a.kind == "entity" and a.status == "rejected"]
    arcs = []
    for p in suggestions:
        if p.kind == "entity":
            marks.append(Mark(p.start, p.end, colour_of(p.label), suggestion_label(p), suggestion_key(p.id),
                              suggested=True))
        elif p.tail_start is not None and p.tail_end is not None:
            arcs.append(Arc((p.start, p.end), (p.tail_start, p.tail_end), colour_of(p.label), f"{p.label}?",
                            suggestion_key(p.id), suggested=True))
    return marks, arcs


class SuggestionActions:
    """The Label view's actions on suggestions (a mixin of ``AnnotateView``: it uses the view's model,
    editor, current sentence and status line)."""

    selected_suggestion: int | None = None

    def _suggestion(self, prediction_id: int | None) -> PredictionRecord | None:
        return next((p for p in self.suggestions if p.id == prediction_id), None)

    def select_suggestion(self, prediction_id: int | None) -> bool:
        p = self._suggestion(prediction_id)
        self.selected_suggestion = p.id if p is not None else None
        self.focus_annotation = None
        self._show_sentence(reload=False)
        if p is None:
            return False
        text = self.editor.toPlainText()
        shown = text[p.start:p.end] if p.kind == "entity" else f"{text[p.start:p.end]} → {text[p.tail_start:p.tail_end]}"
        i = self.suggestions.index(p) + 1
        self.show_message("info", f"Suggestion {i} of {len(self.suggestions)}: {shown!r} as {p.label} "
                          f"({100 * p.score:.0f} %, predictions of run {p.run_id}). Space accepts, Delete rejects, "
                          "Tab goes to the next, Enter accepts all and goes on.")
        return True

    def cycle_suggestion(self, delta: int = 1) -> bool:
        """Select the next (or previous) suggestion of the sentence, round and round."""
        if not self.suggestions:
            self.show_message("info", "No suggestions in this sentence. " + KEYS_HELP + ".")
            return False
        ids = [p.id for p in self.suggestions]
        i = ids.index(self.selected_suggestion) + delta if self.selected_suggestion in ids else (0 if delta > 0 else -1)
        return self.select_suggestion(ids[i % len(ids)])

    def _decide_selected(self, command: type, done: str) -> bool:
        p = self._suggestion(self.selected_suggestion)
        if p is None:
            self.show_message("error", "Select a suggestion first: press Tab, or click a dotted mention.")
            return False
        index = self.suggestions.index(p)
        # a rejected mention takes the gold relations on it along (in the same undo step): a relation
        # must not point at a span that is not a mention
        dropped = relations_on(p.spans[0], self._annotations) if p.kind == "entity" and command is RejectPrediction \
            else []
        if not self._perform_with(command(self.model, p.id), dropped, f"{command.verb} {p.label}"):
            return False
        # the view re-read the sentence on the model's annotationsChanged
        if self.suggestions:  # the next one is selected, so that Space / Delete can go on at once
            self.select_suggestion(self.suggestions[min(index, len(self.suggestions) - 1)].id)
        also = (f" and removed the {', '.join(a.type_name for a in dropped)} relation{'s' if len(dropped) > 1 else ''}"
                " on it") if dropped else ""
        self.show_message("ok", f"{done} {p.label!r}{also} (Ctrl+Z undoes)."
                          + (f" {len(self.suggestions)} left: Space / Delete decide on the selected one."
                             if self.suggestions else " No suggestions left in this sentence."))
        return True

    def _perform_with(self, command: Any, relations: list[AnnotationRecord], text: str) -> bool:
        """``command``, and when ``relations`` are given their deletion with it, as one undo step."""
        if not relations:
            return perform(self.model, command)
        stack = self.model.undo_stack
        stack.beginMacro(text)
        ok = perform(self.model, command)
        if ok:
            for a in relations:
                perform(self.model, DeleteAnnotation(self.model, a.id))
        stack.endMacro()
        if not ok:  # the refused decision's empty step: off the stack, leaving no Redo that does nothing
            stack.command(stack.index() - 1).setObsolete(True)
            stack.undo()
        return ok

    def accept_selected(self) -> bool:
        return self._decide_selected(AcceptPrediction, "Accepted")

    def reject_selected(self) -> bool:
        return self._decide_selected(RejectPrediction, "Rejected")

    def accept_and_next(self) -> int:
        """Make this sentence's suggestions gold (one undo step; the mentions first, then the relations
        between them, which open once their mentions are gold), then go to the next sentence (the next most
        useful one when the user came by that queue); returns how many were accepted. Only unlabelled spans
        are suggested, so no gold label is overwritten. A suggestion the store refuses (a relation whose
        declared argument types do not fit) keeps the sentence open: it is selected and the reason shown."""
        if self.sentence_id is None:
            return 0
        sid = self.sentence_id
        accepted, refusals = self._accept_all()
        if self.suggestions:
            left = len(self.suggestions)
            self.select_suggestion(self.suggestions[0].id)
            why = f" ({refusals[-1]})" if refusals else ""
            self.show_message("error", f"Accepted {accepted}; {left} suggestion{'s' if left != 1 else ''} could not "
                              f"be accepted{why}. Decide on {'them' if left != 1 else 'it'} (Delete rejects) before "
                              "going on: the sentence stays here.")
            return accepted
        done = f"Accepted {accepted} suggestion(s) in sentence {sid}" if accepted else f"Sentence {sid} kept as it is"
        if self.in_queue:
            nxt = self.next_most_useful()
            if nxt is not None:
                self.show_message("ok", f"{done}; next most useful sentence ({self.queue.progress()}).")
            return accepted
        row = self.list.currentIndex().row()
        last = row + 1 >= self.list_model.rowCount()
        self.step(1)
        self.show_message("ok", done + (": that was the last sentence of the list." if last else "; next sentence."))
        return accepted

    def _accept_all(self) -> tuple[int, list[str]]:
        """Accept the open suggestions round by round (a round's mentions open the relations on them)."""
        if not self.suggestions:
            return 0, []
        stack = self.model.undo_stack
        stack.beginMacro(f"Accept the suggestions in sentence {self.sentence_id}")
        tried: set[int] = set()
        accepted, refusals = 0, []
        while todo := [p for p in self.suggestions if p.id not in tried]:
            for p in todo:
                tried.add(p.id)
                refusal = attempt(self.model, AcceptPrediction(self.model, p.id))
                accepted += refusal is None
                refusals += [refusal] if refusal is not None else []
            self._show_sentence()
        stack.endMacro()
        if not accepted:  # an empty step: off the stack, leaving no Redo that does nothing
            stack.command(stack.index() - 1).setObsolete(True)
            stack.undo()
        return accepted, refusals

    def next_most_useful(self) -> int | None:
        """Go to the unreviewed sentence the model is least sure about (the one shown, when the queue led
        there, counts as reviewed)."""
        if not self.queue.has_run():
            self.show_message("info", self.queue.progress())
            return None
        if self.in_queue and self.sentence_id is not None:
            self.queue.passed(self.sentence_id)
        sid = self.queue.next_after(self.sentence_id)
        self._show_queue_progress()
        if sid is None:
            self.in_queue = False
            self.show_message("ok", f"Every sentence of the queue is reviewed ({self.queue.progress()}). "
                              "Train, then predict again for a new queue.")
            return None
        self.select_sentence(sid)
        self.in_queue = True  # after select_sentence: moving there is not leaving the queue
        self.editor.setFocus()
        if self.suggestions:
            self.cycle_suggestion(1)
        self.show_message("info", f"Next most useful sentence ({self.queue.progress()}). " + KEYS_HELP + ".")
        return sid

    def _show_queue_progress(self) -> None:
        """The queue's counter, when the view is shown (ordering a new run's predictions waits till then)."""
        if not self.isVisible():
            return
        self.queue_label.setText(self.queue.progress() if self.queue.has_run() else "No prediction run yet")
        self.queue_label.setToolTip(self.queue.progress())

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._show_queue_progress()
