"""The desk's Drift page: each reader's CUSUM chart over their signed cases with its limits, the
re-read and calibration series summarised, and the open drift alerts with an Acknowledge button.

Each refresh runs ``drift.check`` (coordinator), which is when new alerts are raised (audited:
scorer.services.drift); the tab title counts the open alerts and the status bar says when one
is new, so an alert reaches the coordinator while reading goes on. Nothing on the page names a
patient, visit, date or image: the charts are indexed by the reader's signed-case count.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from scorer.core.printable import printable
from scorer.gui.login import _message
from scorer.gui.tasks import KeptTasks

CHART_HEIGHT = 150
ALERT_COLUMNS = ("Alert", "Reader", "Direction", "At case", "CUSUM", "Limit", "State", "Note")


class CusumChartView(QWidget):
    """One reader's two-sided CUSUM over their cases: the upper sum above the axis, the lower
    below it, the limit ±h as dashed lines and the signals as red dots."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(CHART_HEIGHT)
        self.upper_sums: list[float] = []
        self.lower_sums: list[float] = []
        self.signals: list[int] = []
        self.h = 1.0
        self.title = ""

    def set_chart(self, reader: dict[str, Any], h: float) -> None:
        self.upper_sums = [v or 0.0 for v in reader["upper"]]
        self.lower_sums = [v or 0.0 for v in reader["lower"]]
        self.signals = [s["case"] for s in reader["signals"]]
        self.h = h
        self.title = f"{reader['reader']}: {reader['status']}"
        self.setToolTip(self.title)
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(40, 18, -10, -8)
        painter.drawText(QRectF(4, 0, self.width() - 8, 16), printable(self.title))
        top = max([self.h * 1.2, *self.upper_sums, *self.lower_sums])
        n = max(len(self.upper_sums), 2)

        def at(i: int, v: float) -> QPointF:
            x = area.left() + area.width() * i / (n - 1)
            return QPointF(x, area.center().y() - v / top * area.height() / 2)

        painter.setPen(QPen(QColor("#888888"), 1))
        painter.drawLine(at(0, 0.0), at(n - 1, 0.0))
        painter.drawText(at(n - 1, 0.0) + QPointF(-60, 14), f"case {len(self.upper_sums)}")
        painter.setPen(QPen(QColor("#c0392b"), 1, Qt.PenStyle.DashLine))
        for limit in (self.h, -self.h):
            painter.drawLine(at(0, limit), at(n - 1, limit))
            painter.drawText(at(0, limit) + QPointF(-38, 4), f"{limit:+g}")
        for values, sign, colour in (
            (self.upper_sums, 1.0, "#1f77b4"),
            (self.lower_sums, -1.0, "#2ca02c"),
        ):
            painter.setPen(QPen(QColor(colour), 2))
            for i in range(1, len(values)):
                painter.drawLine(at(i - 1, sign * values[i - 1]), at(i, sign * values[i]))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#c0392b"))
        for case in self.signals:
            i = case - 1
            v = max(self.upper_sums[i], self.lower_sums[i]) if i < len(self.upper_sums) else self.h
            painter.drawEllipse(at(i, v if self.upper_sums[i] >= self.lower_sums[i] else -v), 4, 4)
        painter.end()


def _summary(reader: dict[str, Any]) -> str:
    """One line: the reader's reads and cases, mean difference, re-read and calibration."""

    def last(series: list[float | None]) -> str:
        return "–" if not series or series[-1] is None else f"{series[-1]:+.2f}"

    reread = reader["reread_mean_abs"]
    return (
        f"{reader['reader']}: {reader['reads']} reads in {reader['cases']} cases; mean "
        f"difference from the others {last(reader['mean'])}; re-reads: "
        f"{len(reader['reread_abs'])}, mean |difference| "
        f"{'–' if not reread or reread[-1] is None else f'{reread[-1]:.2f}'}; calibration: "
        f"{len(reader['calibration'])}, mean difference from the reference "
        f"{last(reader['calibration_mean'])}"
    )


