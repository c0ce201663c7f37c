"""The sentence editor: shows one sentence with its entity mentions tinted in their type's colour and lets
the user select text with the mouse or Shift+arrows. Relations are drawn as labelled arcs from the head
to the tail, above the text (as Prodigy's rel.manual, INCEpTION and Label Studio do); the lines are
spaced to leave room for them. It knows nothing of the store: the annotate view tells it what to draw
and listens to its signals (a shortcut key, Delete, a click on a mention)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import QTextEdit, QWidget


@dataclass(frozen=True)
class Mark:
    """Something to draw over the text: an entity mention, or a relation's head / tail end."""

    start: int
    end: int
    colour: str
    label: str = ""
    key: object = None  # what the view uses to find the annotation again (e.g. its id)
    suggested: bool = False  # a model's prediction, not a gold label yet: drawn dotted, barely tinted
    rejected: bool = False  # a prediction the user rejected: struck through, grey


@dataclass(frozen=True)
class Arc:
    """A relation to draw: an arrow from the head mention to the tail mention, with its type's name."""

    head: tuple[int, int]
    tail: tuple[int, int]
    colour: str
    label: str
    key: object = None
    suggested: bool = False  # a model's prediction: drawn dashed


@dataclass(frozen=True)
class ArcGeometry:
    """Where an arc is drawn (viewport coordinates): from the head's top to the tail's top, through
    ``apex`` (where its label sits)."""

    arc: Arc
    start: QPointF
    end: QPointF
    apex: QPointF


LINE_HEIGHT_PERCENT = 210  # room above each line of text for the arcs and their labels

NAVIGATION_KEYS = {
    Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End,
    Qt.Key.Key_PageUp, Qt.Key.Key_PageDown,
}


