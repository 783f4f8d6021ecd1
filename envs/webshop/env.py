"""``agentgym/WebShop-v0``: the WebShop shopping task in its original text mode.

Each reset picks a goal (an instruction such as "i need a sulfate free shampoo ..., and
price lower than 30.00 dollars") and opens the search page. The agent searches, browses
result pages, opens items, picks options and clicks "Buy Now", which ends the episode
with the original WebShop score in ``info["task_score"]``.

By default the catalogue is generated from ``catalog_seed`` (``num_products``
products); ``data_dir`` loads the original product and instruction files instead (see
``original.py``). Goals: ``reset(seed=s)`` plays goal ``s % num_goals`` of ``split``;
``options={"goal_index": i}`` picks one directly.

``reward="score"`` pays the score (0..1) at the purchase; ``reward="sparse"`` pays
10 when the score is 1.0 and 0 otherwise (the GiGPO setting).
"""

from __future__ import annotations

import pickle

import threading
from typing import Any

import gymnasium

from agentgym.errors import ConfigError
from agentgym.envs.webshop import goals as _goals
from agentgym.envs.webshop.catalog import Catalog, generate_catalog
from agentgym.envs.webshop.oracle import oracle_actions
from agentgym.envs.webshop.reward import Goal
from agentgym.envs.webshop.search import engine_for
from agentgym.envs.webshop.shop import Shop
from agentgym.spaces import TextSpace

REWARD_MODES = ("score", "sparse")
DEFAULT_NUM_GOALS = {"train": 10_000, "eval": 500, "test": 500}
SPARSE_WIN_REWARD = 10.0
MAX_PRODUCTS = 2_000_000


class WebShopConfigError(ConfigError, ValueError):
    """A WebShop option that cannot be used; the message says which and why."""


