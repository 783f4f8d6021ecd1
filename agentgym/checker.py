"""``agentgym check``: does an environment keep the text-environment contract?

Each check runs in isolation and reports what went wrong instead of raising, so one
report shows every problem at once. Then an agent (random admissible actions, or the
environment's own walkthrough) plays a few episodes and the report gives their stats.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium

from agentgym.contract import OPTIONAL_INFO, REQUIRED_INFO

BAD_ACTIONS: dict[str, Any] = {
    "empty": "",
    "whitespace": "   \n ",
    "10,000 characters": "x" * 10_000,
    "control characters": "go\x00 north\x07\x1b[2J",
    "not UTF-8 encodable": "take \udcff",
}


class ContractViolation(Exception):
    pass


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CheckReport:
    env_id: str
    results: list[CheckResult] = field(default_factory=list)
    episodes: int = 0
    wins: int = 0
    mean_length: float = 0.0
    mean_reward: float = 0.0
    step_ms: float = 0.0
    reset_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]

    def render(self, console=None) -> None:
        from rich.console import Console
        from rich.table import Table

        from rich.markup import escape

        console = console or Console()
        table = Table(title=escape(f"agentgym check {self.env_id}"))
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        for r in self.results:
            table.add_row(escape(r.name), "[green]ok[/]" if r.ok else "[red]FAIL[/]", escape(r.detail))
        console.print(table)
        if self.episodes:
            console.print(
                f"{self.episodes} episodes: won {self.wins}, mean length {self.mean_length:.1f}, "
                f"mean reward {self.mean_reward:.3f}, reset {self.reset_ms:.1f} ms, "
                f"step {self.step_ms:.2f} ms")
        verdict = "[green]PASSED[/]" if self.ok else f"[red]FAILED[/] ({len(self.failures)} checks)"
        console.print(verdict)


def _check_info(info: Any, where: str) -> None:
    if not isinstance(info, dict):
        raise ContractViolation(f"{where}: info is {type(info).__name__}, not dict")
    for key, kind in REQUIRED_INFO.items():
        if key not in info:
            raise ContractViolation(f"{where}: info has no {key!r}")
        if not isinstance(info[key], kind):
            raise ContractViolation(
                f"{where}: info[{key!r}] is {type(info[key]).__name__}, expected {kind.__name__}")
    for key, kind in OPTIONAL_INFO.items():
        if key in info and not isinstance(info[key], kind):
            raise ContractViolation(
                f"{where}: info[{key!r}] is {type(info[key]).__name__}, expected {kind.__name__}")
    if "admissible_actions" in info and not all(isinstance(a, str) for a in info["admissible_actions"]):
        raise ContractViolation(f"{where}: admissible_actions must be a list of strings")


def _check_reset(out: Any, where: str) -> tuple[str, dict]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ContractViolation(f"{where}: reset must return (observation, info)")
    obs, info = out
    if not isinstance(obs, str):
        raise ContractViolation(f"{where}: observation is {type(obs).__name__}, not str")
    _check_info(info, where)
    return obs, info


def _check_step(out: Any, where: str) -> tuple[str, float, bool, bool, dict]:
    if not (isinstance(out, tuple) and len(out) == 5):
        raise ContractViolation(f"{where}: step must return (obs, reward, terminated, truncated, info)")
    obs, reward, terminated, truncated, info = out
    if not isinstance(obs, str):
        raise ContractViolation(f"{where}: observation is {type(obs).__name__}, not str")
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
        raise ContractViolation(f"{where}: reward {reward!r} is not a finite number")
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, bool):
            raise ContractViolation(f"{where}: {name} is {type(flag).__name__}, not bool")
    _check_info(info, where)
    return obs, float(reward), terminated, truncated, info


def _describe(info: dict) -> tuple:
    return (info.get("task_id"), info.get("anchor"), tuple(info.get("admissible_actions") or ()))


class _Agent:
    """Picks the next action: the walkthrough when asked and available, else random."""

    def __init__(self, env: gymnasium.Env, kind: str, rng: random.Random):
        self.env, self.kind, self.rng = env, kind, rng
        self.plan: list[str] = []

    def start(self) -> None:
        walkthrough = getattr(self.env.unwrapped, "walkthrough", None)
        self.plan = list(walkthrough() or []) if self.kind == "scripted" and callable(walkthrough) else []

    def act(self, info: dict) -> str:
        if self.plan:
            return self.plan.pop(0)
        actions = info.get("admissible_actions") or ["look"]
        return self.rng.choice(sorted(actions))


def _play(env, agent: _Agent, seed: int, max_steps: int) -> tuple[list[tuple], dict, float, float]:
    """One episode: the (obs, reward, terminated, truncated, anchor) trace, the last
    info, and the seconds spent in reset and in steps."""
    t0 = time.perf_counter()
    obs, info = _check_reset(env.reset(seed=seed), f"reset(seed={seed})")
    reset_s = time.perf_counter() - t0
    agent.start()
    trace = [(obs, 0.0, False, False, info["anchor"])]
    step_s = 0.0
    for t in range(max_steps):
        action = agent.act(info)
        t0 = time.perf_counter()
        out = env.step(action)
        step_s += time.perf_counter() - t0
        obs, reward, terminated, truncated, info = _check_step(out, f"step {t}")
        trace.append((obs, reward, terminated, truncated, info["anchor"]))
        if terminated or truncated:
            break
    return trace, info, reset_s, step_s


def _step_limit(env: gymnasium.Env) -> int | None:
    while isinstance(env, gymnasium.Wrapper):
        limit = getattr(env, "max_episode_steps", None) or getattr(env, "_max_episode_steps", None)
        if limit:
            return int(limit)
        env = env.env
    return None


def check_env(env: gymnasium.Env, *, env_id: str | None = None, episodes: int = 3,
              seed: int = 0, agent: str = "random", max_steps: int = 200) -> CheckReport:
    """Run the contract checks on ``env`` and return a report (nothing raises)."""
    report = CheckReport(env_id or getattr(getattr(env, "spec", None), "id", None) or type(env).__name__)
    limit = _step_limit(env)
    max_steps = min(max_steps, limit) if limit else max_steps
    rng = random.Random(seed)
    player = _Agent(env, agent, rng)

    def check(name: str, fn: Callable[[], str | None]) -> None:
        try:
            detail = fn() or ""
            report.results.append(CheckResult(name, True, detail))
        except ContractViolation as e:
            report.results.append(CheckResult(name, False, str(e)))
        except Exception as e:  # noqa: BLE001 - an environment raising is the finding
            report.results.append(CheckResult(name, False, f"raised {type(e).__name__}: {e}"))

    def reset_types() -> str:
        obs, info = _check_reset(env.reset(seed=seed), f"reset(seed={seed})")
        extra = sorted(set(info) - set(REQUIRED_INFO))
        return f"info keys: {', '.join(sorted(REQUIRED_INFO))}" + (f" + {', '.join(extra)}" if extra else "")

    def reset_determinism() -> str:
        for s in (seed, seed + 1):
            a = _check_reset(env.reset(seed=s), f"reset(seed={s})")
            b = _check_reset(env.reset(seed=s), f"reset(seed={s}) again")
            if a[0] != b[0] or _describe(a[1]) != _describe(b[1]):
                raise ContractViolation(f"reset(seed={s}) twice gave different initial states")
        return "same seed, same initial observation and info"

    def step_determinism() -> str:
        first, *_ = _play(env, _Agent(env, agent, random.Random(seed)), seed, max_steps)
        second, *_ = _play(env, _Agent(env, agent, random.Random(seed)), seed, max_steps)
        if first != second:
            step = next(i for i, (x, y) in enumerate(zip(first, second)) if x != y) if \
                len(first) == len(second) else min(len(first), len(second))
            raise ContractViolation(f"same seed and actions diverged at step {step}")
        return f"{len(first) - 1} steps replayed identically"

    def bad_actions() -> str:
        for label, action in BAD_ACTIONS.items():
            _check_reset(env.reset(seed=seed), "reset")
            out = _check_step(env.step(action), f"step({label})")
            if out[4]["action_valid"] is not False:
                raise ContractViolation(f"a {label} action came back with action_valid=True")
        return f"{len(BAD_ACTIONS)} malformed actions rejected without raising"

    def after_end() -> str:
        trace, *_ = _play(env, player, seed, max_steps)
        ended = trace[-1][2] or trace[-1][3]
        if not ended:
            return f"skipped: episode did not end within {max_steps} steps"
        out = _check_step(env.step("look"), "step after the end")
        if out[4]["action_valid"] is not False:
            raise ContractViolation("an action after the episode ended came back valid")
        if not (out[2] or out[3]):
            raise ContractViolation("after the end, terminated and truncated are both False")
        return "action after the end is invalid and changes nothing"

    def truncation() -> str:
        if not limit:
            return "skipped: no max_episode_steps"
        _check_reset(env.reset(seed=seed), "reset")
        for t in range(limit):
            out = _check_step(env.step(""), f"step {t}")
            if out[2]:
                return "skipped: the environment terminated on invalid actions"
            if out[3] and t < limit - 1:
                raise ContractViolation(f"truncated at step {t + 1}, limit is {limit}")
        if not out[3]:
            raise ContractViolation(f"not truncated after max_episode_steps={limit} steps")
        return f"truncated after {limit} steps"

    def episodes_run() -> str:
        lengths, rewards = [], []
        reset_s = step_s = 0.0
        for e in range(episodes):
            trace, info, r_s, s_s = _play(env, player, seed + e, max_steps)
            reset_s, step_s = reset_s + r_s, step_s + s_s
            lengths.append(len(trace) - 1)
            rewards.append(sum(r for _, r, *_ in trace))
            report.wins += int(info["won"])
        report.episodes = episodes
        report.mean_length = sum(lengths) / max(len(lengths), 1)
        report.mean_reward = sum(rewards) / max(len(rewards), 1)
        report.reset_ms = 1000 * reset_s / max(episodes, 1)
        report.step_ms = 1000 * step_s / max(sum(lengths), 1)
        return f"{episodes} episodes with the {agent} agent"

    check("reset returns (str, info)", reset_types)
    check("reset is deterministic per seed", reset_determinism)
    check("steps are deterministic per seed", step_determinism)
    check("malformed actions are invalid, never raise", bad_actions)
    check("actions after the end are invalid", after_end)
    check("max_episode_steps truncates", truncation)
    check(f"{agent} agent plays {episodes} episodes", episodes_run)

    def close_twice() -> str:
        env.close()
        env.close()
        return "close() twice is fine"

    check("close() twice", close_twice)
    return report
