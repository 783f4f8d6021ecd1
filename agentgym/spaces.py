"""Gymnasium space for free text: observations and actions are Python strings."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Space


class TextSpace(Space[str]):
    """Any Python string of at most ``max_length`` characters.

    Unlike ``gymnasium.spaces.Text`` there is no charset: game text has punctuation
    and newlines, and the agent may write anything.
    """

    def __init__(self, max_length: int = 100_000, seed: int | None = None):
        self.max_length = max_length
        super().__init__(shape=None, dtype=str, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz "))
        n = int(self.np_random.integers(1, 20))
        return "".join(self.np_random.choice(letters, size=n))

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"TextSpace(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TextSpace) and other.max_length == self.max_length
