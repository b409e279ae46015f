"""Progress at a glance: labels over time and per reader, class balance, the learning curve (with the
audit sample's accuracy and its interval), "when can I stop?" in plain language, and the query strategy
in use (changeable, each with a one-line explanation). Real matplotlib plots, styled for the current
theme. Data comes from :func:`aldesk.app.dashboard.dashboard_data` and, computed in a worker,
:func:`aldesk.app.progress.progress_report`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

THEME_COLOURS = {
    "dark": {"bg": "#1f2226", "axes": "#191b1f", "fg": "#c9ccd1", "grid": "#2f3338",
             "series": ["#5b9bd5", "#e0b65c", "#7fc79a", "#d77a6a", "#a98bd6", "#6cc3c8"]},
    "light": {"bg": "#f7f8fa", "axes": "#ffffff", "fg": "#1f2328", "grid": "#dde1e6",
              "series": ["#2f6db3", "#b07a12", "#2e8b57", "#b5473a", "#6f4fb0", "#2a8f96"]},
}


class DashboardPanel(QWidget):
    strategy_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, theme: str = "dark"):
        super().__init__(parent)
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.setObjectName("DashboardPanel")
        self.theme = theme
        self.data: dict | None = None
        self.figure = Figure(figsize=(10, 7), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        title = QLabel("Progress")
        title.setObjectName("PanelTitle")
        self.summary = QLabel("")
        self.summary.setObjectName("Muted")
        self.strategy_box = QComboBox()
        self.strategy_box.setMinimumWidth(200)
        self.strategy_help = QLabel("")
        self.strategy_help.setObjectName("Muted")
        self.strategy_help.setWordWrap(True)
        self.strategy_box.activated.connect(self._on_strategy_box_activated)
        top = QHBoxLayout()
        top.addWidget(title)
        top.addSpacing(16)
        top.addWidget(self.summary, 1)
        top.addWidget(QLabel("Query strategy"))
        top.addWidget(self.strategy_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.addLayout(top)
        layout.addWidget(self.strategy_help)
        layout.addWidget(self._build_stop_box())
        layout.addWidget(self.canvas, 1)

    def _build_stop_box(self) -> QFrame:
        """"When can I stop?": the recommendation in a sentence, the figures behind it underneath."""
        box = self.stop_box = QFrame()
        box.setObjectName("StopAdvice")
        self.stop_title = QLabel("When can I stop?")
        self.stop_title.setObjectName("PanelTitle")
        self.stop_text = QLabel("Open the dashboard after the first model to see whether more labels still pay.")
        self.stop_text.setWordWrap(True)
        self.stop_details = QLabel("")
        self.stop_details.setObjectName("Muted")
        self.stop_details.setWordWrap(True)
        self.stop_details.setTextFormat(Qt.TextFormat.RichText)
        self.stop_details.setToolTip(
            "Audit accuracy: uniformly random scans mixed into the queue (unmarked), each predicted by a model that "
            "did not see it; 95 % Wilson interval.\nStability: Cohen's κ between successive models' predictions "
            "on a fixed random set of scans (stable from κ 0.995 over 3 model pairs; Bloodgood & Vijay-Shanker 2009)."
            "\nProjected: an inverse power law fitted to the audit learning curve.")
        inner = QVBoxLayout(box)
        inner.setContentsMargins(10, 6, 10, 6)
        inner.addWidget(self.stop_title)
        inner.addWidget(self.stop_text)
        inner.addWidget(self.stop_details)
        self._set_stop_colour(None)
        return box

    def _set_stop_colour(self, stop: bool | None) -> None:
        colour = {True: "#2e8b57", False: "#c08a1e", None: "#6b7178"}[stop]
        self.stop_box.setStyleSheet(f"QFrame#StopAdvice {{ border: none; border-left: 4px solid {colour}; }}")

    # ------------------------------------------------------------------ when can I stop?
    def set_progress(self, report: dict | None, *, pending: bool = False, error: str = "") -> None:
        """Show a :func:`aldesk.app.progress.progress_report` (None with pending=True: being computed)."""
        from aldesk.app.progress import describe

        if report is None:
            self.stop_text.setText(error or ("Working out whether more labels still pay…" if pending else
                                             "No figures yet."))
            self.stop_details.setText("")
            self._set_stop_colour(None)
            return
        self.stop_text.setText(report["recommendation"])
        from html import escape

        self.stop_details.setText("<br>".join(f"<b>{escape(name)}</b>: {escape(text)}"
                                              for name, text in describe(report)[1:]))
        self._set_stop_colour(bool(report.get("stop")))

    # ------------------------------------------------------------------ strategy
    def set_strategies(self, descriptions: dict[str, str], current: str) -> None:
        self._descriptions = descriptions
        self.strategy_box.blockSignals(True)
        self.strategy_box.clear()
        for name, text in descriptions.items():
            self.strategy_box.addItem(name, name)
            self.strategy_box.setItemData(self.strategy_box.count() - 1, text, 3)  # Qt.ToolTipRole
        self.strategy_box.setCurrentIndex(max(0, self.strategy_box.findData(current)))
        self.strategy_box.blockSignals(False)
        self._show_help(current)

    def _show_help(self, name: str) -> None:
        self.strategy_help.setText(f"{name}: {getattr(self, '_descriptions', {}).get(name, '')}")

    def _on_strategy_box_activated(self, _index: int) -> None:
        name = self.strategy_box.currentData()
        self._show_help(name)
        self.strategy_changed.emit(name)

    # ------------------------------------------------------------------ plots
    def set_data(self, data: dict, theme: str | None = None) -> None:
        self.data = data
        if theme:
            self.theme = theme
        labelled = data["labelled"]
        self.summary.setText(f"{labelled:,} of {data['scans']:,} scans have a training label"
                             f" ({labelled / max(data['scans'], 1):.1%}) · {sum(data['per_reader'].values()):,} reads"
                             f" by {len(data['per_reader'])} reader(s)")
        self._draw()

    def _style(self, ax, c) -> None:
        ax.set_facecolor(c["axes"])
        for spine in ax.spines.values():
            spine.set_color(c["grid"])
        ax.tick_params(colors=c["fg"], labelsize=9)
        ax.title.set_color(c["fg"])
        ax.xaxis.label.set_color(c["fg"])
        ax.yaxis.label.set_color(c["fg"])
        ax.grid(True, color=c["grid"], linewidth=0.6)
        ax.set_axisbelow(True)

    def _draw(self) -> None:
        d, c = self.data, THEME_COLOURS[self.theme]
        fig = self.figure
        fig.clear()
        fig.set_facecolor(c["bg"])
        (a1, a2), (a3, a4) = fig.subplots(2, 2)
        for ax in (a1, a2, a3, a4):
            self._style(ax, c)

        a1.set_title("Labels over time", fontsize=11)
        for i, (reader, points) in enumerate(d["labels_over_time"].items()):
            if points:
                a1.step([p[0] for p in points], [p[1] for p in points], where="post", label=reader,
                        color=c["series"][i % len(c["series"])], linewidth=1.8)
        if d["labels_over_time"]:
            a1.legend(fontsize=8, facecolor=c["axes"], edgecolor=c["grid"], labelcolor=c["fg"])
        else:
            a1.text(0.5, 0.5, "No labels yet", ha="center", va="center", color=c["fg"], transform=a1.transAxes)
        a1.set_ylabel("labels")
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator(maxticks=6)
        a1.xaxis.set_major_locator(locator)
        a1.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        a1.xaxis.get_offset_text().set_color(c["fg"])

        a2.set_title("Reads per reader", fontsize=11)
        readers = list(d["per_reader"])
        a2.barh(readers, [d["per_reader"][r] for r in readers], color=c["series"][0], height=0.5)
        a2.set_ylim(max(len(readers), 3) - 0.5, -0.5)
        a2.set_xlabel("current reads")

        a3.set_title("Class balance", fontsize=11)
        names = list(d["class_balance"])
        colours = [c["series"][i % len(c["series"])] if n not in ("unsure", "skip") else c["grid"] for i, n in enumerate(names)]
        bars = a3.bar(names, [d["class_balance"][n] for n in names], color=colours)
        for bar, n in zip(bars, names):
            a3.annotate(str(d["class_balance"][n]), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8, color=c["fg"])

        a4.set_title("Learning curve (cross-validated)", fontsize=11)
        curve = d["learning_curve"]
        if curve:
            n = [p[0] for p in curve]
            a4.plot(n, [p[1] for p in curve], marker="o", markersize=3, color=c["series"][0], label="accuracy")
            audit = d.get("audit_curve") or []
            if audit:
                an = [p[0] for p in audit]
                acc = [p[1] for p in audit]
                a4.errorbar(an, acc, yerr=[[a - p[2] for a, p in zip(acc, audit)], [p[3] - a for a, p in zip(acc, audit)]],
                            fmt="D", markersize=3, capsize=2, color=c["series"][2], linewidth=1,
                            label="audit accuracy (95 % CI)")
            a4.set_ylim(0, 1.02)
            a4.set_ylabel("accuracy")
            a4.set_xlabel("labels used")
            twin = a4.twinx()
            twin.plot(n, [p[2] for p in curve], marker="s", markersize=3, color=c["series"][1], label="ECE")
            twin.set_ylabel("ECE (lower is better)")
            twin.tick_params(colors=c["fg"], labelsize=9)
            twin.yaxis.label.set_color(c["fg"])
            for spine in twin.spines.values():
                spine.set_color(c["grid"])
            handles, names = (sum(pair, []) for pair in zip(a4.get_legend_handles_labels(),
                                                             twin.get_legend_handles_labels()))
            a4.legend(handles, names, fontsize=8, loc="lower right",
                      facecolor=c["axes"], edgecolor=c["grid"], labelcolor=c["fg"])
        else:
            a4.text(0.5, 0.5, "No model yet: label at least one scan of every class",
                    ha="center", va="center", color=c["fg"], transform=a4.transAxes, fontsize=9)
        self.canvas.draw_idle()
