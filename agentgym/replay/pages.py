"""Server-rendered HTML of the viewer's pages (plain functions from data to strings).

Every value that came from the store, the config or the environment goes through
``esc`` (or ``_attr``): observations and model outputs are untrusted text.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any
from urllib.parse import urlencode

from agentgym.episode import TERMINATIONS, Episode, Step
from agentgym.replay.charts import curve_keys, line_chart
from agentgym.store import EpisodeSummary, StepSummary


def esc(value: Any) -> str:
    return escape("" if value is None else str(value))


def url(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return escape(path + ("?" + query if query else ""))


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def layout(title: str, body: str, run_name: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · {esc(run_name)}</title>
<link rel="stylesheet" href="/static/viewer.css"></head>
<body><nav><b>agentgym replay</b> <span class="run">{esc(run_name)}</span>
<a href="/">overview</a> <a href="/episodes">episodes</a></nav>
<main>{body}</main><script src="/static/viewer.js"></script></body></html>"""


def error_page(status: int, message: str, run_name: str) -> str:
    return layout(f"{status}", f'<h1>{status}</h1><p class="error">{esc(message)}</p>', run_name)


# ---- overview ------------------------------------------------------------------------

def overview(run_name: str, config_text: str, records: list[dict], by_type: list[dict],
             totals: list[dict]) -> str:
    charts = "".join(
        line_chart(key, [(r["iteration"], r[key]) for r in records if key in r])
        for key in curve_keys(records)) or "<p>no metrics.jsonl in this run yet</p>"
    split_rows = "".join(
        f"<tr><td><a href='{url('/episodes', split=t['split'])}'>{esc(t['split'])}</a></td>"
        f"<td>{t['episodes']}</td><td>{t['wins']}</td>"
        f"<td>{num(t['wins'] / t['episodes'])}</td><td>{num(t['reward_mean'])}</td>"
        f"<td>{num(t['length_mean'], 1)}</td></tr>" for t in totals)
    type_rows = "".join(
        f"<tr><td>{esc(t['split'])}</td><td><a href='"
        f"{url('/episodes', split=t['split'], task_type=t['task_type'] or '')}'>"
        f"{esc(t['task_type'] or '(none)')}</a></td><td>{t['episodes']}</td>"
        f"<td>{t['wins']}</td><td>{num(t['wins'] / t['episodes'])}</td>"
        f"<td>{num(t['reward_mean'])}</td></tr>" for t in by_type)
    head = "<tr><th>split</th><th>episodes</th><th>won</th><th>success</th><th>reward</th><th>length</th></tr>"
    return f"""<h1>Run {esc(run_name)}</h1>
<section><h2>Episodes</h2><table class="grid">{head}{split_rows}</table></section>
<section><h2>Learning curves</h2><div class="charts">{charts}</div></section>
<section><h2>Success by task type</h2><table class="grid" id="by-type">
<tr><th>split</th><th>task type</th><th>episodes</th><th>won</th><th>success</th><th>reward</th></tr>
{type_rows}</table></section>
<section><h2>Config</h2><details open><summary>config.yaml</summary>
<pre>{esc(config_text) or "(no config.yaml)"}</pre></details></section>"""


# ---- episode list --------------------------------------------------------------------

ORDERS = [("iteration,episode", "oldest first"), ("-reward,-iteration,episode", "highest reward"),
          ("reward,-iteration,episode", "lowest reward"), ("-length,-iteration,episode", "longest"),
          ("group,episode", "by group")]

