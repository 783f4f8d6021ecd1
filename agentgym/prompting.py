"""Prompts the agent sees, and the parser that reads an action out of its reply.

A ``PromptTemplate`` turns (task, recent history, current observation, admissible
actions) into chat messages; the policy renders them with the model's chat template.
Environments get their own wording with ``register_template(env_id, template)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACTION_RE = re.compile(r"<action>(.*?)</action>", re.DOTALL | re.IGNORECASE)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
MAX_ACTIONS_SHOWN = 50


@dataclass(frozen=True)
class PromptTemplate:
    system: str = ("You are an agent in a text environment. Read the observation, "
                   "choose one action, and reply in the requested format.")
    task: str = "Your task: {task}"
    history_header: str = "Your last {n} steps (of {total}):"
    history_step: str = "Step {index} observation: {observation}\nStep {index} action: {action}"
    observation: str = "Step {index} observation (now): {observation}"
    admissible: str = "Admissible actions: {actions}"
    instruction_think: str = ("First reason briefly inside <think> </think>, then give "
                              "exactly one action inside <action> </action>.")
    instruction_plain: str = "Reply with exactly one action inside <action> </action>."
    # the whole reply is the action (the environment parses its own tags, e.g. tool use
    # with <python>/<search>/<answer>): no <action> parsing and no "<action>" prefill
    raw_action: bool = False
    # where generation should stop (the end of one action)
    stop: tuple[str, ...] = ("</action>",)


TEMPLATES: dict[str, PromptTemplate] = {}


def register_template(env_id: str, template: PromptTemplate) -> None:
    """Use ``template`` for ``env_id`` (an exact id, or a prefix ending in '/')."""
    TEMPLATES[env_id] = template


def template_for(env_id: str) -> PromptTemplate:
    if env_id in TEMPLATES:
        return TEMPLATES[env_id]
    for key, template in TEMPLATES.items():
        if key.endswith("/") and env_id.startswith(key):
            return template
    return PromptTemplate()


@dataclass
class Turn:
    observation: str
    action: str


def _current_step(template: PromptTemplate, index: int, observation: str,
                  admissible: list[str] | None, think: bool) -> list[str]:
    parts = [template.observation.format(index=index, observation=observation.strip())]
    if admissible:
        listed = admissible[:MAX_ACTIONS_SHOWN]
        more = f" (and {len(admissible) - len(listed)} more)" if len(admissible) > len(listed) else ""
        parts.append(template.admissible.format(actions=", ".join(listed) + more))
    parts.append(template.instruction_think if think else template.instruction_plain)
    return parts


def build_messages(template: PromptTemplate, task: str, history: list[Turn], observation: str,
                   admissible: list[str] | None, history_length: int,
                   think: bool = True) -> list[dict]:
    """The chat messages for one step: the last ``history_length`` turns are shown."""
    parts = [template.task.format(task=task.strip())]
    shown = history[-history_length:] if history_length > 0 else []
    first = len(history) - len(shown)
    if shown:
        parts.append(template.history_header.format(n=len(shown), total=len(history)))
        parts.extend(template.history_step.format(index=first + i + 1,
                                                  observation=turn.observation.strip(),
                                                  action=turn.action)
                     for i, turn in enumerate(shown))
    parts += _current_step(template, len(history) + 1, observation, admissible, think)
    return [{"role": "system", "content": template.system},
            {"role": "user", "content": "\n\n".join(parts)}]


def next_turn_message(template: PromptTemplate, index: int, observation: str,
                      admissible: list[str] | None, think: bool = True) -> dict:
    """The user turn that continues a conversation after the agent's last reply."""
    return {"role": "user",
            "content": "\n\n".join(_current_step(template, index, observation, admissible, think))}


@dataclass
class Parsed:
    action: str | None      # None when the reply holds no action
    think: str | None
    problem: str | None     # why no action could be read


_ARTICLES = frozenset({"a", "an", "the"})
_WORD_RE = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def _words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text.lower()) if w not in _ARTICLES]


def match_admissible(text: str, admissible: list[str]) -> str | None:
    """The admissible action a reply names, or None.

    A small model rarely writes an action exactly as listed: it adds articles
    ("take the knife"), keeps writing after it, or never closes the tag. The action is
    the one whose words (articles ignored) appear contiguously in the reply, earliest
    first and, at one position, the longest.
    """
    words = _words(text)
    best: tuple[int, int, str] | None = None
    for action in admissible:
        target = _words(action)
        if not target:
            continue
        for start in range(len(words) - len(target) + 1):
            if words[start:start + len(target)] == target:
                key = (start, -len(target), action)
                if best is None or key < best:
                    best = key
                break
    return best[2] if best else None


def parse_action(text: str, raw: bool = False,
                 admissible: list[str] | None = None) -> Parsed:
    """Read ``<action>...</action>`` (the last one) and an optional ``<think>`` block.

    With ``raw`` the whole reply (stripped, whitespace kept) is the action. With
    ``admissible``, a reply that is not exactly one of them (or has no closed tag) is
    read as the admissible action it names (``match_admissible``), when it names one.
    """
    think_match = THINK_RE.search(text)
    think = think_match.group(1).strip() if think_match else None
    if raw:
        return Parsed(text.strip() or None, think, None if text.strip() else "empty reply")
    actions = ACTION_RE.findall(text)
    if admissible:
        named = _named_action(text, actions, admissible)
        if named is not None:
            return Parsed(named, think, None)
    if not actions:
        problem = "reply has no <action>...</action>" if "<action>" not in text.lower() \
            else "reply has an unclosed <action> tag"
        return Parsed(None, think, problem)
    action = " ".join(actions[-1].split())
    if not action:
        return Parsed(None, think, "empty <action></action>")
    return Parsed(action, think, None)


def _named_action(text: str, actions: list[str], admissible: list[str]) -> str | None:
    if actions:
        written = " ".join(actions[-1].split())
        exact = {" ".join(a.lower().split()): a for a in admissible}
        return exact.get(written.lower()) or match_admissible(written, admissible)
    opened = text.lower().rfind("<action>")
    return match_admissible(text[opened + len("<action>"):], admissible) if opened >= 0 else None