class DriftPage(QWidget):
    """The desk's Drift page (see the module docstring)."""

    def __init__(self, desk: Any) -> None:
        super().__init__(desk)
        self.setObjectName("driftPage")
        self.desk = desk
        self.tasks = KeptTasks()
        self.loading = False
        self.loaded_at: float | None = None
        self.report: dict[str, Any] | None = None
        self.known_alerts: set[int] | None = None
        self.status = QLabel("", self)
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        self.design = QLabel("", self)
        self.design.setWordWrap(True)
        self.charts_box = QWidget(self)
        self.charts = QVBoxLayout(self.charts_box)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.charts_box)
        self.alerts = QTableWidget(self)
        self.alerts.setObjectName("driftAlertsTable")
        self.alerts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.alerts.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.alerts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.alerts.verticalHeader().hide()
        self.note = QLineEdit(self)
        self.note.setObjectName("driftNote")
        self.note.setPlaceholderText("What was done (required to acknowledge)")
        self.acknowledge_button = QPushButton("Acknowledge", self)
        self.acknowledge_button.setObjectName("acknowledge")
        self.acknowledge_button.clicked.connect(self.acknowledge)
        refresh = QPushButton("Refresh", self)
        refresh.setObjectName("refresh")
        refresh.clicked.connect(self.refresh)
        ack_row = QHBoxLayout()
        ack_row.addWidget(self.note, 1)
        ack_row.addWidget(self.acknowledge_button)
        layout = QVBoxLayout(self)
        layout.addWidget(refresh)
        layout.addWidget(self.design)
        layout.addWidget(scroll, 3)
        layout.addWidget(QLabel("Drift alerts", self))
        layout.addWidget(self.alerts, 1)
        layout.addLayout(ack_row)
        layout.addWidget(self.status)

    def refresh(self) -> None:
        if self.loading:
            return
        self.loading = True
        ws, session, trial = self.desk.ws, self.desk.session, self.desk.trial
        self.tasks.run(
            lambda: ws.drift.check(session, trial).to_dict(),
            done=self._loaded,
            failed=self._failed,
        )

    def _gone(self) -> bool:
        return bool(self.desk.closed) or not isValid(self) or not isValid(self.status)

    def _failed(self, exc: BaseException) -> None:
        self.loading = False
        if self._gone():
            return
        self.status.setText(f"Could not load: {_message(exc)}")
        self.desk.report_failure(exc)

    def _loaded(self, report: dict[str, Any]) -> None:
        self.loading = False
        if self._gone():
            return
        self.loaded_at = time.monotonic()
        self.report = report
        self._show(report)
        self.desk.pageLoaded.emit(self.objectName())

    def open_alerts(self) -> list[dict[str, Any]]:
        return [a for a in (self.report or {}).get("alerts", []) if not a["acknowledged_at"]]

    def _show(self, report: dict[str, Any]) -> None:
        sigma = "–" if report["sigma"] is None else f"{report['sigma']:g}"
        self.design.setText(
            f"CUSUM over each reader's signed cases (mean difference from the other readers), "
            f"k = {report['k']:g}, limit ±{report['h']:g} SDs of a case mean; read error SD "
            f"{sigma} from {report['sigma_source']}; within-case correlation "
            f"{report['rho']:g} from {report['rho_source']}."
        )
        while self.charts.count():
            item = self.charts.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for reader in report["readers"]:
            chart = CusumChartView(self.charts_box)
            chart.setObjectName(f"driftChart:{reader['reader']}")
            chart.set_chart(reader, report["h"])
            self.charts.addWidget(chart)
            self.charts.addWidget(QLabel(printable(_summary(reader)), self.charts_box))
        self._fill_alerts(report["alerts"])
        opened = self.open_alerts()
        self.desk.set_badge(self, len(opened))
        ids = {a["alert"] for a in opened}
        new = ids - (self.known_alerts or set()) if self.known_alerts is not None else ids
        self.known_alerts = ids
        if new:
            self.desk.statusBar().showMessage(
                f"Reader drift: {len(new)} new alert(s); see the Drift page", 30_000
            )
        self.status.setText(
            f"{len(opened)} open drift alert(s). Updated {time.strftime('%H:%M:%S')}."
        )

    def _fill_alerts(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts.clear()
        self.alerts.setColumnCount(len(ALERT_COLUMNS))
        self.alerts.setHorizontalHeaderLabels(list(ALERT_COLUMNS))
        self.alerts.setRowCount(len(alerts))
        for r, a in enumerate(alerts):
            state = f"acknowledged by {a['acknowledged_by']}" if a["acknowledged_at"] else "OPEN"
            row = (
                a["alert"], a["reader"], a["direction"], a["case"],
                f"{a['statistic']:g}", f"{a['limit']:g}", state, a["note"],
            )  # fmt: skip
            for c, value in enumerate(row):
                item = QTableWidgetItem(printable(value))
                item.setData(Qt.ItemDataRole.UserRole, a["alert"])
                self.alerts.setItem(r, c, item)
        self.alerts.resizeColumnsToContents()

    def acknowledge(self) -> None:
        rows = self.alerts.selectionModel().selectedRows() if self.alerts.selectionModel() else []
        if not rows:
            self.status.setText("Select an alert first.")
            return
        item = self.alerts.item(rows[0].row(), 0)
        alert = int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else 0
        note = self.note.text()
        ws, session, trial = self.desk.ws, self.desk.session, self.desk.trial

        def done(_result: Any) -> None:
            if self._gone():
                return
            self.note.clear()
            self.status.setText(f"Alert {alert} acknowledged.")
            self.refresh()

        self.tasks.run(
            lambda: ws.drift.acknowledge(session, trial, alert, note),
            done=done,
            failed=self._failed_action,
        )

    def _failed_action(self, exc: BaseException) -> None:
        if self._gone():
            return
        self.status.setText(_message(exc))
        self.desk.report_failure(exc)