def episode_list(rows: list[EpisodeSummary], total: int, raw: dict[str, str], page: int,
                 per_page: int, choices: dict[str, list[Any]], error: str | None = None) -> str:
    def select(name: str, options: list[tuple[str, str]], default: str = "any") -> str:
        current = raw.get(name, "")
        opts = "".join(f'<option value="{esc(v)}"{" selected" if v == current else ""}>'
                       f"{esc(label)}</option>" for v, label in [("", default), *options])
        return f'<label>{name.replace("_", " ")} <select name="{name}">{opts}</select></label>'

    def pairs(values: list[Any]) -> list[tuple[str, str]]:
        return [(str(v), str(v)) for v in values if v is not None]

    form = "".join([
        f'<label>iteration <input name="iteration" size="6" value="{esc(raw.get("iteration"))}"></label>',
        select("split", pairs(choices["split"])),
        select("outcome", [("won", "won"), ("lost", "lost")]),
        select("task_type", pairs(choices["task_type"])),
        select("termination", [(t, t) for t in TERMINATIONS]),
        select("error", [("yes", "with error"), ("no", "without error")]),
        select("env", pairs(choices["env_id"])),
        f'<label>group <input name="group" size="14" value="{esc(raw.get("group"))}"></label>',
        select("order", ORDERS, default="newest first"),
        '<button type="submit" id="apply">filter</button> <a href="/episodes">clear</a>'])
    pages = max(1, math.ceil(total / per_page))
    keep = {k: v for k, v in raw.items() if k != "page" and v}
    nav = [f"page {page} of {pages} · {total} episodes"]
    if page > 1:
        nav.insert(0, f'<a id="prev" href="{url("/episodes", **keep, page=page - 1)}">← prev</a>')
    if page < pages:
        nav.append(f'<a id="next" href="{url("/episodes", **keep, page=page + 1)}">next →</a>')
    body = "".join(
        f'<tr class="{"won" if s.won else "lost"}"><td><a class="episode-link" '
        f'href="{url("/episode", id=s.episode_id)}">{esc(s.episode_id)}</a></td>'
        f"<td>{s.iteration}</td><td>{esc(s.split)}</td>"
        f'<td><a href="{url("/episodes", group=s.group_id)}">{esc(s.group_id)}</a></td>'
        f"<td>{esc(s.task_id)}</td><td>{esc(s.task_type)}</td>"
        f'<td class="outcome">{"won" if s.won else "lost"}</td><td>{num(s.total_reward)}</td>'
        f"<td>{s.length}</td><td>{esc(s.termination)}</td>"
        f'<td class="err">{esc(_short(s.error, 80))}</td></tr>' for s in rows)
    head = ("<tr><th>episode</th><th>iter</th><th>split</th><th>group</th><th>task</th>"
            "<th>type</th><th>outcome</th><th>reward</th><th>len</th><th>termination</th>"
            "<th>error</th></tr>")
    problem = f'<p class="error">{esc(error)}</p>' if error else ""
    return f"""<h1>Episodes</h1><form method="get" action="/episodes" class="filters">{form}</form>
{problem}<p class="pager">{" · ".join(nav)}</p>
<table class="grid" id="episodes">{head}{body}</table>"""


# ---- one episode ---------------------------------------------------------------------

def episode_page(ep: Episode, pieces: list[list[str]], prompts: list[str],
                 anchor_groups: dict[int, list[StepSummary]], members: list[EpisodeSummary],
                 image_srcs: list[str | None]) -> str:
    others = [m for m in members if m.episode_id != ep.episode_id]
    compare = " ".join(
        f'<a class="compare-link" href="{url("/compare", a=ep.episode_id, b=m.episode_id)}">'
        f'{esc(m.episode_id)} ({"won" if m.won else "lost"}, {num(m.total_reward, 2)})</a>'
        for m in others) or "none"
    parts = sorted({k for s in ep.steps for k in s.advantage_parts})
    steps = "".join(_step_card(ep, s, pcs, prompt, anchor_groups.get(s.index, []), parts, img)
                    for s, pcs, prompt, img in zip(ep.steps, pieces, prompts, image_srcs))
    return f"""<h1>Episode {esc(ep.episode_id)}</h1>
{_episode_meta(ep)}
<p>same group: {compare} · <a class="tree-link" href="{url("/tree", group=ep.group_id, leaf=ep.episode_id)}">group as a tree</a></p>
<div class="toolbar">token colour: <select id="heat-mode">
<option value="logprob">logprob</option><option value="advantage">advantage</option>
<option value="entropy">entropy</option></select>
<span class="legend">logprob/entropy: darker = less likely / more uncertain;
advantage: green positive, red negative</span></div>
{_advantage_table(ep, parts)}
{steps or "<p>no steps</p>"}
<section class="final"><h3>Final observation</h3><pre>{esc(ep.final_observation)}</pre></section>"""


