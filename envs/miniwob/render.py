"""The text observation of a MiniWoB++ page: the instruction, then one line per DOM
element (ref, tag, id/classes, text, value, position), indented by depth."""

from __future__ import annotations

import json

MAX_TEXT = 80
HEADER = "Elements ([ref] tag #id .class \"text\" value=... @ x,y w×h, page pixels):"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 1] + "…"
    return json.dumps(text, ensure_ascii=False)


def element_line(el, depth: int) -> str:
    parts = [f"[{el.ref}]", el.tag]
    if el.id:
        parts.append(f"#{el.id}")
    if el.classes and el.classes != "TEXT_CLASS":
        parts.append("." + ".".join(el.classes.split()))
    if el.text:
        parts.append(_quote(el.text))
    if el.value is not None and el.value is not False and el.tag != "button":
        parts.append("value=" + ("checked" if el.value is True else _quote(str(el.value))))
    parts.append(f"@ {round(el.left)},{round(el.top)} {round(el.width)}×{round(el.height)}")
    if el.focused:
        parts.append("(focused)")
    return "  " * depth + " ".join(parts)


def visible_elements(root) -> list[tuple[object, int]]:
    """(element, depth) for each element under the page body that has an area."""
    out = []

    def walk(el, depth):
        for child in el.children:
            if child.width > 0 and child.height > 0:
                out.append((child, depth))
            walk(child, depth + 1)

    walk(root, 0)
    return out


def render(utterance: str, root) -> str:
    lines = [f"Instruction: {utterance.strip()}", HEADER]
    lines += [element_line(el, depth) for el, depth in visible_elements(root)]
    return "\n".join(lines)


def clickable_refs(root) -> list[int]:
    """Refs of the visible leaf elements: what ``admissible_actions`` offers to click."""
    return [el.ref for el, _ in visible_elements(root) if el.is_leaf and el.ref > 0]
