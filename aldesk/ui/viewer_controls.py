"""The viewer's controls: the toolbar (fit, 1:1, invert, reset, window presets, frame slider), the
viewing keys (F, O, I, R, F2–F8, PageUp/PageDown, Up/Down, Escape) and the overlay toggle.

Everything here changes how the scan on screen is *shown*, never what is recorded: no key owned here
may label, move to another scan or touch the project. Labelling keys live in
aldesk.ui.labelling_controller.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QSlider, QToolBar, QWidget

from aldesk.ui.viewer import ScanViewer

PRESET_KEYS = 7  # F2..F8


class ViewerControls(QObject):
    """Owns the viewing actions and keys of one ScanViewer; ``toolbar`` goes on the main window."""

    def __init__(self, viewer: ScanViewer, window: QWidget):
        super().__init__(window)
        self.viewer = viewer
        self.act_fit = QAction("Fit", window, shortcut=QKeySequence("F"), toolTip="Fit the scan to the window (F)")
        self.act_fit.triggered.connect(lambda: self.viewer.fit())
        self.act_actual = QAction("1:1", window, shortcut=QKeySequence("O"),
                                  toolTip="One image pixel per screen pixel (O)")
        self.act_actual.triggered.connect(lambda: self.viewer.actual_size())
        self.act_invert = QAction("Invert", window, shortcut=QKeySequence("I"), checkable=True,
                                  toolTip="Invert grey levels (I)")
        self.act_invert.toggled.connect(lambda on: self.viewer.set_invert(on))
        self.act_reset = QAction("Reset", window, shortcut=QKeySequence("R"),
                                 toolTip="Default window, no inversion, first frame, fitted (R)")
        self.act_reset.triggered.connect(self._on_reset_triggered)
        self.act_overlay = QAction("Show &overlay", window, shortcut=QKeySequence("Ctrl+T"), checkable=True)
        self.act_overlay.setChecked(True)
        self.act_overlay.toggled.connect(self._on_overlay_toggled)
        self.act_smooth = QAction("S&mooth when magnified", window, checkable=True,
                                  toolTip="Off: beyond 1:1 each image pixel is a sharp square, as in a diagnostic "
                                          "viewer. On: interpolated (softer, hides pixel structure)")
        self.act_smooth.toggled.connect(viewer.set_smooth_magnified)
        self.view_actions = (self.act_fit, self.act_actual, self.act_invert, self.act_reset)

        self.toolbar = self._build_toolbar()
        self.shortcuts = self._build_shortcuts(window)
        viewer.view_changed.connect(self.sync)
        viewer.frame_changed.connect(self._on_viewer_frame_changed)

    # ------------------------------------------------------------------ building
    def _build_toolbar(self) -> QToolBar:
        tb = QToolBar("Viewer")
        tb.setObjectName("ViewerToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for act in self.view_actions:
            tb.addAction(act)
        tb.addSeparator()
        tb.addWidget(QLabel("Window"))
        self.preset_box = QComboBox()
        self.preset_box.setMinimumWidth(190)
        self.preset_box.setToolTip("Window/level presets (keys F2…F8); right-drag on the image for any window")
        self.preset_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.preset_box.activated.connect(self._on_preset_box_activated)
        tb.addWidget(self.preset_box)
        tb.addSeparator()
        self.frame_caption = QLabel("Frame")
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.frame_slider.setFixedWidth(220)
        self.frame_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_slider.setToolTip("Frame (PageUp/PageDown or Up/Down)")
        self.frame_slider.valueChanged.connect(lambda i: self.viewer.set_frame(i))
        self.frame_caption_action = tb.addWidget(self.frame_caption)
        self.frame_slider_action = tb.addWidget(self.frame_slider)
        self.frame_caption_action.setVisible(False)
        self.frame_slider_action.setVisible(False)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        self.hint = QLabel("")
        tb.addWidget(self.hint)
        return tb

    def _build_shortcuts(self, window: QWidget) -> dict[str, QShortcut]:
        def sc(name, key, slot, what):
            s = QShortcut(QKeySequence(key), window)
            s.setObjectName(name)
            s.setWhatsThis(what)
            s.setContext(Qt.ShortcutContext.WindowShortcut)
            s.activated.connect(slot)
            shortcuts[name] = s

        shortcuts: dict[str, QShortcut] = {}
        for key in ("PgDown", "Down"):
            sc(f"next_frame_{key}", key, lambda: self.viewer.set_frame(self.viewer.frame + 1), "Next frame")
        for key in ("PgUp", "Up"):
            sc(f"previous_frame_{key}", key, lambda: self.viewer.set_frame(self.viewer.frame - 1), "Previous frame")
        for i in range(PRESET_KEYS):
            sc(f"preset_{i + 1}", f"F{i + 2}", lambda i=i: self.apply_preset_index(i + 1), f"Window preset {i + 1}")
        sc("focus_viewer", "Escape", lambda: self.viewer.setFocus(), "Back to the scan")
        return shortcuts

    def set_viewer(self, viewer: ScanViewer) -> None:
        """Act on another viewer (the active viewport of a study grid, or back to the single viewer)."""
        if viewer is self.viewer:
            return
        self.viewer.view_changed.disconnect(self.sync)
        self.viewer.frame_changed.disconnect(self._on_viewer_frame_changed)
        self.viewer = viewer
        viewer.view_changed.connect(self.sync)
        viewer.frame_changed.connect(self._on_viewer_frame_changed)
        viewer.overlay_visible = self.act_overlay.isChecked()
        self.act_invert.blockSignals(True)
        self.act_invert.setChecked(viewer.invert)
        self.act_invert.blockSignals(False)
        self.sync()

    # ------------------------------------------------------------------ state
    def scan_changed(self) -> None:
        """A new scan is on screen: no inversion carried over, controls match its frames and presets."""
        self.act_invert.blockSignals(True)
        self.act_invert.setChecked(False)
        self.act_invert.blockSignals(False)
        self.sync()

    def sync(self) -> None:
        n = self.viewer.n_frames
        multi = n > 1
        self.frame_caption_action.setVisible(multi)
        self.frame_slider_action.setVisible(multi)
        if multi:
            self.frame_slider.blockSignals(True)
            self.frame_slider.setRange(0, n - 1)
            self.frame_slider.setValue(self.viewer.frame)
            self.frame_slider.blockSignals(False)
            word = "Slice" if getattr(self.viewer, "series", None) is not None else "Frame"
            self.frame_caption.setText(f"{word} {self.viewer.frame + 1}/{n}")
        presets = self.viewer.presets()
        names = ["Default"] + [p.name or f"W {p.width:.0f} L {p.center:.0f}" for p in presets]
        if [self.preset_box.itemText(i) for i in range(self.preset_box.count())] != names:
            self.preset_box.blockSignals(True)
            self.preset_box.clear()
            for i, nm in enumerate(names):
                self.preset_box.addItem(nm if i == 0 or i > PRESET_KEYS + 1 else f"{nm}   (F{i + 1})")
            self.preset_box.blockSignals(False)
        self.preset_box.setEnabled(self.viewer.params is not None and not self.viewer.params.is_colour)

    def apply_preset_index(self, index: int) -> None:
        presets = self.viewer.presets()
        if index == 0:
            self.viewer.set_window(None)
        elif 0 < index <= len(presets):
            self.viewer.set_window(presets[index - 1])
        else:
            return
        self.preset_box.setCurrentIndex(index)

    def _on_preset_box_activated(self, index: int) -> None:
        self.apply_preset_index(index)

    def _on_viewer_frame_changed(self, index: int) -> None:
        self.sync()

    def _on_reset_triggered(self) -> None:
        self.viewer.reset()
        self.act_invert.setChecked(False)
        self.preset_box.setCurrentIndex(0)

    def _on_overlay_toggled(self, on: bool) -> None:
        self.viewer.overlay_visible = on
        self.viewer.update()