def _episode_meta(ep: Episode) -> str:
    rows = [("run", esc(ep.run_id)), ("iteration", ep.iteration), ("split", esc(ep.split)),
            ("group", f'<a href="{url("/episodes", group=ep.group_id)}">{esc(ep.group_id)}</a>'),
            ("environment", esc(ep.env_id)), ("task", esc(ep.task_id)),
            ("task type", esc(ep.task_type)), ("seed", ep.seed),
            ("outcome", f'<b class="{"won" if ep.won else "lost"}">{"won" if ep.won else "lost"}</b>'),
            ("total reward", num(ep.total_reward)), ("length", ep.length),
            ("termination", esc(ep.termination)), ("error", esc(ep.error) or "–")]
    if ep.info:
        rows.append(("info", f"<code>{esc(json.dumps(ep.info, ensure_ascii=False))}</code>"))
    return '<table class="meta">' + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _advantage_table(ep: Episode, parts: list[str]) -> str:
    if not ep.steps:
        return ""
    head = "".join(f"<th>{esc(p)} part</th>" for p in parts)
    rows = "".join(
        f'<tr><td><a href="#step-{s.index}">{s.index}</a></td><td>{esc(_short(s.action, 50))}</td>'
        f"<td>{num(s.action_valid)}</td><td>{num(s.reward)}</td><td>{num(s.advantage)}</td>"
        + "".join(f"<td>{num(s.advantage_parts.get(p))}</td>" for p in parts)
        + f"<td>{num(s.entropy_mean)}</td></tr>" for s in ep.steps)
    return (f'<table class="grid" id="advantages"><tr><th>step</th><th>action</th><th>valid</th>'
            f"<th>reward</th><th>advantage</th>{head}<th>entropy</th></tr>{rows}</table>")


def _step_card(ep: Episode, s: Step, pieces: list[str], prompt: str,
               group: list[StepSummary], parts: list[str], image: str | None) -> str:
    same = [g for g in group if not (g.episode_id == ep.episode_id and g.index == s.index)]
    episodes = len({g.episode_id for g in group})
    anchor_link = (f'<a class="anchor-link" href="{url("/anchor", episode=ep.episode_id, step=s.index)}">'
                   f"anchor group: {len(group)} steps from {episodes} episodes</a>")
    part_text = ", ".join(f"{esc(p)} {num(s.advantage_parts[p])}" for p in parts
                          if p in s.advantage_parts)
    timings = ", ".join(f"{esc(k)} {num(v, 3)} s" if isinstance(v, (int, float)) else
                        f"{esc(k)} {esc(v)}" for k, v in s.timings.items())
    prefill = s.info.get("prefill", "") if isinstance(s.info, dict) else ""
    badge = ('<span class="valid">valid</span>' if s.action_valid
             else '<span class="invalid">invalid</span>')
    extra = {k: v for k, v in s.info.items() if k != "image"} if isinstance(s.info, dict) else {}
    # in the order it happened: what the agent saw, what it wrote, what that did
    return f"""<section class="step" id="step-{s.index}" data-adv="{_attr(s.advantage)}">
<h3>Step {s.index}</h3>
<h4>Observation</h4><pre class="obs">{esc(s.observation)}</pre>
<details class="prompt"><summary>prompt ({len(s.prompt_ids)} tokens)</summary><pre>{esc(prompt)}</pre></details>
<h4>Model output <small>({len(s.response_ids)} tokens)</small></h4>
{heatmap(pieces, s, prefill)}
<p class="action">action: <code>{esc(s.action) if s.action is not None else "(none parsed)"}</code></p>
<p class="result">result: {badge} · reward {num(s.reward)} · advantage {num(s.advantage)}
{("(" + part_text + ")") if part_text else ""}</p>
{f'<p class="error">{esc(s.error)}</p>' if s.error else ""}
<p class="anchor">{anchor_link}{f" ({len(same)} others)" if same else ""} · anchor
<code>{esc(s.anchor)}</code> · {timings or "no timings"}</p>
{f'<img class="screenshot" alt="screenshot of step {s.index}" src="{escape(image)}">' if image else ""}
{f'<details><summary>step info</summary><pre>{esc(json.dumps(extra, ensure_ascii=False, indent=1))}</pre></details>' if extra else ""}
</section>"""


def heatmap(pieces: list[str], s: Step, prefill: str = "") -> str:
    """The response, one span per token, coloured by logprob (JS switches the colouring)."""
    spans = []
    for k, piece in enumerate(pieces):
        lp = s.logprobs[k] if k < len(s.logprobs) else None
        ent = s.entropies[k] if k < len(s.entropies) else None
        title = f"token {k}: id {s.response_ids[k]}, logprob {num(lp)}, entropy {num(ent)}"
        spans.append(f'<span class="tok" data-lp="{_attr(lp)}" data-ent="{_attr(ent)}" '
                     f'style="background:{_logprob_colour(lp)}" title="{esc(title)}">'
                     f"{esc(piece)}</span>")
    pre = f'<span class="prefill" title="pre-filled, not sampled">{esc(prefill)}</span>' if prefill else ""
    return f'<pre class="heatmap" data-adv="{_attr(s.advantage)}">{pre}{"".join(spans)}</pre>'


