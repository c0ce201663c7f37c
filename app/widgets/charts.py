"""Small plots drawn with QPainter (QtCharts is not part of PySide6-Essentials): a line chart for curves,
a heat map for the accuracy matrix and horizontal bars for scores. They hold only what they draw."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

PALETTE = ["#2f6fdf", "#e0793a", "#2a9d6f", "#b5488f", "#7a6bd1", "#c9a227", "#3aa0c9", "#d64545"]


def _text_color(widget: QWidget) -> QColor:
    return widget.palette().windowText().color()


class _Chart(QWidget):
    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.empty_text = "No data yet"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(220, 150)

    def sizeHint(self) -> QSize:
        return QSize(420, 260)

    def _begin(self) -> tuple[QPainter, QRectF]:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        rect = QRectF(self.rect()).adjusted(8, 6, -8, -6)
        if self.title:
            f = QFont(self.font())
            f.setBold(True)
            p.setFont(f)
            p.setPen(_text_color(self))
            p.drawText(rect, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft, self.title)
            p.setFont(self.font())
            rect.adjust(0, p.fontMetrics().height() + 6, 0, 0)
        return p, rect

    def _empty(self, p: QPainter, rect: QRectF) -> None:
        p.setPen(QColor("#888888"))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.empty_text)
        p.end()


class LineChart(_Chart):
    """Series of (x, y) points. ``y_range`` fixed (e.g. 0..100 for accuracy) or None to fit the data."""

    def __init__(self, title: str = "", y_label: str = "", y_range: tuple[float, float] | None = None,
                 x_label: str = "", integer_x: bool = False, x_range: tuple[float, float] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.y_label, self.x_label = y_label, x_label
        self.y_range = y_range
        self.x_range = x_range
        self.integer_x = integer_x
        self._series: list[tuple[str, list[tuple[float, float]], str]] = []
        self.dashed: set[str] = set()  # names of series drawn dashed (so a line under another still shows)

    def set_series(self, series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
                   dashed: Sequence[str] = ()) -> None:
        """Later series are drawn over earlier ones."""
        self._series = [(name, list(points), PALETTE[i % len(PALETTE)]) for i, (name, points) in enumerate(series)]
        self.dashed = set(dashed)
        self.update()

    def series(self) -> list[tuple[str, list[tuple[float, float]]]]:
        return [(n, pts) for n, pts, _ in self._series]

    def paintEvent(self, _event) -> None:  # noqa: N802
        p, rect = self._begin()
        points = [pt for _, pts, _ in self._series for pt in pts]
        if not points:
            self._empty(p, rect)
            return
        fm = p.fontMetrics()
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        x0, x1 = self.x_range if self.x_range else (min(xs), max(xs))
        if x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        if self.y_range:
            y0, y1 = self.y_range
        else:
            y0, y1 = min(ys), max(ys)
            pad = (y1 - y0) * 0.1 or abs(y1) * 0.1 or 1.0
            y0, y1 = y0 - pad, y1 + pad
        legend_h = fm.height() + 4 if len(self._series) > 1 or self._series[0][0] else 0
        left = fm.horizontalAdvance("00000") + 6
        plot = rect.adjusted(left, 4, -6, -(fm.height() + 6 + legend_h))
        grid = QPen(QColor(128, 128, 128, 60))
        text = _text_color(self)
        for i in range(5):  # y grid and labels
            v = y0 + (y1 - y0) * i / 4
            y = plot.bottom() - plot.height() * i / 4
            p.setPen(grid)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(text)
            p.drawText(QRectF(rect.left(), y - fm.height() / 2, left - 4, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _fmt(v))
        ticks = _x_ticks(x0, x1, self.integer_x)
        for v in ticks:
            x = plot.left() + plot.width() * (v - x0) / (x1 - x0)
            p.setPen(text)
            label = _fmt(v)
            w = fm.horizontalAdvance(label)
            p.drawText(QPointF(x - w / 2, plot.bottom() + fm.ascent() + 3), label)

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + plot.width() * (x - x0) / (x1 - x0),
                           plot.bottom() - plot.height() * (min(max(y, y0), y1) - y0) / (y1 - y0))

        for _name, pts, color in self._series:
            if not pts:
                continue
            pen = QPen(QColor(color), 2)
            if _name in self.dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
                pen.setWidth(3)
            p.setPen(pen)
            path = QPainterPath(to_px(*pts[0]))
            for pt in pts[1:]:
                path.lineTo(to_px(*pt))
            p.drawPath(path)
            if len(pts) <= 40:
                p.setBrush(QColor(color))
                for pt in pts:
                    p.drawEllipse(to_px(*pt), 3, 3)
                p.setBrush(Qt.BrushStyle.NoBrush)
        if legend_h:
            x = plot.left()
            y = rect.bottom() - fm.descent()
            for name, _pts, color in self._series:
                p.fillRect(QRectF(x, y - fm.ascent() + 2, 12, fm.ascent() - 4), QColor(color))
                p.setPen(text)
                p.drawText(QPointF(x + 16, y), name)
                x += 16 + fm.horizontalAdvance(name) + 14
        if self.x_label:
            p.setPen(QColor("#888888"))
            w = fm.horizontalAdvance(self.x_label)
            p.drawText(QPointF(plot.right() - w, rect.bottom() - fm.descent()), self.x_label)
        p.end()


class HeatMap(_Chart):
    """A lower-triangular accuracy matrix: row = after step i, column = on task j, values in %."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self._rows: list[list[float | None]] = []
        self.row_label = "after step"
        self.col_label = "task"

    def set_matrix(self, rows: Sequence[Sequence[float | None]]) -> None:
        self._rows = [list(r) for r in rows]
        self.update()

    def matrix(self) -> list[list[float | None]]:
        return self._rows

    def paintEvent(self, _event) -> None:  # noqa: N802
        p, rect = self._begin()
        n_rows = len(self._rows)
        n_cols = max((len(r) for r in self._rows), default=0)
        if not n_rows or not n_cols:
            self._empty(p, rect)
            return
        fm = p.fontMetrics()
        left = fm.horizontalAdvance("step 00") + 8
        top = fm.height() + 4
        cell = min((rect.width() - left) / n_cols, (rect.height() - top) / n_rows)
        text = _text_color(self)
        for j in range(n_cols):
            p.setPen(text)
            p.drawText(QRectF(rect.left() + left + j * cell, rect.top(), cell, top),
                       Qt.AlignmentFlag.AlignCenter, f"T{j + 1}")
        for i, row in enumerate(self._rows):
            y = rect.top() + top + i * cell
            p.setPen(text)
            p.drawText(QRectF(rect.left(), y, left - 6, cell),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"step {i + 1}")
            for j in range(n_cols):
                v = row[j] if j < len(row) else None
                r = QRectF(rect.left() + left + j * cell, y, cell - 2, cell - 2)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    p.fillRect(r, QColor(128, 128, 128, 30))
                    continue
                p.fillRect(r, _heat(v))
                p.setPen(QColor("#000000") if v > 45 else QColor("#ffffff"))
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, f"{v:.0f}")
        p.end()


