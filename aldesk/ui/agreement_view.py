"""How far the readers agree: the same report as ``aldesk agreement`` (aldesk.app.review.agreement).

Percent agreement, Fleiss' kappa and Krippendorff's alpha over all readers, Cohen's kappa for every
pair, each reader against the consensus, each with its bootstrap confidence interval and the number
of scans it rests on; and each reader's estimated confusion matrix (Dawid–Skene, or against the
training label while there is too little overlap), drawn with matplotlib in the theme's colours.
The bootstrap runs in a worker with its own Project connection; the window stays responsive.
"""

from __future__ import annotations

import math
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from aldesk.store import Project
from aldesk.ui.messages import ErrorReporter
from aldesk.ui.workers import LatestOnly

DEFAULT_BOOTSTRAP = 1000

# Landis & Koch (1977): the words study reports use for kappa
BANDS = ((0.0, "poor"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"),
         (1.0001, "almost perfect"))
_BAND_TONE = {"poor": "bad", "slight": "bad", "fair": "fair", "moderate": "fair", "substantial": "good",
              "almost perfect": "good"}
_TONES = {"dark": {"bad": "#d77a6a", "fair": "#e0b65c", "good": "#7fc79a"},
          "light": {"bad": "#b5473a", "fair": "#9a6a08", "good": "#2e8b57"}}
BAND_COLOURS = {word: _TONES["dark"][tone] for word, tone in _BAND_TONE.items()}


def band_colour(word: str, theme: str = "dark") -> str | None:
    tone = _BAND_TONE.get(word)
    return _TONES.get(theme, _TONES["dark"])[tone] if tone else None


def agreement_body(project_path: str, n_boot: int):
    """Worker body: the agreement report on the worker's own Project connection."""

    def body(progress, should_stop):
        from aldesk.app.review import agreement

        progress(0, 0, f"bootstrap, {n_boot} resamples")
        with Project.open(project_path) as project:
            return agreement(project, n_boot=n_boot)

    return body


def band(kappa: float | None) -> str:
    """Landis & Koch's word for a kappa ('' when there is none)."""
    if kappa is None or not math.isfinite(kappa):
        return ""
    if kappa < 0:
        return "poor"
    return next(name for upper, name in BANDS[1:] if kappa <= upper)


REFERENCE_NAMES = {"others-dawid-skene": "others (Dawid–Skene)", "others-majority": "others (majority)"}


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def fmt_ci(ci) -> str:
    return "—" if not ci else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.1%}"


class _Table(QTableWidget):
    """A read-only table sized to its rows (no inner scrolling for a handful of rows)."""

    def __init__(self, headers: list[str], parent: QWidget | None = None):
        super().__init__(0, len(headers), parent)
        self.setHorizontalHeaderLabels(headers)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(False)
        self.horizontalHeader().setHighlightSections(False)

    def fill(self, rows: list[list], *, max_rows: int = 12) -> None:
        self.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, cell in enumerate(cells):
                text, colour, tip = (cell + (None, None))[:3] if isinstance(cell, tuple) else (cell, None, None)
                item = QTableWidgetItem(str(text))
                if c > 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if colour:
                    item.setForeground(QBrush(QColor(colour)))
                if tip:
                    item.setToolTip(tip)
                self.setItem(r, c, item)
        h = self.horizontalHeader().height() + sum(self.rowHeight(r) for r in range(min(len(rows), max_rows))) + 4
        self.setFixedHeight(max(h, self.horizontalHeader().height() + 28))

    def texts(self) -> list[list[str]]:
        return [[self.item(r, c).text() if self.item(r, c) else "" for c in range(self.columnCount())]
                for r in range(self.rowCount())]


def _kappa_cell(x: float | None, ci=None, theme: str = "dark") -> tuple:
    word = band(x)
    tip = f"{word} agreement (Landis & Koch)" if word else "not defined on these scans"
    return fmt(x), band_colour(word, theme), tip + (f"; CI {fmt_ci(ci)}" if ci else "")