def _logprob_colour(lp: float | None) -> str:
    if lp is None:
        return "transparent"
    alpha = min(1.0, max(0.0, 1.0 - math.exp(lp)))
    return f"rgba(220,60,40,{alpha * 0.75:.3f})"


# ---- anchor group and comparison -----------------------------------------------------

def anchor_page(ep: Episode, step: Step, group: list[StepSummary]) -> str:
    parts = sorted({k for g in group for k in g.advantage_parts})
    head = "".join(f"<th>{esc(p)} part</th>" for p in parts)
    rows = "".join(
        f'<tr class="{"current" if (g.episode_id, g.index) == (ep.episode_id, step.index) else ""}">'
        f'<td><a class="member-link" href="{url("/episode", id=g.episode_id)}#step-{g.index}">'
        f"{esc(g.episode_id)}</a></td><td>{g.index}</td>"
        f"<td><code>{esc(g.action) if g.action is not None else '(none)'}</code></td>"
        f"<td>{num(g.action_valid)}</td><td>{num(g.reward)}</td><td>{num(g.advantage)}</td>"
        + "".join(f"<td>{num(g.advantage_parts.get(p))}</td>" for p in parts)
        + f'<td>{"won" if g.episode_won else "lost"}</td></tr>' for g in group)
    by_action: dict[str, list[StepSummary]] = {}
    for g in group:
        by_action.setdefault(g.action or "(none)", []).append(g)
    summary = "".join(
        f"<tr><td><code>{esc(a)}</code></td><td>{len(ms)}</td>"
        f"<td>{num(_mean([m.advantage for m in ms]))}</td>"
        f"<td>{num(_mean([m.reward for m in ms]))}</td></tr>" for a, ms in by_action.items())
    return f"""<h1>Anchor group</h1>
<p>Steps of group <a href="{url("/episodes", group=ep.group_id)}">{esc(ep.group_id)}</a> that started
from the state of <a href="{url("/episode", id=ep.episode_id)}#step-{step.index}">{esc(ep.episode_id)}
step {step.index}</a>: the steps a step-level method such as GiGPO compares.</p>
<p>anchor <code>{esc(step.anchor)}</code></p>
<h2>By action</h2><table class="grid" id="by-action"><tr><th>action</th><th>steps</th>
<th>mean advantage</th><th>mean reward</th></tr>{summary}</table>
<h2>Steps ({len(group)})</h2><table class="grid" id="members"><tr><th>episode</th><th>step</th>
<th>action</th><th>valid</th><th>reward</th><th>advantage</th>{head}<th>episode outcome</th></tr>
{rows}</table>"""


def compare_page(a: Episode, b: Episode, start: int = 0) -> str:
    """Two episodes side by side; ``start``: from that step on (siblings of a tree share
    the steps before their fork)."""
    def column(ep: Episode) -> str:
        steps = "".join(
            f'<div class="cmp-step"><b>step {s.index}</b> · reward {num(s.reward)} · '
            f"advantage {num(s.advantage)}<pre class=\"obs\">{esc(s.observation)}</pre>"
            f'<p>action <code>{esc(s.action) if s.action is not None else "(none parsed)"}</code> '
            f'{"valid" if s.action_valid else "<span class=invalid>invalid</span>"}</p></div>'
            for s in ep.steps[start:])
        return (f'<div class="cmp-col"><h2><a href="{url("/episode", id=ep.episode_id)}">'
                f"{esc(ep.episode_id)}</a></h2><p>{'won' if ep.won else 'lost'} · reward "
                f"{num(ep.total_reward)} · {ep.length} steps · {esc(ep.termination)}</p>{steps}"
                f'<div class="cmp-step"><b>final</b><pre class="obs">{esc(ep.final_observation)}'
                f"</pre></div></div>")

    note = "" if a.group_id == b.group_id else (
        '<p class="error">these episodes are from different groups (different tasks)</p>')
    if start:
        note += f"<p>from step {start}: the steps before it are shared</p>"
    return f'<h1>Side by side</h1>{note}<div class="compare">{column(a)}{column(b)}</div>'


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _attr(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _short(text: str | None, n: int) -> str:
    if not text:
        return ""
    return text if len(text) <= n else text[: n - 1] + "…"
