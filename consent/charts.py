"""A bar chart drawn on the server as inline SVG: no JavaScript, and a table beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from consent.selectors import RatePoint

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 40


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value_text: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    unit: str
    baseline: float
    left: int
    right: float


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.3g}%"
    return f"{int(value)}"


def rate_chart(points: list[RatePoint]) -> Chart:
    """Lay out one bar per month: the rate where list sizes are known, else the count."""
    use_rate = any(p.rate is not None for p in points)
    unit = "%" if use_rate else "patients"
    values = [(p.rate or 0.0) if use_rate else float(p.opted_out) for p in points]
    top = _nice_ceiling(max(values, default=0.0))
    if not use_rate:
        # Whole patients on every one of the four gridlines.
        top = max(4, math.ceil(top / 4) * 4)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    bars = []
    for i, (point, value) in enumerate(zip(points, values, strict=True)):
        h = plot_h * value / top
        bars.append(
            Bar(
                x=round(LEFT + i * slot + slot * 0.15, 1),
                y=round(TOP + plot_h - h, 1),
                width=round(slot * 0.7, 1),
                height=round(h, 1),
                label=point.month_end.strftime("%b %y"),
                value_text=_fmt(value, unit),
            )
        )
    ticks = [
        Tick(y=round(TOP + plot_h - plot_h * k / 4, 1), label=_fmt(top * k / 4, unit))
        for k in range(5)
    ]
    return Chart(WIDTH, HEIGHT, bars, ticks, unit, TOP + plot_h, LEFT, WIDTH - RIGHT)
