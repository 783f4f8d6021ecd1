"""Small inline SVG line charts for the run overview (no plotting library, no JS)."""

from __future__ import annotations

import math
from html import escape

# The curves the overview shows when the run logged them; credit/ keys about step groups
# (GiGPO anchor groups, SALT nodes, ...) are added, whatever the method names them.
CURVE_KEYS = ("rollout/success_rate", "eval/success_rate", "rollout/reward_mean",
              "rollout/episode_length", "actor/entropy", "loss/kl", "actor/approx_kl",
              "loss/policy", "rollout/invalid_action_rate", "perf/tokens_per_s")
GROUP_WORDS = ("group", "size", "singleton", "node")


def curve_keys(records: list[dict]) -> list[str]:
    logged = {k for r in records for k, v in r.items() if _number(v)}
    groups = sorted(k for k in logged
                    if k.startswith("credit/") and any(w in k for w in GROUP_WORDS))
    return [k for k in CURVE_KEYS if k in logged] + groups


def line_chart(title: str, points: list[tuple[float, float]], *, width: int = 300,
               height: int = 170) -> str:
    """An SVG chart of (x, y) points with its title, axis extremes and a tooltip per point."""
    pad_l, pad_r, pad_t, pad_b = 44, 10, 22, 26
    points = [(x, y) for x, y in points if _number(x) and _number(y)]
    svg = [f'<svg class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{width / 2}" y="14" text-anchor="middle" class="chart-title">'
           f'{escape(title)}</text>']
    if not points:
        svg.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return "".join(svg) + "</svg>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if y0 == y1:
        y0, y1 = y0 - (abs(y0) or 1) * 0.5, y1 + (abs(y1) or 1) * 0.5
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return pad_t + (1 - (y - y0) / (y1 - y0)) * plot_h

    svg.append(f'<rect x="{pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}" class="plot"/>')
    for value, y in ((y1, pad_t), (y0, pad_t + plot_h)):
        svg.append(f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(value)}</text>')
    for value, anchor in ((x0, "start"), (x1, "end")):
        svg.append(f'<text x="{sx(value):.1f}" y="{height - 8}" text-anchor="{anchor}">'
                   f'{_fmt(value)}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}"
                    for i, (x, y) in enumerate(points))
    svg.append(f'<path d="{path}" class="line"/>')
    if len(points) <= 60:
        for x, y in points:
            svg.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5">'
                       f'<title>iteration {_fmt(x)}: {_fmt(y)}</title></circle>')
    return "".join(svg) + "</svg>"


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"
