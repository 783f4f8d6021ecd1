"""The shop's pages as HTML, rendered from the same segments as the text observation.

Every clickable element is a submit button whose value is the agent action it stands
for (``click[...]``), so clicking in a browser sends exactly what an agent would send.
The page also shows the agent's text observation under "What the agent sees".
"""

from __future__ import annotations

from html import escape

from agentgym.envs.webshop.shop import Segment, Shop

_STYLE = """
body{font-family:sans-serif;max-width:60rem;margin:1rem auto;color:#222}
.instruction{background:#f3f6fa;padding:.6rem 1rem;border-radius:6px}
button{margin:.15rem;padding:.3rem .8rem;cursor:pointer}
button.product{background:none;border:none;color:#0645ad;text-decoration:underline;font-weight:bold}
button.option{border:1px solid #888;background:#fff;border-radius:4px}
button.option.selected{background:#2b6cb0;color:#fff}
.result{border-top:1px solid #ddd;padding:.4rem 0}
pre.observation{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:.5rem;font-size:.85rem}
.score{font-size:2rem;font-weight:bold}
"""


def _button(seg: Segment, css: str = "") -> str:
    action = escape(f"click[{seg.text}]", quote=True)
    cls = f' class="{css}"' if css else ""
    return f'<button type="submit" name="action" value="{action}"{cls}>{escape(seg.text)}</button>'


def render_page(shop: Shop, session_url: str) -> str:
    """A complete HTML document for the shop's current page."""
    segs = shop.segments()
    body: list[str] = []
    i = 0
    while i < len(segs):
        seg = segs[i]
        if seg.kind == "text" and seg.text == "Instruction:" and i + 1 < len(segs):
            body.append(f'<div class="instruction" id="instruction-text"><h4>Instruction:<br>'
                        f'{escape(segs[i + 1].text)}</h4></div>')
            i += 2
            continue
        if seg.kind == "search":
            body.append(f'<form method="post" action="{session_url}">'
                        f'<input id="search_input" name="search_query" placeholder="Search..." '
                        f'required autofocus> <button type="submit" id="search_button">'
                        f'{escape(seg.text)}</button></form>')
        elif seg.kind == "button":
            body.append(_button(seg, "nav"))
        elif seg.kind == "product":
            title = segs[i + 1].text if i + 1 < len(segs) else ""
            price = segs[i + 2].text if i + 2 < len(segs) else ""
            body.append(f'<div class="result">{_button(seg, "product")}<div class="title">'
                        f'{escape(title)}</div><div class="price">{escape(price)}</div></div>')
            i += 3
            continue
        elif seg.kind == "option":
            css = "option selected" if seg.selected else "option"
            body.append(_button(seg, css))
        elif shop.page == "done" and seg.text[:1].isdigit():
            body.append(f'<div class="score" id="score">{escape(seg.text)}</div>')
        else:
            body.append(f"<p>{escape(seg.text)}</p>")
        i += 1
    page = (f'<form method="post" action="{session_url}">' + "\n".join(body) + "</form>"
            if shop.page != "search" else "\n".join(body))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>WebShop</title><style>{_STYLE}</style></head>
<body data-page="{shop.page}">
<h2>WebShop</h2>
{page}
<hr><h4>What the agent sees</h4>
<pre class="observation" id="observation">{escape(shop.observation())}</pre>
<p><a href="/">all goals</a></p>
</body></html>"""


def render_index(goals: list[tuple[int, str]], split: str) -> str:
    items = "\n".join(f'<li><a href="/start?goal={i}">goal {i}</a>: {escape(text)}</li>'
                      for i, text in goals)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>WebShop</title><style>{_STYLE}</style></head>
<body><h2>WebShop ({escape(split)} goals)</h2>
<form method="get" action="/start">Goal number <input name="goal" value="0" size="6">
<button type="submit">Start</button></form>
<ol start="0">{items}</ol></body></html>"""