class AgreementView(QWidget):
    """The agreement report. ``refresh()`` computes it in the background; ``set_report`` shows one.

    Signals: ``computed(report)`` when a report is on screen, ``failed(exc)``.
    """

    computed = Signal(object)
    failed = Signal(object)

    def __init__(self, project_path: str | os.PathLike | None = None, parent: QWidget | None = None, *,
                 theme: str = "dark", errors: ErrorReporter | None = None, n_boot: int = DEFAULT_BOOTSTRAP,
                 auto_refresh: bool = True):
        super().__init__(parent)
        self.setObjectName("DashboardPanel")
        self.project_path = str(project_path) if project_path is not None else None
        self.theme = theme
        self.errors = errors or ErrorReporter(self)
        self.report: dict | None = None
        self.worker = LatestOnly("agreement", self)
        self.worker.finished.connect(self._on_worker_finished)
        self.worker.failed.connect(self._on_worker_failed)
        self._figure = None
        self._canvas = None

        title = QLabel("Agreement between readers")
        title.setObjectName("PanelTitle")
        self.summary = QLabel("")
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        self.boot = QSpinBox()
        self.boot.setRange(0, 20_000)
        self.boot.setSingleStep(500)
        self.boot.setValue(n_boot)
        self.boot.setToolTip("Bootstrap resamples (over scans) for the confidence intervals; 0 = no intervals")
        self.recompute = QPushButton("Recompute")
        self.recompute.clicked.connect(lambda _c=False: self.refresh())
        self.state = QLabel("")
        self.state.setObjectName("Muted")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.state)
        top.addWidget(QLabel("Bootstrap"))
        top.addWidget(self.boot)
        top.addWidget(self.recompute)

        def section(text: str) -> QLabel:
            lab = QLabel(text)
            lab.setObjectName("SectionTitle")
            return lab

        self.overall = _Table(["All readers", "Value", "95% CI", "n scans", "Reading"])
        self.pairs = _Table(["Reader", "Reader", "n shared", "Cohen's κ", "95% CI", "Agreement", "95% CI"])
        self.readers = _Table(["Reader", "Role", "Reads", "Unsure", "n", "κ vs the others", "95% CI",
                               "Agreement", "Est. accuracy", "Reference"])
        self.caveat = QLabel("")
        self.caveat.setObjectName("Muted")
        self.caveat.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(6)
        lv.addWidget(section("Over all readers"))
        lv.addWidget(self.overall)
        lv.addWidget(section("Every pair of readers (scans both read)"))
        lv.addWidget(self.pairs)
        lv.addWidget(section("Each reader against the other readers (never their own read)"))
        lv.addWidget(self.readers)
        lv.addWidget(self.caveat)
        lv.addStretch(1)

        self.plot_holder = QWidget()
        self._plot_layout = QVBoxLayout(self.plot_holder)
        self._plot_layout.setContentsMargins(0, 0, 0, 0)
        self._plot_layout.addWidget(section("Each reader's estimated confusion matrix"))
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.plot_holder)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.splitter, 1)
        if self.project_path is not None and auto_refresh:
            self.refresh()

    # ------------------------------------------------------------------ computing
    def refresh(self) -> int | None:
        """Compute the report in the background (a newer request supersedes a running one)."""
        if self.project_path is None:
            return None
        n = self.boot.value()
        self.state.setText(f"Computing ({n:,} bootstrap resamples)…" if n else "Computing…")
        self.recompute.setEnabled(False)
        return self.worker.request(agreement_body(self.project_path, n))

    def _on_worker_finished(self, report: dict) -> None:
        self.recompute.setEnabled(True)
        self.set_report(report)

    def _on_worker_failed(self, exc: BaseException) -> None:
        self.recompute.setEnabled(True)
        self.state.setText("Not computed")
        self.failed.emit(exc)
        self.errors.report("Cannot compute the agreement", exc)

    def shutdown(self) -> None:
        self.worker.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------ showing
    def set_report(self, report: dict, theme: str | None = None) -> None:
        self.report = report
        if theme:
            self.theme = theme
        c = report.get("consensus", {})
        conf = f"{report.get('confidence', 0.95):.0%}"
        boot = report.get("bootstrap", 0)
        self.summary.setText(
            f"{report['n_items']:,} scans read, {report['n_multi_read']:,} by two or more readers · "
            f"{len(report['raters'])} readers · consensus: {c.get('method', '—')} "
            f"({c.get('n_final', 0):,} training labels, {c.get('n_adjudicated', 0):,} adjudicated) · "
            + (f"{conf} bootstrap intervals over scans ({boot:,} resamples)" if boot else "no intervals (bootstrap 0)"))
        self.state.setText("")
        for table in (self.overall, self.pairs):
            table.setHorizontalHeaderItem(2 if table is self.overall else 4, QTableWidgetItem(f"{conf} CI"))

        n = report.get("n", report["n_multi_read"])
        rows = [["Percent agreement", fmt_pct(report["percent_agreement"]),
                 "—" if not report["percent_agreement_ci"] else
                 f"[{fmt_pct(report['percent_agreement_ci'][0])}, {fmt_pct(report['percent_agreement_ci'][1])}]", n, ""]]
        for key, name in (("fleiss_kappa", "Fleiss' κ"), ("krippendorff_alpha", "Krippendorff's α (nominal)"),
                          ("krippendorff_alpha_ordinal", "Krippendorff's α (ordinal)")):
            if key in report:
                value, colour, tip = _kappa_cell(report[key], report.get(f"{key}_ci"), self.theme)
                rows.append([name, (value, colour, tip), fmt_ci(report.get(f"{key}_ci")), n,
                             (band(report[key]), colour)])
        self.overall.fill(rows)

        pair_rows = []
        for p in report["pairs"]:
            pair_rows.append([p["a"], p["b"], p["n"], _kappa_cell(p["cohen_kappa"], p.get("cohen_kappa_ci"), self.theme),
                              fmt_ci(p.get("cohen_kappa_ci")), fmt_pct(p["percent_agreement"]),
                              "—" if not p.get("percent_agreement_ci") else
                              f"[{fmt_pct(p['percent_agreement_ci'][0])}, {fmt_pct(p['percent_agreement_ci'][1])}]"])
        if not pair_rows:
            pair_rows = [["Only one reader so far", "", "", "", "", "", ""]]
        self.pairs.fill(pair_rows, max_rows=10)

        vs = {v["reader"]: v for v in report.get("vs_consensus", [])}
        reader_rows = []
        for r in report.get("readers", []):
            v = vs.get(r["name"], {})
            reader_rows.append([r["name"], r.get("role", ""), r.get("reads", 0), r.get("unsure", 0), v.get("n", 0),
                                _kappa_cell(v.get("cohen_kappa"), v.get("cohen_kappa_ci"), self.theme),
                                fmt_ci(v.get("cohen_kappa_ci")), fmt_pct(v.get("percent_agreement")),
                                (fmt(r.get("accuracy")), None, r.get("why") or "corrected for the others' own errors"),
                                (REFERENCE_NAMES.get(r.get("confusion_source"), "not estimated"), None, r.get("why"))])
        self.readers.fill(reader_rows, max_rows=10)
        self.caveat.setText(
            "κ colours: red slight/poor, amber fair/moderate, green substantial or better (Landis & Koch). "
            "Each reader is compared with the consensus of the other readers (adjudicated scans: the decision), "
            "never with one that holds their own read; accuracy needs scans that two or more others read "
            "(hover 'not estimated' for why).")
        self._draw()
        self.computed.emit(report)

    def _ensure_canvas(self):
        if self._figure is None:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
            from matplotlib.figure import Figure

            self._figure = Figure(figsize=(5, 5), layout="constrained")
            self._canvas = FigureCanvasQTAgg(self._figure)
            self._canvas.setMinimumSize(320, 260)
            self._plot_layout.addWidget(self._canvas, 1)
        return self._figure

    def _draw(self) -> None:
        import numpy as np

        from aldesk.ui.dashboard import THEME_COLOURS

        report, col = self.report, THEME_COLOURS.get(self.theme, THEME_COLOURS["dark"])
        fig = self._ensure_canvas()
        fig.clear()
        fig.set_facecolor(col["bg"])
        readers = report.get("readers", [])
        classes = report["classes"]
        if not readers:
            ax = fig.add_subplot(111)
            ax.set_axis_off()
            ax.text(0.5, 0.5, "No reads yet", ha="center", va="center", color=col["fg"])
            self._canvas.draw_idle()
            return
        n = len(readers)
        ncols = min(n, 2 if n <= 4 else 3)
        nrows = math.ceil(n / ncols)
        from matplotlib.colors import LinearSegmentedColormap

        dark = self.theme == "dark"  # low glare on the dark theme: from the axes' grey to the muted accent
        cmap = LinearSegmentedColormap.from_list("aldesk", [col["axes"], col["series"][0]]) if dark else "Blues"
        short = [c if len(c) <= 10 else c[:9] + "…" for c in classes]
        for i, r in enumerate(readers):
            ax = fig.add_subplot(nrows, ncols, i + 1)
            m = np.array([[np.nan if v is None else v for v in row] for row in r["confusion"]], dtype=float)
            ax.imshow(np.nan_to_num(m, nan=0.0), cmap=cmap, vmin=0, vmax=1)
            for (a, b), v in np.ndenumerate(m):
                text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
                ax.text(b, a, text, ha="center", va="center", fontsize=9,
                        color=col["fg"] if dark else ("#ffffff" if np.isfinite(v) and v > 0.6 else "#111111"))
            ax.set_title(f"{r['name']}  (acc. {fmt(r.get('accuracy'), 2)})", fontsize=10, color=col["fg"])
            ax.set_xticks(range(len(classes)), short, fontsize=8, color=col["fg"], rotation=30 if len(classes) > 3 else 0)
            ax.set_yticks(range(len(classes)), short, fontsize=8, color=col["fg"])
            ax.set_xlabel("label given", fontsize=8, color=col["fg"])
            if i % ncols == 0:
                ax.set_ylabel("the others' class", fontsize=8, color=col["fg"])
            ax.tick_params(colors=col["fg"], length=0)
            for spine in ax.spines.values():
                spine.set_color(col["grid"])
        self._canvas.draw_idle()

    # ------------------------------------------------------------------ plain data for tests
    def pair_kappas(self) -> dict[tuple[str, str], str]:
        return {(row[0], row[1]): row[3] for row in self.pairs.texts() if row[1]}
