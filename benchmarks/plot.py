"""Line plots written as PNG with Pillow (no plotting library in the dependencies)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 720, 440
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 40, 60
COLOURS = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (148, 103, 189),
    (255, 127, 14),
    (140, 86, 75),
    (23, 190, 207),
    (127, 127, 127),
)


@dataclass
class LinePlot:
    """Series of (x, y) points on shared axes, with optional horizontal reference lines (targets)."""

    title: str
    x_label: str
    y_label: str
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    references: dict[str, float] = field(default_factory=dict)
    # Both axes logarithmic (positive values only): a power law is a straight line, its slope the exponent.
    log_axes: bool = False


def _nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    span = max(high - low, 1e-9)
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(factor * power for factor in (1, 2, 5, 10) if factor * power >= raw)
    first = math.floor(low / step) * step
    return [first + index * step for index in range(int((high - first) / step) + 2) if first + index * step <= high]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2e}"


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten (and 2 and 5 times them when few decades show) within [low, high], as log10 values."""
    decades = range(math.floor(low), math.ceil(high) + 1)
    factors = (1,) if high - low > 4 else (1, 2, 5)
    return [d + math.log10(f) for d in decades for f in factors if low <= d + math.log10(f) <= high]


def _log_plot(plot: LinePlot) -> LinePlot:
    """The same plot in log10 units, drawn with linear axes (``save`` labels the ticks back in plain numbers)."""
    series = {name: [(math.log10(x), math.log10(y)) for x, y in points if x > 0 and y > 0]
              for name, points in plot.series.items()}  # fmt: skip
    references = {name: math.log10(value) for name, value in plot.references.items() if value > 0}
    return LinePlot(plot.title, plot.x_label, plot.y_label, series, references)


def save(plot: LinePlot, path: Path) -> None:
    """Draw ``plot`` into a PNG at ``path``."""
    logarithmic = plot.log_axes
    if logarithmic:
        plot = _log_plot(plot)
    points = [point for series in plot.series.values() for point in series]
    ys = [y for _, y in points] + list(plot.references.values())
    x_low, x_high = 0.0, max(x for x, _ in points) * 1.02
    if logarithmic:
        x_low, x_high = min(x for x, _ in points) - 0.1, max(x for x, _ in points) + 0.1
    y_low, y_high = min(ys), max(ys)
    pad = (y_high - y_low) * 0.08 or 1.0
    y_low, y_high = y_low - pad, y_high + pad
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x_low) / (x_high - x_low) * (right - left),
                bottom - (y - y_low) / (y_high - y_low) * (bottom - top))  # fmt: skip

    ticks, label = (_log_ticks, lambda value: _label(10**value)) if logarithmic else (_nice_ticks, _label)
    for tick in ticks(y_low, y_high):
        _, y = to_pixel(0, tick)
        draw.line([(left, y), (right, y)], fill=(230, 230, 230))
        draw.text((left - 8, y), label(tick), fill="black", font=font, anchor="rm")
    for tick in ticks(x_low, x_high):
        x, _ = to_pixel(tick, y_low)
        draw.line([(x, top), (x, bottom)], fill=(230, 230, 230))
        draw.text((x, bottom + 8), label(tick), fill="black", font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    for name, value in plot.references.items():
        _, y = to_pixel(0, value)
        for start in range(left, right, 12):
            draw.line([(start, y), (min(start + 6, right), y)], fill=(120, 120, 120))
        draw.text((right - 4, y - 4), name, fill=(90, 90, 90), font=font, anchor="rb")
    for index, (name, series) in enumerate(plot.series.items()):
        colour = COLOURS[index % len(COLOURS)]
        pixels = [to_pixel(x, y) for x, y in sorted(series)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for x, y in pixels:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        draw.text((left + 10, top + 10 + 14 * index), f"- {name}", fill=colour, font=font)
    draw.text((WIDTH / 2, 14), plot.title, fill="black", font=font, anchor="mt")
    draw.text(((left + right) / 2, HEIGHT - 18), plot.x_label, fill="black", font=font, anchor="mm")
    draw.text((8, top - 20), plot.y_label, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