class AnnotationEditor(QTextEdit):  # not QPlainTextEdit: its layout ignores line spacing
    shortcutPressed = Signal(str)  # a printable key without Ctrl/Alt (a type shortcut, H, T, ...)
    deletePressed = Signal()
    escapePressed = Signal()
    markClicked = Signal(object)  # the key of the mark under a click, or None
    acceptPressed = Signal()  # Enter: accept what is suggested and go on
    cyclePressed = Signal(int)  # Tab (+1) / Shift+Tab (-1): select the next / previous suggestion
    spacePressed = Signal()  # Space: accept the selected suggestion
    undoRequested = Signal()  # Ctrl+Z / Ctrl+Shift+Z reaching the editor (when no window shortcut took them)
    redoRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("annotationEditor")
        self.setReadOnly(True)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.setAcceptRichText(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumHeight(90)
        self._marks: list[Mark] = []
        self._pending: dict[str, Mark] = {}  # "head" / "tail" chosen for a relation not yet typed
        self._focus_key: object = None
        self._relation: tuple[Mark, Mark] | None = None  # a relation's head and tail to show
        self._arcs: list[Arc] = []

    # --- content -------------------------------------------------------------------------------
    def set_sentence(self, text: str) -> None:
        self.setPlainText(text)
        self._space_lines()
        self._marks, self._pending, self._focus_key, self._relation, self._arcs = [], {}, None, None, []
        self._redraw()

    def _space_lines(self) -> None:
        c = QTextCursor(self.document())
        c.select(QTextCursor.SelectionType.Document)
        fmt = QTextBlockFormat()
        fmt.setLineHeight(LINE_HEIGHT_PERCENT, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
        c.mergeBlockFormat(fmt)
        c.clearSelection()
        # Qt adds a proportional line's extra height below it: that is the room over the next line; the
        # first line gets the same room from the document's top margin.
        frame = self.document().rootFrame()
        ff = frame.frameFormat()
        ff.setTopMargin(int(self.fontMetrics().height() * (LINE_HEIGHT_PERCENT - 100) / 100) + 4)
        frame.setFrameFormat(ff)

    def set_arcs(self, arcs: list[Arc]) -> None:
        self._arcs = list(arcs)
        self.viewport().update()

    def arcs(self) -> list[Arc]:
        return list(self._arcs)

    def arc_geometry(self) -> list[ArcGeometry]:
        """The arcs as drawn now. Each rises above its line; arcs over the same line are stacked a little
        apart (longer ones higher) so that their labels do not sit on one another."""
        n = len(self.toPlainText())
        out = []
        ordered = sorted((a for a in self._arcs if 0 <= a.head[0] < a.head[1] <= n and 0 <= a.tail[0] < a.tail[1] <= n),
                         key=lambda a: abs(self._centre(a.tail).x() - self._centre(a.head).x()))
        line = self.fontMetrics().height()
        for level, arc in enumerate(ordered):
            start, end = self._top_centre(arc.head), self._top_centre(arc.tail)
            rise = line * (0.55 + 0.25 * (level % 3))
            apex = QPointF((start.x() + end.x()) / 2, min(start.y(), end.y()) - rise)
            out.append(ArcGeometry(arc, start, end, apex))
        return out

    def _centre(self, span: tuple[int, int]) -> QPointF:
        a, b = self.position_rect(span[0]), self.position_rect(span[1])
        return QPointF((a.left() + b.left()) / 2, a.top())

    def _top_centre(self, span: tuple[int, int]) -> QPointF:
        """Just above the middle of a mention (of its first line, when it wraps)."""
        a, b = self.position_rect(span[0]), self.position_rect(span[1])
        text_top = a.bottom() - self.fontMetrics().height()
        x = (a.left() + b.left()) / 2 if abs(a.top() - b.top()) < 2 else a.left() + 6
        return QPointF(x, text_top - 1)

    def set_marks(self, marks: list[Mark], focus_key: object = None) -> None:
        self._marks = list(marks)
        self._focus_key = focus_key
        self._redraw()

    def set_pending(self, role: str, mark: Mark | None) -> None:
        if mark is None:
            self._pending.pop(role, None)
        else:
            self._pending[role] = mark
        self._redraw()

    def show_relation(self, head: Mark | None, tail: Mark | None = None) -> None:
        """Outline a relation's head and tail (None clears)."""
        self._relation = (head, tail) if head is not None and tail is not None else None
        self._redraw()

    def pending(self, role: str) -> Mark | None:
        return self._pending.get(role)

    def marks(self) -> list[Mark]:
        return list(self._marks)

    def mark_at(self, position: int) -> Mark | None:
        for m in sorted(self._marks, key=lambda m: (m.rejected, m.suggested)):  # gold, then suggested, then rejected
            if m.start <= position < m.end:
                return m
        return None

    # --- selection -----------------------------------------------------------------------------
    def selected_span(self) -> tuple[int, int] | None:
        """The selection as character offsets, with surrounding whitespace trimmed; None when empty."""
        c = self.textCursor()
        if not c.hasSelection():
            return None
        start, end = c.selectionStart(), c.selectionEnd()
        text = self.toPlainText()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        return (start, end) if end > start else None

    def select_span(self, start: int, end: int) -> None:
        c = self.textCursor()
        c.setPosition(start)
        c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(c)

    def clear_selection(self) -> None:
        c = self.textCursor()
        c.clearSelection()
        self.setTextCursor(c)

    def position_rect(self, position: int):
        """The viewport rectangle of the character boundary at ``position`` (tests drive the mouse with it)."""
        c = QTextCursor(self.document())
        c.setPosition(position)
        return self.cursorRect(c)

    # --- events --------------------------------------------------------------------------------
    def event(self, event) -> bool:  # noqa: D102 - Tab would move the focus before keyPressEvent sees it
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab) \
                and not event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            backwards = event.key() == Qt.Key.Key_Backtab or event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            self.cyclePressed.emit(-1 if backwards else 1)
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        mods = event.modifiers()
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undoRequested.emit()
            return
        if event.matches(QKeySequence.StandardKey.Redo):
            self.redoRequested.emit()
            return
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deletePressed.emit()
            return
        if key == Qt.Key.Key_Escape:
            self.escapePressed.emit()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not mods & Qt.KeyboardModifier.ControlModifier:
            self.acceptPressed.emit()
            return
        if key == Qt.Key.Key_Space and mods == Qt.KeyboardModifier.NoModifier:
            self.spacePressed.emit()
            return
        if key in NAVIGATION_KEYS or mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                             | Qt.KeyboardModifier.MetaModifier):
            super().keyPressEvent(event)  # Shift+arrows select; Ctrl+Z etc. reach the window's actions
            return
        text = event.text()
        if text and text.isprintable() and not text.isspace():
            self.shortcutPressed.emit(text)
            return
        super().keyPressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection():
            pos = self.cursorForPosition(event.position().toPoint()).position()
            mark = self.mark_at(pos)
            self.markClicked.emit(mark.key if mark else None)

    # --- drawing -------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._arcs:
            return
        p = QPainter(self.viewport())
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = self.fontMetrics()
        small = self.font()
        small.setPointSizeF(max(6.0, small.pointSizeF() * 0.8))
        p.setFont(small)
        for g in self.arc_geometry():
            colour = QColor(g.arc.colour)
            focused = g.arc.key is not None and g.arc.key == self._focus_key
            pen = QPen(colour, 2.5 if focused else 1.6)
            if g.arc.suggested:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            path = QPainterPath(g.start)
            path.quadTo(QPointF(g.apex.x(), 2 * g.apex.y() - (g.start.y() + g.end.y()) / 2), g.end)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            self._arrow_head(p, path, colour)
            label = g.arc.label
            w = p.fontMetrics().horizontalAdvance(label) + 8
            box = QRectF(g.apex.x() - w / 2, g.apex.y() - fm.height() / 2, w, p.fontMetrics().height() + 2)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(255, 255, 255, 230))
            p.drawRoundedRect(box, 3, 3)
            p.setPen(colour.darker(130))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
        p.end()

    @staticmethod
    def _arrow_head(p: QPainter, path: QPainterPath, colour: QColor) -> None:
        tip = path.pointAtPercent(1.0)
        before = path.pointAtPercent(0.93)
        dx, dy = tip.x() - before.x(), tip.y() - before.y()
        length = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        ux, uy = dx / length, dy / length
        size = 7.0
        left = QPointF(tip.x() - size * ux + size * 0.5 * uy, tip.y() - size * uy - size * 0.5 * ux)
        right = QPointF(tip.x() - size * ux - size * 0.5 * uy, tip.y() - size * uy + size * 0.5 * ux)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawPolygon(QPolygonF([tip, left, right]))

    def _redraw(self) -> None:
        selections = []
        n = len(self.toPlainText())
        for m in self._marks:
            if not (0 <= m.start < m.end <= n):
                continue
            fmt = QTextCharFormat()
            colour = QColor(m.colour)
            focused = m.key is not None and m.key == self._focus_key
            tint = QColor(colour)
            if m.rejected:
                tint, colour = QColor(150, 150, 150, 40), QColor("#8a8a8a")
                fmt.setFontStrikeOut(True)
                fmt.setForeground(QColor("#6b6b6b"))
            else:
                tint.setAlpha((90 if focused else 25) if m.suggested else (140 if focused else 70))
            fmt.setBackground(tint)
            if focused and m.suggested:
                fmt.setFontWeight(600)
            # a selected suggestion gets a dashed line, the others a dotted one: both differ from gold's
            style = QTextCharFormat.UnderlineStyle
            fmt.setUnderlineStyle((style.DashUnderline if focused else style.DotLine) if m.suggested or m.rejected
                                  else style.SingleUnderline)
            fmt.setUnderlineColor(colour)
            if m.label:
                fmt.setToolTip(m.label)
            selections.append(self._extra(m.start, m.end, fmt))
        if self._relation is not None:
            for m, weight in zip(self._relation, (800, 600), strict=True):
                if 0 <= m.start < m.end <= n:
                    fmt = QTextCharFormat()
                    fmt.setFontWeight(weight)
                    fmt.setBackground(QColor(255, 214, 102, 150))
                    fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DashUnderline)
                    fmt.setUnderlineColor(QColor(m.colour))
                    selections.append(self._extra(m.start, m.end, fmt))
        for role, m in self._pending.items():
            fmt = QTextCharFormat()
            fmt.setFontWeight(700)
            fmt.setForeground(QColor("#b5488f" if role == "head" else "#2a62c6"))
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(QColor("#b5488f" if role == "head" else "#2a62c6"))
            fmt.setProperty(QTextFormat.Property.FullWidthSelection, False)
            if 0 <= m.start < m.end <= n:
                selections.append(self._extra(m.start, m.end, fmt))
        self.setExtraSelections(selections)

    def _extra(self, start: int, end: int, fmt: QTextCharFormat) -> QTextEdit.ExtraSelection:
        sel = QTextEdit.ExtraSelection()
        c = QTextCursor(self.document())
        c.setPosition(start)
        c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        sel.cursor = c
        sel.format = fmt
        return sel
