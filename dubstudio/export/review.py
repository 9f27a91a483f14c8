"""Side-by-side review frames: original | dubbed, same height, a thin separator, optional labels and
a burned-in source timecode and frame number (what review notes quote: "at 01:00:12:04 the M is late")."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["ReviewSettings", "SideBySide"]


@dataclass(frozen=True)
class ReviewSettings:
    scale: float = 1.0  # each half's size relative to the shot (0.5: a 1080p review is 1928x540)
    separator_px: int = 8
    labels: bool = True
    separator_rgb: tuple[int, int, int] = (128, 128, 128)
    burn_in: bool = True  # the frame's source timecode (when the shot has one) and frame number

    def __post_init__(self) -> None:
        if not 0.1 <= self.scale <= 1.0:
            raise ValueError(f"review scale must be in [0.1, 1], got {self.scale}")
        if not 0 <= self.separator_px <= 64:
            raise ValueError(f"separator must be 0..64 px, got {self.separator_px}")


class SideBySide:
    """Lays out ``original | separator | dubbed`` for frames of ``width`` x ``height``.

    Sizes are even (4:2:0 video needs it): each half is ``scale`` x the shot rounded to even,
    the separator is rounded up to even."""

    def __init__(self, width: int, height: int, settings: ReviewSettings = ReviewSettings(),
                 start_timecode: str | None = None, fps=None) -> None:
        self.settings = settings
        self.start_timecode, self.fps = start_timecode, fps
        self.src = (int(width), int(height))
        self.half_w = max(2, 2 * round(width * settings.scale / 2)) if settings.scale != 1 else int(width)
        self.half_h = max(2, 2 * round(height * settings.scale / 2)) if settings.scale != 1 else int(height)
        self.sep = settings.separator_px + settings.separator_px % 2
        self.width = 2 * self.half_w + self.sep
        self.height = self.half_h
        self.right_x0 = self.half_w + self.sep

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        if (rgb.shape[1], rgb.shape[0]) == (self.half_w, self.half_h):
            return rgb
        return cv2.resize(rgb, (self.half_w, self.half_h), interpolation=cv2.INTER_AREA)

    def compose(self, original: np.ndarray, dubbed: np.ndarray, index: int | None = None) -> np.ndarray:
        canvas = np.empty((self.height, self.width, 3), np.uint8)
        canvas[:, : self.half_w] = self._fit(original)
        canvas[:, self.half_w : self.right_x0] = self.settings.separator_rgb
        canvas[:, self.right_x0 :] = self._fit(dubbed)
        if self.settings.labels:
            self._label(canvas, "ORIGINAL", 0)
            self._label(canvas, "DUBBED (SYNTHETIC)", self.right_x0)
        if self.settings.burn_in and index is not None:
            self._burn_in(canvas, index)
        return canvas

    def burn_in_text(self, index: int) -> str:
        if self.start_timecode and self.fps:
            from dubstudio.core.timebase import timecode_at

            return f"{timecode_at(self.start_timecode, self.fps, index)}   frame {index}"
        return f"frame {index}"

    def _burn_in(self, canvas: np.ndarray, index: int) -> None:
        """White on a black box, bottom centre over the separator: clear of both mouths."""
        text = self.burn_in_text(index)
        s = max(0.4, self.half_h / 900)
        th = max(1, int(round(s * 2)))
        (tw, tht), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, th)
        pad = int(6 * s) + 2
        x = max(0, (self.width - tw) // 2)
        y = self.height - pad - base
        cv2.rectangle(canvas, (x - pad, y - tht - pad), (min(self.width - 1, x + tw + pad), min(self.height - 1, y + base + pad)), (0, 0, 0), -1)
        cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255), th, cv2.LINE_AA)

    def _label(self, canvas: np.ndarray, text: str, x0: int) -> None:
        s = max(0.4, self.half_h / 900)
        th = max(1, int(round(s * 2)))
        org = (x0 + int(12 * s), int(32 * s))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, s, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255), th, cv2.LINE_AA)

    def map_mask(self, y0: int, x0: int, mask: np.ndarray) -> tuple[int, int, np.ndarray]:
        """A synthetic-pixel mask of the dubbed frame (placed at y0, x0) in canvas coordinates."""
        fx, fy = self.half_w / self.src[0], self.half_h / self.src[1]
        if fx == 1 and fy == 1:
            return y0, x0 + self.right_x0, mask
        h, w = mask.shape
        ny0, nx0 = int(np.floor(y0 * fy)), int(np.floor(x0 * fx))
        ny1 = min(self.half_h, max(ny0 + 1, int(np.ceil((y0 + h) * fy))))
        nx1 = min(self.half_w, max(nx0 + 1, int(np.ceil((x0 + w) * fx))))
        m = cv2.resize(mask.astype(np.uint8), (nx1 - nx0, ny1 - ny0), interpolation=cv2.INTER_NEAREST) > 0
        return ny0, nx0 + self.right_x0, m
