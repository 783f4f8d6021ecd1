"""``agentgym/MiniWoB-v0``: MiniWoB++ web tasks in headless Chromium, as a text environment.

One environment plays one task or a suite of tasks (``task="click-test"``,
``task="click-*"``, ``task="suite:easy"``, ``task="click-test,enter-text"``). With several
tasks, ``reset(seed=s)`` plays task ``s % len(tasks)`` (``options={"task": name}`` picks
one); the page itself is seeded with ``s``, so a seed fixes the task instance.

The observation is the instruction plus one line per visible DOM element (see
``render``); actions are the text syntax of ``actions``; the screenshot (uint8 array,
H×W×3, 210×160 for most tasks) is in ``info["image"]``. The reward is the task's raw
reward in [-1, 1] (no time discount), given when the page says the episode is done.

Chromium starts on the first ``reset``, is reused across episodes and tasks, and is
stopped by ``close()`` (also at garbage collection / interpreter exit).
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import gymnasium

from agentgym.envs.miniwob import actions as _actions
from agentgym.envs.miniwob import render as _render
from agentgym.envs.miniwob import solver as _solver
from agentgym.envs.miniwob import tasks as _tasks
from agentgym.spaces import TextSpace

DATA_MODES = ("train", "test")
DONE_TEXT = "The task is over (reward {reward:g})."


def _close_browser(holder: dict) -> None:
    browser = holder.pop("browser", None)
    if browser is not None:
        browser.close()


class MiniWoBEnv(gymnasium.Env):
    """MiniWoB++ web tasks in headless Chromium (128 tasks; suites by name or pattern)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: str | list[str] = "click-test", data_mode: str = "train",
                 screenshot: bool = True, list_actions: bool = True,
                 render_mode: str | None = None):
        self.tasks = _tasks.resolve(task)
        if data_mode not in DATA_MODES:
            raise _tasks.MiniWoBTaskError(f"data_mode must be one of {', '.join(DATA_MODES)}, "
                                          f"got {data_mode!r}")
        if render_mode not in (None, "ansi"):
            raise _tasks.MiniWoBTaskError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.data_mode = data_mode
        self.screenshot = bool(screenshot)
        self.list_actions = bool(list_actions)
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        # the browser lives in a dict so the finalizer does not keep ``self`` alive
        self._holder: dict[str, Any] = {}
        self._finalizer = weakref.finalize(self, _close_browser, self._holder)
        self.task: str | None = None
        self.task_id: str | None = None
        self._root = None
        self._utterance = ""
        self._obs = ""
        self._info: dict[str, Any] = {}
        self._first_obs = ""
        self._image = None
        self._done = False

    # ----------------------------------------------------------------- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task"})
        if unknown:
            raise _tasks.MiniWoBTaskError(
                f"unknown reset option(s) {', '.join(unknown)}; MiniWoB accepts task")
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        if options.get("task") is not None:
            task = _tasks.resolve(options["task"])[0]
        else:
            task = self.tasks[int(seed) % len(self.tasks)]
        browser = self._browser(task)
        browser.mode = self.data_mode
        browser.record_screenshots = self.screenshot
        obs, infos = [{}], [{}]
        try:
            browser.reset(obs, infos, seed)
        except Exception:  # a crashed browser: start a fresh one and try once more
            self._stop_browser()
            browser = self._browser(task)
            browser.mode = self.data_mode
            browser.record_screenshots = self.screenshot
            browser.reset(obs, infos, seed)
        self.task, self.task_id = task, f"{task}:{seed}"
        self._done = False
        self._read(obs[0], infos[0])
        self._first_obs = self._obs
        self._info = self._make_info(True, 0.0)
        return self._obs, dict(self._info, task=self._utterance)

    def step(self, action: str):
        if self._root is None and not self._done:
            raise RuntimeError("call reset() before step()")
        if self._done:
            return self._obs, 0.0, True, False, dict(self._info, action_valid=False)
        try:
            parsed = _actions.parse(action)
            self._check_target(parsed)
        except _actions.ParseError as e:
            return self._obs, 0.0, False, False, dict(self._info, action_valid=False,
                                                     invalid_reason=str(e))
        browser = self._holder["browser"]
        valid, reason = True, None
        try:
            self._perform(browser, parsed)
        except _actions.ParseError as e:  # performed, but it had no effect on the page
            valid, reason = False, str(e)
        metadata = browser.get_metadata()
        reward = 0.0
        if metadata["done"]:
            reward = float(browser.reward_processor(metadata))
            self._done = True
            self._root = None
            self._obs = DONE_TEXT.format(reward=reward)
            self._image = None
        else:
            obs, extra = browser.get_observation(use_cached_fields=True)
            self._read(obs, extra)
        self._info = self._make_info(valid, reward)
        extra = {"invalid_reason": reason} if reason else {}
        return self._obs, reward, self._done, False, dict(self._info, **extra)

    def render(self):
        return self._obs

    def close(self):
        self._finalizer()
        super().close()

    # ----------------------------------------------------------------- extras

    def walkthrough(self) -> list[str] | None:
        """Actions that solve the current episode from its first observation, for the
        tasks the scripted solver handles (``solver.SOLVED_TASKS``); None otherwise."""
        if self.task is None:
            return None
        return _solver.plan(self.task, self._first_obs)

    # ----------------------------------------------------------------- internals

    def _browser(self, task: str):
        from agentgym.envs.miniwob.browser import new_browser

        browser = self._holder.get("browser")
        if browser is None:
            browser = self._holder["browser"] = new_browser(task)
        else:
            browser.load(task)
        browser.ensure_started()
        return browser

    def _stop_browser(self) -> None:
        _close_browser(self._holder)

    def _read(self, obs: dict, extra: dict) -> None:
        self._utterance = obs["utterance"]
        self._root = extra["root_dom"]
        self._image = obs["screenshot"] if self.screenshot else None
        self._obs = _render.render(self._utterance, self._root)

    def _check_target(self, action: _actions.Action) -> None:
        if action.name in ("click", "type") and isinstance(action.args[0], int):
            refs = {el.ref for el, _ in _render.visible_elements(self._root)}
            if action.args[0] not in refs:
                raise _actions.ParseError(f"no visible element has ref {action.args[0]}")
        if action.name in ("click_xy", "dblclick_xy", "drag", "scroll"):
            browser = self._holder["browser"]
            xs, ys = action.args[0:4:2], action.args[1:4:2]
            if action.name == "scroll":
                xs, ys = action.args[:1], action.args[1:2]
            if not all(0 <= x < browser.task_width for x in xs) or \
                    not all(0 <= y < browser.task_height for y in ys):
                raise _actions.ParseError(f"coordinates outside the task area "
                                          f"{browser.task_width}×{browser.task_height}")

    @staticmethod
    def _perform(browser, action: _actions.Action) -> None:
        from miniwob import selenium_actions as sa

        driver, a = browser.driver, action.args
        if action.name in ("click", "type") and isinstance(a[0], int):
            result = driver.execute_script(f"return core.elementClick({a[0]});")
            if result is not True:  # the page could not click it (e.g. a text fragment)
                raise _actions.ParseError(f"element {a[0]} cannot be clicked: {result}")
        if action.name == "type":
            sa.execute_type_text(a[-1], driver)
        elif action.name == "press":
            sa.execute_press_key(a[0], driver)
        elif action.name == "click_xy":
            sa.execute_click_coords(a[0], a[1], driver)
        elif action.name == "dblclick_xy":
            sa.execute_dblclick_coords(a[0], a[1], driver)
        elif action.name == "drag":
            sa.execute_mousedown_coords(a[0], a[1], driver)
            sa.execute_move_coords(a[2], a[3], driver)
            sa.execute_mouseup_coords(a[2], a[3], driver)
        elif action.name == "scroll":
            sa.execute_scroll_coords(a[0], a[1], 100 if a[2] == "down" else -100, 0, driver)

    def _make_info(self, action_valid: bool, reward: float) -> dict[str, Any]:
        won = self._done and reward > 0
        digest = hashlib.sha1(f"{self.task_id}\n{self._obs}".encode()).hexdigest()[:16]
        admissible = []
        if self.list_actions and self._root is not None:
            admissible = [f"click({ref})" for ref in _render.clickable_refs(self._root)]
        info = {
            "task_id": self.task_id,
            "task_type": self.task,
            "won": bool(won),
            "action_valid": bool(action_valid),
            "anchor": f"{self.task}|{digest}",
            "raw_reward": float(reward),
        }
        if self.list_actions:
            info["admissible_actions"] = admissible
        if self._image is not None:
            info["image"] = self._image
        return info
