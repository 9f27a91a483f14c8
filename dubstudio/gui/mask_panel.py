"""The mask editor's dock: brush mode, size, feather, range-only, grow/shrink, clear.

A plain view: it holds the brush settings the tool reads (``brush_value``, ``radius``,
``feather``, ``range_only``) and emits what the user asks for; ``MaskTool`` does the work.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

MODES = (("paint", "Paint", 1.0), ("erase", "Erase", -1.0), ("restore", "Auto", 0.0))
MODE_TIPS = {
    "paint": "Add to the mask (left drag)",
    "erase": "Remove from the mask (Alt or right drag)",
    "restore": "Back to the automatic mask where you brush",
}
MIN_RADIUS, MAX_RADIUS = 1, 300


class MaskPanel(QWidget):
    grow_changed = Signal(float)  # the user set grow/shrink (crop px at 256)
    clear_requested = Signal()
    done_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("QToolButton:checked { background-color: #3c78c8; color: white; border: 1px solid #5a92dc; border-radius: 3px; }")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(10)

        brush = QGroupBox("Brush")
        form = QFormLayout(brush)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        modes = QHBoxLayout()
        modes.setSpacing(4)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QToolButton] = {}
        for k, (name, label, _v) in enumerate(MODES):
            b = QToolButton()
            b.setText(label)
            b.setCheckable(True)
            b.setToolTip(MODE_TIPS[name])
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setMinimumWidth(56)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.mode_group.addButton(b, k)
            self.mode_buttons[name] = b
            modes.addWidget(b)
        self.mode_buttons["paint"].setChecked(True)
        form.addRow(modes)

        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_RADIUS, MAX_RADIUS)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(MIN_RADIUS, MAX_RADIUS)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush radius in frame pixels ( [ smaller, ] bigger )")
        self.size_spin.setMinimumWidth(76)
        self._pair(self.size_slider, self.size_spin)
        form.addRow("Size", self._row(self.size_slider, self.size_spin))

        self.feather_slider = QSlider(Qt.Orientation.Horizontal)
        self.feather_slider.setRange(0, 100)
        self.feather_spin = QSpinBox()
        self.feather_spin.setRange(0, 100)
        self.feather_spin.setSuffix(" %")
        self.feather_spin.setToolTip("Soft edge, as a share of the radius (0 = hard)")
        self.feather_spin.setMinimumWidth(76)
        self._pair(self.feather_slider, self.feather_spin)
        form.addRow("Feather", self._row(self.feather_slider, self.feather_spin))

        self.range_check = QCheckBox("This range only")
        self.range_check.setToolTip("Strokes change the mask between the In and Out points only (later ranges win)")
        self.range_label = QLabel()
        self.range_label.setObjectName("mask_range_label")
        self.range_label.setStyleSheet("color: #9a9aa2;")
        form.addRow(self.range_check)
        form.addRow(self.range_label)
        lay.addWidget(brush)

        whole = QGroupBox("Whole mask")
        wform = QFormLayout(whole)
        self.grow_spin = QDoubleSpinBox()
        self.grow_spin.setRange(-32.0, 32.0)
        self.grow_spin.setSingleStep(1.0)
        self.grow_spin.setDecimals(0)
        self.grow_spin.setSuffix(" px")
        self.grow_spin.setToolTip("Dilate (+) or erode (−) the final mask, in crop pixels at 256")
        self.grow_spin.setKeyboardTracking(False)
        self.grow_spin.valueChanged.connect(lambda v: None if self._quiet else self.grow_changed.emit(float(v)))
        wform.addRow("Grow / shrink", self.grow_spin)
        self.clear_button = QPushButton("Clear edits")
        self.clear_button.setToolTip("Remove the mask edits (of the In/Out range only when 'This range only' is on)")
        self.clear_button.clicked.connect(self.clear_requested)
        wform.addRow(self.clear_button)
        lay.addWidget(whole)

        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: #9a9aa2;")
        lay.addWidget(self.info)
        hint = QLabel(
            "Left drag paints · Alt or right drag erases · [ ] size · middle drag pans · wheel zooms. "
            "Edits live on the face, so they follow it to every frame."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8a8a92;")
        lay.addWidget(hint)
        done = QPushButton("Done")
        done.setToolTip("Leave mask painting (B)")
        done.clicked.connect(self.done_requested)
        lay.addWidget(done)
        lay.addStretch(1)

        self._quiet = False
        self.set_radius(12)
        self.feather_spin.setValue(50)
        self.set_range(None)

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            h.addWidget(x, 1 if isinstance(x, QSlider) else 0)
        return w

    @staticmethod
    def _pair(slider: QSlider, spin: QSpinBox) -> None:
        slider.valueChanged.connect(spin.setValue)
        spin.valueChanged.connect(slider.setValue)

    # -- what the tool reads --

    @property
    def mode(self) -> str:
        return MODES[max(0, self.mode_group.checkedId())][0]

    def set_mode(self, name: str) -> None:
        self.mode_buttons[name].setChecked(True)

    @property
    def brush_value(self) -> float:
        return MODES[max(0, self.mode_group.checkedId())][2]

    @property
    def radius(self) -> float:
        return float(self.size_spin.value())

    def set_radius(self, px: float) -> None:
        self.size_spin.setValue(int(round(min(max(px, MIN_RADIUS), MAX_RADIUS))))

    @property
    def feather(self) -> float:
        return self.feather_spin.value() / 100.0

    @property
    def range_only(self) -> bool:
        return self.range_check.isEnabled() and self.range_check.isChecked()

    # -- what the tool shows --

    def set_range(self, frames: tuple[int, int] | None) -> None:
        """The In/Out range (inclusive) or None when none is set."""
        self.range_check.setEnabled(frames is not None)
        if frames is None:
            self.range_label.setText("No In/Out range: set one with I and O")
        else:
            self.range_label.setText(f"In/Out: frames {frames[0]}–{frames[1]}")

    def set_grow(self, px: float) -> None:
        self._quiet = True
        self.grow_spin.setValue(px)
        self._quiet = False

    def set_info(self, text: str) -> None:
        self.info.setText(text)
