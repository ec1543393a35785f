"""The report's few charts as inline SVG, drawn here: no charting library, nothing to load.

plotly.js inlined made every report 4.9 MB and drew three simple charts; these are a few
kilobytes, open offline, and render before the page is scrolled. Each chart is horizontal,
one band per variant, so long variant names stay readable. Text is HTML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

#: Colours of the error types, in order (a colour-blind-safe palette, Okabe–Ito).
PALETTE: Final = ("#E69F00", "#56B4E9", "#009E73", "#D55E00", "#CC79A7", "#0072B2", "#F0E442")

_WIDTH: Final = 640
_LABEL: Final = 150
_RIGHT: Final = 24
_BAND: Final = 30
_TOP: Final = 34
_AXIS: Final = 30


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (steps of 1, 2 or 5 times a power of 10)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


class _Scale:
    def __init__(self, low: float, high: float) -> None:
        self.ticks = nice_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]

    def x(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return _LABEL + (value - self.low) / span * (_WIDTH - _LABEL - _RIGHT)


def _frame(chart_id: str, title: str, rows: int, body: list[str], scale: _Scale, unit: str) -> str:
    height = _TOP + rows * _BAND + _AXIS
    bottom = _TOP + rows * _BAND
    axis = []
    for tick in scale.ticks:
        x = scale.x(tick)
        axis.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{bottom}" class="grid"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" class="tick">{_fmt(tick)}</text>'
        )
    axis.append(f'<text x="{_WIDTH - _RIGHT}" y="{bottom + 28}" class="unit">{escape(unit)}</text>')
    return (
        f'<figure class="chart" id="{chart_id}"><svg viewBox="0 0 {_WIDTH} {height + 6}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="18" class="title">{escape(title)}</text>'
        + "".join(axis)
        + "".join(body)
        + "</svg></figure>"
    )


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:g}"


def _middle(index: int) -> float:
    """The vertical middle of band ``index``."""
    return _TOP + index * _BAND + _BAND / 2


def _label(index: int, name: str) -> str:
    """The label of band ``index``: ``name``, cut short, whole in its tooltip."""
    short = name if len(name) <= 22 else name[:21] + "…"
    return (
        f'<text x="{_LABEL - 8}" y="{_middle(index) + 4:.1f}" class="label">'
        f"<title>{escape(name)}</title>{escape(short)}</text>"
    )


def _band(index: int, name: str, tip: str, marks: str) -> str:
    """Band ``index``: its label, and ``marks`` drawn with ``tip`` as their tooltip."""
    return _label(index, name) + f"<g><title>{escape(tip)}</title>{marks}</g>"


def latency_chart(boxes: Sequence[Mapping[str, Any]]) -> str:
    """Box plots of ok calls' latency per variant: quartiles, median, whiskers p5–p95, mean."""
    drawn = [b for b in boxes if b.get("median") is not None]
    if not drawn:
        return ""
    scale = _Scale(
        min(float(b["p5"]) for b in drawn) * 0.95, max(float(b["p95"]) for b in drawn) * 1.02
    )
    body = []
    for i, b in enumerate(drawn):
        top, mid = _TOP + i * _BAND + 7, _middle(i)
        x = {k: scale.x(float(b[k])) for k in ("p5", "q1", "median", "q3", "p95")}
        tip = (
            f"{b['variant']}: p5 {b['p5']:,.0f}, q1 {b['q1']:,.0f}, median {b['median']:,.0f}, "
            f"q3 {b['q3']:,.0f}, p95 {b['p95']:,.0f} ms"
        )
        marks = (
            f'<line x1="{x["p5"]:.1f}" y1="{mid}" x2="{x["p95"]:.1f}" y2="{mid}" class="whisker"/>'
            f'<rect x="{x["q1"]:.1f}" y="{top}" width="{max(x["q3"] - x["q1"], 1):.1f}" '
            f'height="{_BAND - 14}" class="box"/>'
            f'<line x1="{x["median"]:.1f}" y1="{top}" x2="{x["median"]:.1f}" '
            f'y2="{top + _BAND - 14}" class="median"/>'
        )
        body.append(_band(i, str(b["variant"]), tip, marks))
    return _frame(
        "chart-latency", "Latency of ok calls", len(drawn), body, scale,
        "ms · box: quartiles, line: median, whiskers: p5–p95",
    )  # fmt: skip