class BarChart(_Chart):
    """Horizontal bars (label, value in 0..1), an optional highlighted set of labels (e.g. active experts)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self._bars: list[tuple[str, float, str | None]] = []
        self._highlight: set[str] = set()
        self.setMinimumSize(200, 90)

    def set_bars(self, bars: Sequence[tuple[str, float]], highlight: set[str] | None = None,
                 colors: dict[str, str] | None = None) -> None:
        colors = colors or {}
        self._bars = [(label, float(v), colors.get(label)) for label, v in bars]
        self._highlight = set(highlight or ())
        self.update()

    def bars(self) -> list[tuple[str, float]]:
        return [(label, v) for label, v, _ in self._bars]

    def sizeHint(self) -> QSize:
        return QSize(320, 40 + 24 * max(1, len(self._bars)))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p, rect = self._begin()
        if not self._bars:
            self._empty(p, rect)
            return
        fm = p.fontMetrics()
        bold_font = QFont(self.font())
        bold_font.setBold(True)
        bold_fm = QFontMetrics(bold_font)
        label_w = min(max(bold_fm.horizontalAdvance(b[0]) for b in self._bars) + 10, rect.width() * 0.5)
        value_w = fm.horizontalAdvance("100.0%") + 6
        row_h = min(26.0, rect.height() / len(self._bars))
        text = _text_color(self)
        for i, (label, v, color) in enumerate(self._bars):
            y = rect.top() + i * row_h
            bold = label in self._highlight
            f = QFont(self.font())
            f.setBold(bold)
            p.setFont(f)
            p.setPen(text)
            elided = (bold_fm if bold else fm).elidedText(label, Qt.TextElideMode.ElideRight, int(label_w - 10))
            p.drawText(QRectF(rect.left(), y, label_w - 6, row_h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, elided)
            track = QRectF(rect.left() + label_w, y + row_h * 0.2, rect.width() - label_w - value_w, row_h * 0.6)
            p.fillRect(track, QColor(128, 128, 128, 40))
            fill = QRectF(track.left(), track.top(), track.width() * min(max(v, 0.0), 1.0), track.height())
            base = QColor(color) if color else QColor(PALETTE[0])
            if self._highlight and not bold:
                base.setAlpha(110)
            p.fillRect(fill, base)
            p.drawText(QRectF(track.right() + 4, y, value_w, row_h),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{100 * v:.1f}%")
        p.end()


def _heat(v: float) -> QColor:
    """0 % → dark red, 50 % → amber, 100 % → green."""
    t = min(max(v / 100.0, 0.0), 1.0)
    if t < 0.5:
        a, b, u = QColor("#7a1f1f"), QColor("#e0a43a"), t / 0.5
    else:
        a, b, u = QColor("#e0a43a"), QColor("#2a9d6f"), (t - 0.5) / 0.5
    return QColor(int(a.red() + (b.red() - a.red()) * u), int(a.green() + (b.green() - a.green()) * u),
                  int(a.blue() + (b.blue() - a.blue()) * u))


def _fmt(v: float) -> str:
    if abs(v) >= 100 or float(v).is_integer():
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _x_ticks(x0: float, x1: float, integer: bool) -> list[float]:
    span = x1 - x0
    if integer:
        lo, hi = math.ceil(x0), math.floor(x1)
        step = max(1, math.ceil((hi - lo + 1) / 8))
        return [float(v) for v in range(lo, hi + 1, step)]
    return [x0 + span * i / 5 for i in range(6)]
