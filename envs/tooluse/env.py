"""``agentgym/ToolUse-v0``: answer questions with a Python interpreter and a search tool.

The action is the agent's whole reply. The environment reads the first complete tool
block in it (``<think>...</think>`` is ignored):

- ``<python>code</python>`` runs the code in the episode's sandboxed interpreter
  (state persists across calls; see ``sandbox.py``); the output is the observation;
- ``<search>query</search>`` returns the top-k BM25 passages of the knowledge corpus;
- ``<answer>text</answer>`` ends the episode; the task's verifier scores the answer.

Tag names are configurable (``tags={"python": "code"}``). Tool calls are limited to
``max_tool_calls`` per episode: after the last one the agent may still answer; another
tool call ends the episode (truncated). A reply with no complete block is an invalid
step and changes nothing. Reward: the verifier's score on the answer (1.0 = correct),
0 otherwise. ``info["tool_calls"]`` counts executed calls, ``tool_calls_<tool>`` by tool.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import gymnasium

from agentgym.envs.tooluse.sandbox import Sandbox, SandboxLimits, isolation_mode
from agentgym.envs.tooluse.tasks import (DEFAULT_DATASETS, SPLIT_SEED, Task, reasoning_tasks,
                                         search_tasks)
from agentgym.errors import ConfigError
from agentgym.spaces import TextSpace

SOURCES = ("reasoning", "search", "mixed")
TOOLS = ("python", "search")
DEFAULT_TAGS = {"python": "python", "search": "search", "answer": "answer"}
_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^\s*```(?:python|py)?\s*\n(.*?)\n?\s*```\s*$", re.DOTALL)


def _error(message: str) -> ConfigError:
    return ConfigError(f"ToolUse-v0: {message}")


class ToolUseEnv(gymnasium.Env):
    """Questions answered with a sandboxed Python interpreter and BM25 search (OTC-style)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, source: str = "mixed", split: str = "train", num_tasks: int = 100,
                 datasets: tuple[str, ...] | list[str] = DEFAULT_DATASETS,
                 difficulty: int | None = 0, max_tool_calls: int = 4,
                 tools: tuple[str, ...] | list[str] = TOOLS, tags: dict[str, str] | None = None,
                 top_k: int = 3, corpus_seed: int = 0, answer_metric: str = "em",
                 sandbox: dict[str, Any] | None = None, isolation: str = "auto",
                 render_mode: str | None = None):
        if source not in SOURCES:
            raise _error(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if split not in SPLIT_SEED:
            raise _error(f"split must be one of {', '.join(SPLIT_SEED)}, not {split!r}")
        if num_tasks < 1:
            raise _error(f"num_tasks must be >= 1, got {num_tasks}")
        if max_tool_calls < 0:
            raise _error(f"max_tool_calls must be >= 0, got {max_tool_calls}")
        unknown = set(tools) - set(TOOLS)
        if unknown:
            raise _error(f"unknown tools {sorted(unknown)}; the tools are {', '.join(TOOLS)}")
        self.tags = dict(DEFAULT_TAGS, **(tags or {}))
        if set(self.tags) != set(DEFAULT_TAGS) or len(set(self.tags.values())) != 3 or \
                not all(re.fullmatch(r"[A-Za-z_][\w-]*", t) for t in self.tags.values()):
            raise _error(f"tags maps python/search/answer to distinct tag names, got {tags}")
        self.source, self.split, self.tools = source, split, tuple(tools)
        self.max_tool_calls, self.top_k, self.corpus_seed = max_tool_calls, top_k, corpus_seed
        self.render_mode = render_mode
        try:
            self.limits = SandboxLimits(**(sandbox or {}))
        except TypeError as e:
            raise _error(f"bad sandbox option ({e}); options: {', '.join(SandboxLimits.__annotations__)}") from None
        self.isolation = isolation_mode(isolation) if "python" in self.tools else isolation
        self.tasks = self._build_tasks(num_tasks, tuple(datasets), difficulty, answer_metric)
        self._patterns = {tool: re.compile(rf"<{tag}>(.*?)</{tag}>", re.DOTALL | re.IGNORECASE)
                          for tool, tag in self.tags.items()}
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self._sandbox: Sandbox | None = None
        self.task: Task | None = None
        self._calls: list[tuple[str, str]] = []
        self._errors = 0
        self._answer_score: float | None = None

    def _build_tasks(self, n: int, datasets: tuple[str, ...], difficulty: int | None,
                     metric: str) -> list[Task]:
        if self.source == "reasoning":
            return reasoning_tasks(datasets, difficulty, self.split, n)
        if self.source == "search":
            return search_tasks(self.corpus_seed, self.split, n, metric)
        reasoning = reasoning_tasks(datasets, difficulty, self.split, (n + 1) // 2)
        search = search_tasks(self.corpus_seed, self.split, n // 2, metric)
        mixed = [t for pair in zip(reasoning, search) for t in pair]
        return mixed + reasoning[len(search):]

    # -- gymnasium API ------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "task_index" in options:
            index = int(options["task_index"])
            if not 0 <= index < len(self.tasks):
                raise _error(f"task_index must be in [0, {len(self.tasks)}), got {index}")
        else:
            index = (seed if seed is not None else int(self.np_random.integers(len(self.tasks)))) % len(self.tasks)
        self.task = self.tasks[index]
        self._calls, self._errors, self._answer_score = [], 0, None
        if self._sandbox is not None:
            self._sandbox.reset()          # a fresh interpreter for every episode
        return self._intro(), self._info(action_valid=True)

    def step(self, action: str):
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        tool, content, problem = self.parse(action)
        if problem is not None:
            return (f"Invalid reply: {problem}. {self._format_hint()}", 0.0, False, False,
                    self._info(action_valid=False, invalid_reason=problem))
        if tool == "answer":
            try:
                self._answer_score = float(self.task.score(content))
            except Exception:  # noqa: BLE001 - a verifier choking on odd text scores 0
                self._answer_score = 0.0
            won = self._answer_score >= 1.0
            obs = "Your answer is correct." if won else "Your answer is not correct."
            return obs, self._answer_score, True, False, self._info(action_valid=True)
        if len(self._calls) >= self.max_tool_calls:
            reason = f"tool-call budget of {self.max_tool_calls} exhausted"
            return (f"No tool calls left ({reason}); the episode is over.", 0.0, False, True,
                    self._info(action_valid=False, invalid_reason=reason))
        result, failed = self._call(tool, content)
        self._calls.append((tool, " ".join(content.split())))
        self._errors += int(failed)
        left = self.max_tool_calls - len(self._calls)
        tail = (f"{left} tool call{'s' if left != 1 else ''} left." if left
                else f"No tool calls left: reply with <{self.tags['answer']}>...</{self.tags['answer']}>.")
        obs = f"Result of {tool}:\n{result}\n\n{tail}"
        return obs, 0.0, False, False, self._info(action_valid=True, tool_error=failed)

    def close(self):
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def render(self):
        if self.task is None:
            return ""
        return f"{self.task.task_type}: {self.task.question} ({len(self._calls)} tool calls)"

    # -- pieces ---------------------------------------------------------------------
    def parse(self, action: str) -> tuple[str | None, str, str | None]:
        """(tool, content, None) for the first complete block, else (None, "", why not)."""
        text = _THINK.sub("", action)
        found = [(m.start(), tool, m.group(1)) for tool, p in self._patterns.items()
                 if (m := p.search(text))]
        if not found:
            opened = [t for t in self.tags.values() if f"<{t}>" in text.lower()]
            why = f"<{opened[0]}> is not closed" if opened else "no tool call or answer found"
            return None, "", why
        _, tool, content = min(found)
        if tool != "answer" and tool not in self.tools:
            return None, "", f"the {tool} tool is not available here"
        if tool == "python":
            fenced = _FENCE.match(content)
            content = fenced.group(1) if fenced else content
            content = content.strip("\n")
        else:
            content = content.strip()
        if not content.strip():
            return None, "", f"empty <{self.tags[tool]}></{self.tags[tool]}>"
        return tool, content, None

    def _call(self, tool: str, content: str) -> tuple[str, bool]:
        if tool == "search":
            from agentgym.envs.tooluse.search import index_for
            return index_for(self.corpus_seed).render(content, self.top_k), False
        if self._sandbox is None:
            self._sandbox = Sandbox(self.limits, self.isolation)
        result = self._sandbox.run(content)
        return result.render(), not result.ok

    def walkthrough(self) -> list[str]:
        """A solution with the fewest tool calls (the task's plan, then its answer)."""
        if self.task is None or not self.task.answer:
            return []
        calls = [f"<{self.tags[t]}>{c}</{self.tags[t]}>" for t, c in self.task.plan]
        return calls + [f"<{self.tags['answer']}>{self.task.answer}</{self.tags['answer']}>"]

    def _format_hint(self) -> str:
        t = self.tags
        options = [f"<{t[tool]}>...</{t[tool]}>" for tool in self.tools] + [f"<{t['answer']}>...</{t['answer']}>"]
        return "Reply with one of " + ", ".join(options) + "."

    def _intro(self) -> str:
        t = self.tags
        lines = [f"Question: {self.task.question}", "", "Tools:"]
        if "python" in self.tools:
            lines.append(f"<{t['python']}>code</{t['python']}> runs Python 3 and shows what it "
                         "prints (variables persist between calls).")
        if "search" in self.tools:
            lines.append(f"<{t['search']}>query</{t['search']}> returns the {self.top_k} "
                         "best-matching passages of the knowledge base.")
        lines.append(f"<{t['answer']}>text</{t['answer']}> gives your final answer and ends the task.")
        lines.append(f"You may make at most {self.max_tool_calls} tool calls; use as few as you can.")
        return "\n".join(lines)

    def _info(self, action_valid: bool, **extra) -> dict[str, Any]:
        state = "\x00".join(f"{t}:{c}" for t, c in self._calls)
        anchor = hashlib.sha1(f"{self.task.task_id}\x01{state}".encode()).hexdigest()[:16]
        counts = {f"tool_calls_{tool}": sum(t == tool for t, _ in self._calls) for tool in TOOLS}
        info = {"task_id": self.task.task_id, "won": bool(self._answer_score is not None
                                                          and self._answer_score >= 1.0),
                "action_valid": action_valid, "anchor": anchor, "task": self.task.question,
                "task_type": self.task.task_type, "tool_calls": len(self._calls), **counts,
                "tool_errors": self._errors, "max_tool_calls": self.max_tool_calls}
        if self._answer_score is not None:
            info["answer_score"] = self._answer_score
        return info | extra