def score_chart(summary: Sequence[Mapping[str, Any]], label: str) -> str:
    """Each variant's mean score with its 95 % interval, in percent."""
    scored = [r for r in summary if r.get("score_mean") is not None]
    if not scored:
        return ""
    scale = _Scale(0.0, 100.0)
    body = []
    for i, r in enumerate(scored):
        mid = _middle(i)
        mean = float(r["score_mean"]) * 100
        low = r.get("score_ci_low")
        high = r.get("score_ci_high")
        tip = f"{r['variant']}: {mean:.1f} %"
        line = ""
        if low is not None and high is not None:
            tip += f", 95 % CI [{low * 100:.1f}, {high * 100:.1f}]"
            line = (
                f'<line x1="{scale.x(low * 100):.1f}" y1="{mid}" x2="{scale.x(high * 100):.1f}" '
                f'y2="{mid}" class="ci"/>'
            )
        marks = (
            f'{line}<circle cx="{scale.x(mean):.1f}" cy="{mid}" r="6" class="dot"/>'
            f'<text x="{scale.x(mean):.1f}" y="{mid - 9}" class="value">{mean:.1f}</text>'
        )
        body.append(_band(i, str(r["variant"]), tip, marks))
    return _frame("chart-score", f"{label}: mean and 95 % CI", len(scored), body, scale, "%")


def errors_chart(summary: Sequence[Mapping[str, Any]]) -> str:
    """Error calls per variant, stacked by error type; empty when no call failed."""
    types: list[str] = []
    for r in summary:
        for e in r.get("errors_by_type") or []:
            if e["error_type"] not in types:
                types.append(str(e["error_type"]))
    if not types:
        return ""
    totals = [sum(int(e["count"]) for e in r.get("errors_by_type") or []) for r in summary]
    scale = _Scale(0.0, max(max(totals), 1) * 1.05)
    body = []
    for i, r in enumerate(summary):
        top = _TOP + i * _BAND + 7
        x = scale.x(0)
        body.append(_label(i, str(r["variant"])))
        for e in r.get("errors_by_type") or []:
            width = scale.x(float(e["count"])) - scale.x(0)
            colour = PALETTE[types.index(str(e["error_type"])) % len(PALETTE)]
            tip = f"{r['variant']}: {e['error_type']} ×{e['count']:,}"
            body.append(
                f'<rect x="{x:.1f}" y="{top}" width="{max(width, 1):.1f}" height="{_BAND - 14}" '
                f'fill="{colour}"><title>{escape(tip)}</title></rect>'
            )
            x += width
    legend = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(t)}</span>'
        for i, t in enumerate(types)
    )
    chart = _frame("chart-errors", "Errors by type", len(summary), body, scale, "calls")
    return chart.replace("</figure>", f'<figcaption class="legend">{legend}</figcaption></figure>')


#: The charts' styles, for the page's stylesheet.
CHART_CSS: Final = """
.chart { margin: 0; } .chart svg { width: 100%; height: auto; font: 12px system-ui, sans-serif; }
.chart .title { font-weight: 600; font-size: 14px; fill: #1d2330; }
.chart .grid { stroke: #e4e7ee; } .chart .tick { fill: #5b6475; text-anchor: middle; }
.chart .unit { fill: #5b6475; text-anchor: end; } .chart .label { text-anchor: end; fill: #1d2330; }
.chart .box { fill: #cfe0f5; stroke: #2f6db5; } .chart .median { stroke: #123e73; stroke-width: 2; }
.chart .whisker { stroke: #2f6db5; } .chart .ci { stroke: #2f6db5; stroke-width: 3; }
.chart .dot { fill: #123e73; } .chart .value { text-anchor: middle; fill: #123e73; }
.legend span { margin-right: 1rem; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
"""
