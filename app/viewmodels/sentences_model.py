"""The sentence list: ids from the store's filtered query, texts fetched page by page as rows are shown
(a project may hold tens of thousands of sentences), plus the prediction-confidence filter, which the
app computes from the latest prediction run."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from app.viewmodels.project_model import ProjectModel

PAGE = 200
_dots: dict[str, QIcon] = {}

NO_PARENT = QModelIndex()  # the default parent of a flat model's rows


def _dot(colour: str) -> QIcon:
    """A small round marker: green when the sentence has gold annotations, grey when not."""
    if colour not in _dots:
        pm = QPixmap(10, 10)
        pm.fill(QColor(0, 0, 0, 0))
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(QColor(colour))
        p.setPen(QColor(colour))
        p.drawEllipse(1, 1, 8, 8)
        p.end()
        _dots[colour] = QIcon(pm)
    return _dots[colour]
SentenceIdRole = Qt.ItemDataRole.UserRole + 1

CONFIDENCE_FILTERS = [
    ("any", "Any confidence"),
    ("low", "Low confidence (< 50%)"),
    ("medium", "Medium (50–80%)"),
    ("high", "High (≥ 80%)"),
    ("disagree", "Prediction ≠ gold"),
    ("none", "Not predicted"),
]


@dataclass(frozen=True)
class SentenceFilter:
    text: str = ""
    type_id: int | None = None
    status: str | None = None  # the store's statuses: annotated, unannotated, predicted, rejected
    confidence: str = "any"


class PredictionSummary:
    """Per sentence: the lowest prediction score and whether any prediction disagrees with the gold type,
    over the newest finished prediction run."""

    def __init__(self, model: ProjectModel) -> None:
        self.run_id: int | None = None
        self.min_score: dict[int, float] = {}
        self.disagree: set[int] = set()
        run = model.latest_prediction_run()
        if run is None:
            return
        self.run_id = run.id
        preds = model.predictions_for_run(run.id)
        for p in preds:
            self.min_score[p.sentence_id] = min(p.score, self.min_score.get(p.sentence_id, 1.0))
        gold = model.annotations_for(sorted(self.min_score))
        for p in preds:
            for a in gold.get(p.sentence_id, ()):
                if a.status == "gold" and a.kind == p.kind and a.spans == p.spans and a.type_name != p.label:
                    self.disagree.add(p.sentence_id)

    def keep(self, sentence_id: int, confidence: str) -> bool:
        if confidence == "any":
            return True
        score = self.min_score.get(sentence_id)
        if confidence == "none":
            return score is None
        if score is None:
            return False
        if confidence == "low":
            return score < 0.5
        if confidence == "medium":
            return 0.5 <= score < 0.8
        if confidence == "high":
            return score >= 0.8
        if confidence == "disagree":
            return sentence_id in self.disagree
        return True


class SentenceListModel(QAbstractListModel):
    def __init__(self, model: ProjectModel) -> None:
        super().__init__()
        self.model = model
        self.filter = SentenceFilter()
        self._ids: list[int] = []
        self._texts: dict[int, str] = {}
        self._annotated: dict[int, int] = {}  # sentence id -> number of live annotations (for the page)
        self._summary: PredictionSummary | None = None
        model.predictionsChanged.connect(self._drop_summary)
        model.sentencesChanged.connect(self.reload)
        model.annotationsChanged.connect(self._annotations_changed)
        self.reload()

    def _drop_summary(self) -> None:
        self._summary = None
        if self.filter.confidence != "any":
            self.reload()

    def summary(self) -> PredictionSummary:
        if self._summary is None:
            self._summary = PredictionSummary(self.model)
        return self._summary

    def set_filter(self, f: SentenceFilter) -> None:
        if f != self.filter:
            self.filter = f
            self.reload()

    def reload(self) -> None:
        f = self.filter
        ids = self.model.sentence_ids(f.text or None, type_id=f.type_id, status=f.status)
        if f.confidence != "any":
            summary = self.summary()
            ids = [i for i in ids if summary.keep(i, f.confidence)]
        self.beginResetModel()
        self._ids = ids
        self._texts.clear()
        self._annotated.clear()
        self.endResetModel()

    def _annotations_changed(self, sentence_id: int) -> None:
        if sentence_id < 0:
            self.reload()
            return
        self._annotated.pop(sentence_id, None)
        row = self.row_of(sentence_id)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def ids(self) -> list[int]:
        return list(self._ids)

    def row_of(self, sentence_id: int) -> int:
        try:
            return self._ids.index(sentence_id)
        except ValueError:
            return -1

    def sentence_id(self, row: int) -> int:
        return self._ids[row]

    def _fetch(self, row: int) -> None:
        lo = (row // PAGE) * PAGE
        page = self._ids[lo : lo + PAGE]
        records = self.model.sentences(page)
        for sid, rec in records.items():
            self._texts[sid] = rec.text
        counts = self.model.annotations_for(page)
        for sid in page:
            self._annotated[sid] = sum(1 for a in counts.get(sid, ()) if a.status == "gold")

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = NO_PARENT) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        sid = self._ids[index.row()]
        if role == SentenceIdRole:
            return sid
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.DecorationRole):
            if sid not in self._texts:
                self._fetch(index.row())
            elif sid not in self._annotated:  # one sentence's labels changed: count its own, not its page's
                anns = self.model.annotations(sid)
                self._annotated[sid] = sum(1 for a in anns if a.status == "gold")
            if role == Qt.ItemDataRole.DecorationRole:
                return _dot("#2a9d6f" if self._annotated.get(sid) else "#c7ced9")
            text = self._texts.get(sid, "")
            if role == Qt.ItemDataRole.ToolTipRole:
                n = self._annotated.get(sid, 0)
                return f"Sentence {sid}: {n} gold annotation(s)"
            return text
        return None
