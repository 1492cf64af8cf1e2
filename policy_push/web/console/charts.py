"""Server-rendered SVG bar charts with axis labels (no JavaScript; a screen reader gets a title and a
table beside each chart)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BarChart", "bar_chart"]


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: int
    cx: float
    css: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    left: int
    bottom: int
    top: int
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # (y, value) gridlines of the value axis
    x_title: str
    y_title: str
    title: str


def _nice_top(top: int) -> int:
    if top <= 5:
        return max(top, 1)
    step = 10 ** (len(str(top)) - 1)
    return ((top + step - 1) // step) * step


def bar_chart(
    items: list[tuple[str, int]], *, title: str, x_title: str, y_title: str, width: int = 560, height: int = 220,
    colours: list[str] | None = None,
) -> BarChart:
    """Vertical bars for (label, value) pairs, with a value axis of 5 ticks."""
    left, bottom, top_pad = 48, 46, 14
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = _nice_top(max((v for _, v in items), default=0))
    n = max(len(items), 1)
    slot = plot_w / n
    bars = []
    for i, (label, value) in enumerate(items):
        h = plot_h * value / top if top else 0
        x = left + i * slot + slot * 0.15
        bars.append(Bar(round(x, 1), round(top_pad + plot_h - h, 1), round(slot * 0.7, 1), round(h, 1), label, value,
                        round(left + (i + 0.5) * slot, 1), (colours or ["bar"])[i % len(colours or ["bar"])]))  # fmt: skip
    ticks = [(round(top_pad + plot_h - plot_h * k / 4, 1), round(top * k / 4)) for k in range(5)]
    return BarChart(width, height, left, bottom, top_pad, bars, ticks, x_title, y_title, title)