def _positive_int(name: str, value: Any, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise WebShopConfigError(f"{name} must be an integer in [1, {high}], got {value!r}")
    return value


_original_cache: dict[tuple, tuple[Catalog, list[Goal]]] = {}
_original_lock = threading.Lock()


class WebShopEnv(gymnasium.Env):
    """WebShop: search, browse and buy the product an instruction asks for."""

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, num_products: int = 1000, catalog_seed: int = 0, split: str = "train",
                 num_goals: int | None = None, reward: str = "score",
                 data_dir: str | None = None, cache_dir: str | None = None,
                 render_mode: str | None = None):
        if split not in DEFAULT_NUM_GOALS:
            raise WebShopConfigError(f"split must be one of train, eval, test, got {split!r}")
        if reward not in REWARD_MODES:
            raise WebShopConfigError(f"reward must be 'score' (the 0..1 score at purchase) or "
                                     f"'sparse' (10 on a full match), got {reward!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise WebShopConfigError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")
        if isinstance(catalog_seed, bool) or not isinstance(catalog_seed, int):
            raise WebShopConfigError(f"catalog_seed must be an integer, got {catalog_seed!r}")
        self.split, self.reward_mode, self.render_mode = split, reward, render_mode
        self._goal_list: list[Goal] | None = None
        if data_dir is None:
            _positive_int("num_products", num_products, MAX_PRODUCTS)
            self.catalog = generate_catalog(num_products, catalog_seed, cache_dir)
            self.num_goals = _positive_int("num_goals", DEFAULT_NUM_GOALS[split]
                                           if num_goals is None else num_goals, 10_000_000)
        else:
            from agentgym.envs.webshop.original import OriginalDataError, load_original, split_goals
            key = (str(data_dir), num_products, catalog_seed)
            try:
                with _original_lock:
                    if key not in _original_cache:
                        _original_cache[key] = load_original(data_dir, num_products, catalog_seed)
            except OriginalDataError as e:
                raise WebShopConfigError(str(e)) from None
            self.catalog, all_goals = _original_cache[key]
            self._goal_list = split_goals(all_goals, split)
            if not self._goal_list:
                raise WebShopConfigError(
                    f"the original data in {data_dir} has {len(all_goals)} goals and none in "
                    f"split {split!r} (test: 0-500, eval: 500-1500, train: 1500+)")
            if num_goals is not None:
                self._goal_list = self._goal_list[:_positive_int("num_goals", num_goals, 10_000_000)]
            self.num_goals = len(self._goal_list)
        self.engine = engine_for(self.catalog, cache_dir)
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.shop: Shop | None = None
        self.goal_index: int | None = None
        self.task_id: str | None = None

    # ------------------------------------------------------------------ gymnasium API

    def goal(self, index: int) -> Goal:
        if self._goal_list is not None:
            return self._goal_list[index]
        return _goals.make_goal(self.catalog, self.split, index)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"goal_index"})
        if unknown:
            raise WebShopConfigError(f"unknown reset option(s) {', '.join(unknown)}; "
                                     f"WebShop accepts goal_index")
        index = options.get("goal_index")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.num_goals:
                raise WebShopConfigError(f"goal_index must be an integer in [0, {self.num_goals}), "
                                         f"got {index!r}")
        elif seed is not None:
            index = int(seed) % self.num_goals
        else:
            index = int(self.np_random.integers(self.num_goals))
        self.goal_index = index
        self.task_id = f"webshop-{self.catalog.key}-{self.split}-{index}"
        self.shop = Shop(self.catalog, self.engine, self.goal(index))
        info = self._info(action_valid=True)
        info["task"] = self.shop.goal.instruction_text
        return self.shop.observation(), info

    def step(self, action: str):
        if self.shop is None:
            raise RuntimeError("call reset() before step()")
        if self.shop.page == "done":  # only reachable without EpisodeGuard
            return self.shop.observation(), 0.0, True, False, self._info(action_valid=False)
        valid = self.shop.act(action)
        reward, terminated = 0.0, False
        if self.shop.page == "done":
            terminated = True
            task_score = self.shop.result.total
            reward = task_score if self.reward_mode == "score" else SPARSE_WIN_REWARD * (task_score == 1.0)
        return self.shop.observation(), float(reward), terminated, False, self._info(valid)

    def render(self):
        text = self.shop.observation() if self.shop is not None else ""
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self):
        self.shop = None
        super().close()

    # ------------------------------------------------------------------ forking

    def snapshot(self) -> bytes:
        """The session state (page, search, results, choices, score), for tree rollouts:
        products are referenced by ASIN, the catalog and search engine are shared."""
        shop = self.shop
        state = None if shop is None else (
            shop.page, shop.keywords, shop.page_no, [p.asin for p in shop.results], shop.asin,
            dict(shop.options), shop.sub_page, shop.result, shop.bought)
        return pickle.dumps((self.goal_index, self.task_id, state))

    def restore(self, blob: bytes) -> None:
        self.goal_index, self.task_id, state = pickle.loads(blob)
        if state is None:
            self.shop = None
            return
        page, keywords, page_no, asins, asin, options, sub_page, result, bought = state
        self.shop = Shop(self.catalog, self.engine, self.goal(self.goal_index), page=page,
                         keywords=keywords, page_no=page_no,
                         results=[self.catalog.by_asin[a] for a in asins], asin=asin,
                         options=options, sub_page=sub_page, result=result, bought=bought)

    # ------------------------------------------------------------------ extras

    def walkthrough(self) -> list[str] | None:
        """Oracle actions from the current goal's search page to a 1.0-score purchase."""
        if self.shop is None:
            return None
        return oracle_actions(self.engine, self.shop.goal)

    def _info(self, action_valid: bool) -> dict[str, Any]:
        shop = self.shop
        result = shop.result
        info = {
            "task_id": self.task_id,
            "task_type": shop.goal.category or "webshop",
            "won": bool(result is not None and result.total == 1.0),
            "action_valid": bool(action_valid),
            "anchor": shop.anchor(),
            "admissible_actions": [] if shop.page == "done" else shop.admissible_actions(),
            "task_score": float(result.total) if result is not None else 0.0,
            "page": shop.page,
            "goal_index": self.goal_index,
        }
        if result is not None:
            info["score_parts"] = result.as_dict()
            info["bought"] = shop.bought
        return info
