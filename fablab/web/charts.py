"""Charts of the fairness review as server-drawn SVG: no script, no external service, printable.

Each chart is one self-contained <svg role="img"> with a <title> and a <desc> (what it shows, in words, for
screen readers); the page puts a data table with the same numbers beside it. Every text that reaches
the SVG is escaped here, so names can never inject markup.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..services.fairness import WEEKDAY_NAMES, HeatView, Review

_ids = itertools.count(1)
FONT = 'font-family="system-ui, sans-serif"'
INK, MUTED, GRID, ACCENT, YOU = "#15191e", "#5b6470", "#d9dde3", "#0a58ca", "#c2410c"


def _e(text: object) -> str:
    return escape(str(text), {'"': "&quot;", "'": "&#39;"})


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _open(width: int, height: int, title: str, desc: str, key: str) -> tuple[str, str]:
    uid = f"chart-{key}-{next(_ids)}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-labelledby="{uid}-t {uid}-d" class="chart chart-{key}" {FONT}>'
            f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>')
    return head, uid


def lorenz_svg(points: Sequence[tuple[float, float]], gini: float, size: int = 320) -> str:
    pad = 44
    inner = size - pad - 12
    title = f"Lorenz curve of machine usage (Gini {gini:.2f})"
    share_half = next((y for x, y in points if x >= 0.5), 1.0)
    desc = (f"Members sorted from least to most use. The diagonal is perfect equality; the further the curve sags "
            f"below it, the more unequal the use. The less-using half of members used {share_half:.0%} of the hours.")
    head, _ = _open(size, size, title, desc, "lorenz")

    def xy(x: float, y: float) -> tuple[float, float]:
        return pad + x * inner, 12 + (1 - y) * inner

    parts = [head]
    for t in (0, 0.25, 0.5, 0.75, 1):
        x0, y0 = xy(t, 0)
        x1, y1 = xy(0, t)
        parts.append(f'<line x1="{x0:.1f}" y1="12" x2="{x0:.1f}" y2="{12 + inner}" stroke="{GRID}"/>')
        parts.append(f'<line x1="{pad}" y1="{y1:.1f}" x2="{pad + inner}" y2="{y1:.1f}" stroke="{GRID}"/>')
        parts.append(f'<text x="{x0:.1f}" y="{12 + inner + 14}" font-size="10" text-anchor="middle" '
                     f'fill="{MUTED}">{t:.0%}</text>')
        parts.append(f'<text x="{pad - 4}" y="{y1 + 3:.1f}" font-size="10" text-anchor="end" fill="{MUTED}">'
                     f'{t:.0%}</text>')
    a, b = xy(0, 0), xy(1, 1)
    parts.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" stroke="{MUTED}" '
                 f'stroke-dasharray="4 3"><title>Perfect equality</title></line>')
    poly = " ".join(f"{px:.1f},{py:.1f}" for px, py in (xy(x, y) for x, y in points))
    area = f"{a[0]:.1f},{a[1]:.1f} {poly} {b[0]:.1f},{a[1]:.1f}"
    parts.append(f'<polygon points="{area}" fill="{ACCENT}" fill-opacity="0.10" stroke="none"/>')
    parts.append(f'<polyline points="{poly}" fill="none" stroke="{ACCENT}" stroke-width="2.5"/>')
    parts.append(f'<text x="{pad + inner / 2:.1f}" y="{size - 2}" font-size="11" text-anchor="middle" fill="{INK}">'
                 f'share of members (least use first)</text>')
    parts.append(f'<text transform="translate(11 {12 + inner / 2:.1f}) rotate(-90)" font-size="11" '
                 f'text-anchor="middle" fill="{INK}">share of hours used</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    label: str
    used: float
    requested: float
    is_you: bool = False


def usage_bars_svg(bars: Sequence[Bar], limit: int = 40, width: int = 640) -> str:
    """Hours used (filled) and requested (outline) per member, most used first; the rest summed up."""
    shown = list(bars[:limit])
    rest = bars[limit:]
    if rest:
        shown.append(Bar(f"{len(rest)} others (average)", sum(b.used for b in rest) / len(rest),
                         sum(b.requested for b in rest) / len(rest)))
    you = [b for b in bars[limit:] if b.is_you]
    if you:
        shown.append(you[0])
    row, label_w, top = 16, 150, 22
    height = top + row * max(1, len(shown)) + 28
    top_h = max([b.used for b in shown] + [b.requested for b in shown] + [1.0])
    plot = width - label_w - 60
    title = "Hours used and requested per member"
    if shown:
        desc = (f"{len(bars)} members, most use first. Filled bars are hours used, outlines hours requested. "
                f"Most: {shown[0].label}, {_n(shown[0].used)} h used of {_n(shown[0].requested)} h requested.")
    else:
        desc = "No member used or requested machine time in the period."
    head, _ = _open(width, height, title, desc, "usage")
    parts = [head]
    step = _nice_step(top_h)
    t = 0.0
    while t <= top_h + 1e-9:
        x = label_w + t / top_h * plot
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 24}" stroke="{GRID}"/>'
                     f'<text x="{x:.1f}" y="{height - 10}" font-size="10" text-anchor="middle" fill="{MUTED}">'
                     f'{_n(t)} h</text>')
        t += step
    parts.append(f'<text x="{label_w}" y="12" font-size="10" fill="{MUTED}">■ used  □ requested</text>')
    for i, b in enumerate(shown):
        y = top + i * row
        colour = YOU if b.is_you else ACCENT
        name = b.label + (" (you)" if b.is_you else "")
        weight = ' font-weight="700"' if b.is_you else ""
        parts.append(f'<g><title>{_e(name)}: {_n(b.used)} h used, {_n(b.requested)} h requested</title>'
                     f'<text x="{label_w - 6}" y="{y + 11}" font-size="11" text-anchor="end" fill="{INK}"{weight}>'
                     f'{_e(_clip(name, 24))}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{b.used / top_h * plot:.1f}" height="{row - 5}" '
                     f'fill="{colour}"/>'
                     f'<rect x="{label_w}" y="{y + 1}" width="{b.requested / top_h * plot:.1f}" height="{row - 3}" '
                     f'fill="none" stroke="{INK}" stroke-width="1"/></g>')
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _nice_step(top: float) -> float:
    for s in (0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if top / s <= 6:
            return float(s)
    return top / 5


def _heat_colour(ratio: float | None, demand: float) -> str:
    if ratio is None:
        return "#eceef1" if demand <= 0 else "#7a1f1f"  # closed; wanted while closed
    r = min(ratio, 1.5) / 1.5
    # white -> amber -> deep red
    stops = ((255, 255, 255), (253, 186, 116), (153, 27, 27))
    if r < 0.5:
        a, b, f = stops[0], stops[1], r / 0.5
    else:
        a, b, f = stops[1], stops[2], (r - 0.5) / 0.5
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def heatmap_svg(heat: HeatView, width: int = 640) -> str:
    """Requested hours / open machine-hours per weekday and hour (lab time); a dot marks unmet demand."""
    left, top = 40, 26
    cell_w = (width - left - 8) / 24
    cell_h = 22
    height = top + 7 * cell_h + 34
    busiest = max(((d, h, r) for d, h, _, _, _, r in heat.cells() if r is not None), key=lambda c: c[2],
                  default=None)
    unmet_total = sum(sum(row) for row in heat.unmet)
    title = "Demand against capacity by hour of the week"
    desc = ("Each cell is one hour of the week; its colour is requested hours divided by open machine-hours "
            "(white: little demand, red: more asked than available). Grey cells are closed; a dot marks unmet "
            f"requests. {_n(unmet_total)} unmet hours in total.")
    if busiest:
        desc += f" Busiest: {WEEKDAY_NAMES[busiest[0]]} {busiest[1]:02d}:00 at {busiest[2]:.0%} of capacity."
    head, _ = _open(width, height, title, desc, "heat")
    parts = [head]
    for h in range(0, 24, 2):
        parts.append(f'<text x="{left + (h + 0.5) * cell_w:.1f}" y="{top - 8}" font-size="10" text-anchor="middle" '
                     f'fill="{MUTED}">{h:02d}</text>')
    for d in range(7):
        y = top + d * cell_h
        parts.append(f'<text x="{left - 6}" y="{y + cell_h / 2 + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{INK}">{WEEKDAY_NAMES[d][:3]}</text>')
        for h in range(24):
            dem, capa, unmet = heat.demand[d][h], heat.capacity[d][h], heat.unmet[d][h]
            ratio = heat.ratio(d, h)
            x = left + h * cell_w
            tip = (f"{WEEKDAY_NAMES[d]} {h:02d}:00: {_n(dem)} h requested, {_n(capa)} machine-hours open"
                   + (f", {ratio:.0%}" if ratio is not None else ", closed")
                   + (f", {_n(unmet)} h unmet" if unmet else ""))
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                         f'fill="{_heat_colour(ratio, dem)}" stroke="{GRID}" stroke-width="0.5">'
                         f'<title>{_e(tip)}</title></rect>')
            if unmet > 0:
                parts.append(f'<circle cx="{x + cell_w / 2:.1f}" cy="{y + cell_h / 2:.1f}" r="3" fill="{INK}"/>')
    ly = top + 7 * cell_h + 14
    for i, (ratio, text) in enumerate(((0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %"), (1.5, "150 %+"))):
        x = left + i * 90
        parts.append(f'<rect x="{x}" y="{ly}" width="14" height="12" fill="{_heat_colour(ratio, 1)}" stroke="{GRID}"/>'
                     f'<text x="{x + 18}" y="{ly + 10}" font-size="10" fill="{MUTED}">{text}</text>')
    parts.append(f'<circle cx="{left + 372}" cy="{ly + 6}" r="3" fill="{INK}"/><text x="{left + 380}" y="{ly + 10}" '
                 f'font-size="10" fill="{MUTED}">unmet requests</text>')
    parts.append("</svg>")
    return "".join(parts)


SERIES = (("used", "hours used", ACCENT, ""), ("requested", "hours requested", INK, "5 3"),
          ("unmet", "unmet hours", YOU, "2 2"))


def trend_svg(weeks: Sequence[tuple[str, dict[str, float]]], width: int = 640, height: int = 240) -> str:
    """Weekly lines: hours used, requested and unmet."""
    left, right, top, bottom = 48, 30, 24, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    top_v = max([vals.get(k, 0.0) for _, vals in weeks for k, *_ in SERIES] + [1.0])
    step = _nice_step(top_v)
    top_v = step * (int(top_v / step) + 1)
    title = "Weekly trend of hours used, requested and unmet"
    partial = [label for label, vals in weeks if vals.get("days", 7) < 7]
    if weeks:
        first, last = weeks[0], weeks[-1]
        desc = (f"{len(weeks)} weeks from {first[0]} to {last[0]}. Hours used went from {_n(first[1]['used'])} to "
                f"{_n(last[1]['used'])}; unmet hours from {_n(first[1]['unmet'])} to {_n(last[1]['unmet'])}.")
    else:
        desc = "No weeks in the period."
    if partial:
        desc += (f" Weeks only partly in the period (shaded, hollow points: fewer days, so fewer hours): "
                 f"{', '.join(partial)}.")
    head, _ = _open(width, height, title, desc, "weeks")
    parts = [head]
    v = 0.0
    while v <= top_v + 1e-9:
        y = top + plot_h - v / top_v * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end" fill="{MUTED}">'
                     f'{_n(v)} h</text>')
        v += step
    n = len(weeks)

    def x_of(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    half = plot_w / (2 * max(1, n - 1))
    for i, (label, vals) in enumerate(weeks):
        if label in partial:  # a short week is shaded, so its lower figures read as "fewer days", not a drop
            x0, x1 = max(left, x_of(i) - half), min(width - right, x_of(i) + half)
            parts.append(f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{plot_h}" fill="{GRID}" '
                         f'opacity=".6"><title>{_e(label)}: only {_n(vals.get("days", 7))} of 7 days in the period'
                         f'</title></rect>')
    every = max(1, n // 8)
    for i, (label, _) in enumerate(weeks):
        if i % every == 0 or i == n - 1:
            parts.append(f'<text x="{x_of(i):.1f}" y="{height - bottom + 16}" font-size="10" text-anchor="middle" '
                         f'fill="{MUTED}">{_e(label)}</text>')
    for key, name, colour, dash in SERIES:
        pts = [(x_of(i), top + plot_h - vals.get(key, 0.0) / top_v * plot_h) for i, (_, vals) in enumerate(weeks)]
        if not pts:
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"{dash_attr}><title>{_e(name)}</title></polyline>')
        for (x, y), (label, vals) in zip(pts, weeks, strict=True):
            fill = "#fff" if label in partial else colour
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{fill}" stroke="{colour}">'
                         f'<title>{_e(label)}: {_n(vals.get(key, 0.0))} {_e(name)}</title></circle>')
    for i, (_, name, colour, dash) in enumerate(SERIES):
        x = left + i * 150
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" y1="10" x2="{x + 20}" y2="10" stroke="{colour}" stroke-width="2"{dash_attr}/>'
                     f'<text x="{x + 25}" y="14" font-size="10" fill="{INK}">{_e(name)}</text>')
    if partial:
        x = left + len(SERIES) * 150 - 20
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{GRID}"/>'
                     f'<circle cx="{x + 6}" cy="10" r="2.5" fill="#fff" stroke="{INK}"/>'
                     f'<text x="{x + 16}" y="14" font-size="10" fill="{INK}">part week</text>')
    parts.append("</svg>")
    return "".join(parts)


def review_charts(review: Review) -> dict[str, str]:
    """All charts of a review: lorenz, usage, heat, weeks."""
    bars = [Bar(m.label, m.used_hours, m.requested_hours, m.is_you) for m in review.members
            if m.used_hours > 0 or m.requested_hours > 0]
    weeks = [(w.week_start.strftime("%d %b"), {"used": w.used_hours, "requested": w.requested_hours,
                                               "unmet": w.unmet_hours, "days": w.days}) for w in review.weeks]
    return {"lorenz": lorenz_svg(review.lorenz, review.gini), "usage": usage_bars_svg(bars),
            "heat": heatmap_svg(review.heat), "weeks": trend_svg(weeks)}
