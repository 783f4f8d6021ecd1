"""A scripted agent for a few simple MiniWoB++ tasks that reads only the text
observation and answers in the text action syntax (the same interface as an LLM)."""

from __future__ import annotations

import re

from agentgym.envs.miniwob.actions import Action

SOLVED_TASKS = ("click-test", "click-button", "enter-text")

_LINE = re.compile(r'^\s*\[(\d+)\] (\S+)(?: #(\S+))?(?: \.(\S+))?(?: ("(?:[^"\\]|\\.)*"))?')


def elements(observation: str) -> list[dict]:
    """ref, tag, id, text of each element line of an observation."""
    out = []
    for line in observation.splitlines():
        m = _LINE.match(line)
        if m:
            text = m.group(5)
            out.append({"ref": int(m.group(1)), "tag": m.group(2), "id": m.group(3) or "",
                        "text": text[1:-1].replace('\\"', '"') if text else ""})
    return out


def instruction(observation: str) -> str:
    first = observation.splitlines()[0] if observation else ""
    return first.removeprefix("Instruction:").strip()


def plan(task: str, observation: str) -> list[str] | None:
    """The actions that solve ``task`` from this first observation (None: not handled)."""
    els, goal = elements(observation), instruction(observation)
    buttons = [e for e in els if e["tag"] == "button"]
    if task == "click-test":
        return [str(Action("click", (buttons[0]["ref"],)))] if buttons else None
    if task == "click-button":
        m = re.search(r'Click on the "(.*)" button', goal)
        hits = [b for b in buttons if m and b["text"] == m.group(1)]
        return [str(Action("click", (hits[0]["ref"],)))] if hits else None
    if task == "enter-text":
        m = re.search(r'Enter "(.*)" into the text field', goal)
        fields = [e for e in els if e["tag"].startswith("input")]
        submit = [b for b in buttons if b["text"].lower() == "submit"]
        if m and fields and submit:
            return [str(Action("type", (fields[0]["ref"], m.group(1)))),
                    str(Action("click", (submit[0]["ref"],)))]
    return None
