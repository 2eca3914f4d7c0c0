"""A small server-side SVG chart builder: lines, bars and a heatmap, as inline SVG text.

Pure functions over plain numbers; nothing is loaded from anywhere, so the report page works
offline and behind a proxy. Every text is escaped; every chart has a <title> for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 48


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no value at that x (a gap in the line)


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _frame(title: str, body: list[str], *, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" class="sb-chart" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def _axis_top(values: Sequence[float]) -> float:
    """The top of the y axis: for counts a multiple of the 4 gridline steps, so every tick is whole."""
    top = max(values)
    if all(float(v).is_integer() for v in values):
        return float(4 * math.ceil(top / 4))
    return top


def _y_axis(top_value: float, *, unit: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>']
    for i in range(5):
        value = top_value * i / 4
        y = HEIGHT - BOTTOM - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}{escape(unit)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    step = max(1, len(labels) // 12)  # at most about a dozen labels
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % step == 0
    ]


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        x = LEFT + i * 130
        color = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 9}">{escape(name)}</text>')
    return parts


def _empty(title: str) -> str:
    return _frame(
        title,
        [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#666">'
            "No data in this range</text>"
        ],
    )


def line_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    max_value: float | None = None,
    unit: str = "",
) -> str:
    """One line per series over the labels (x). Values None leave a gap."""
    found = [v for s in series for v in s.values if v is not None]
    if not labels or not found:
        return _empty(title)
    top = max_value if max_value is not None else (max(found) or 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = [LEFT + (plot_w * (i + 0.5) / len(labels)) for i in range(len(labels))]
    parts = _y_axis(top, unit=unit) + _x_labels(labels, xs)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = [
            (x, HEIGHT - BOTTOM - plot_h * (v / top))
            for x, v in zip(xs, s.values, strict=True)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        for (x, y), v in zip(points, [v for v in s.values if v is not None], strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(s.name)}: {_fmt(v)}{escape(unit)}</title></circle>"
            )
    return _frame(title, parts + _legend([s.name for s in series]))


def bar_chart(*, title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    found = [v for s in series for v in s.values if v is not None]
    if not labels or not found or max(found) <= 0:
        return _empty(title)
    top = _axis_top(found)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / len(labels)
    bar = group * 0.8 / max(1, len(series))
    xs = [LEFT + group * (i + 0.5) for i in range(len(labels))]
    parts = _y_axis(top, unit=unit) + _x_labels(labels, xs)
    for j, s in enumerate(series):
        color = PALETTE[j % len(PALETTE)]
        for i, v in enumerate(s.values):
            if not v:
                continue
            h = plot_h * v / top
            x = LEFT + group * i + group * 0.1 + bar * j
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(labels[i])} {escape(s.name)}: {_fmt(v)}'
                f"{escape(unit)}</title></rect>"
            )
    return _frame(title, parts + (_legend([s.name for s in series]) if len(series) > 1 else []))


def hbar_chart(
    *,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    second: Sequence[float] = (),
    names: tuple[str, str] = ("", ""),
) -> str:
    """Horizontal bars, one row per label (e.g. pages per engineer); ``second`` overlays a part of it
    (e.g. the pages outside business hours)."""
    if not labels or max(values, default=0) <= 0:
        return _empty(title)
    row_h = 20
    height = TOP + row_h * len(labels) + 30
    left = 150
    plot_w = WIDTH - left - RIGHT - 40
    top = max(values)
    parts = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * row_h
        w = plot_w * v / top
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {_fmt(v)} {escape(names[0])}</title></rect>"
        )
        if second and second[i]:
            w2 = plot_w * second[i] / top
            parts.append(
                f'<rect x="{left}" y="{y + 3}" width="{w2:.1f}" height="{row_h - 6}" '
                f'fill="{PALETTE[1]}"><title>{escape(label)}: {_fmt(second[i])} {escape(names[1])}'
                "</title></rect>"
            )
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 14}">{_fmt(v)}</text>')
    if second:
        y = height - 14
        parts += [
            f'<rect x="{left}" y="{y}" width="10" height="10" fill="{PALETTE[0]}"/>',
            f'<text x="{left + 14}" y="{y + 9}">{escape(names[0])}</text>',
            f'<rect x="{left + 160}" y="{y}" width="10" height="10" fill="{PALETTE[1]}"/>',
            f'<text x="{left + 174}" y="{y + 9}">{escape(names[1])}</text>',
        ]
    return _frame(title, parts, height=height)


def heatmap(
    *, title: str, rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]
) -> str:
    """A grid of cells shaded by count (rows x columns, e.g. weekday x hour)."""
    top = max((c for row in counts for c in row), default=0)
    if top <= 0:
        return _empty(title)
    left, cell_w, cell_h = 44, (WIDTH - 44 - RIGHT) / len(columns), 24
    height = TOP + cell_h * len(rows) + 24
    parts = []
    for r, name in enumerate(rows):
        y = TOP + r * cell_h
        parts.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{escape(name)}</text>')
        for c, count in enumerate(counts[r]):
            share = count / top
            fill = f"rgba(37,99,235,{0.08 + 0.92 * share:.2f})" if count else "#f5f5f5"
            parts.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{y}" width="{cell_w - 1:.1f}" '
                f'height="{cell_h - 1}" fill="{fill}"><title>{escape(name)} {escape(columns[c])}: '
                f"{count}</title></rect>"
            )
    for c, name in enumerate(columns):
        if c % 2 == 0:
            parts.append(
                f'<text x="{left + (c + 0.5) * cell_w:.1f}" y="{height - 8}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    return _frame(title, parts, height=height)
