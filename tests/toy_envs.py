"""Small environments defined in the tests: one that keeps the contract, some that don't."""

import pickle
import random

import gymnasium

from agentgym import TextSpace


class GuessEnv(gymnasium.Env):
    """Guess the hidden number between 1 and 5; the seed picks the number."""

    def __init__(self, high: int = 5):
        self.high = high
        self.observation_space = TextSpace()
        self.action_space = TextSpace()

    def _info(self, valid=True):
        return {"task_id": f"guess-{self.target}", "won": self.won, "action_valid": valid,
                "anchor": f"tries={sorted(self.tried)}",
                "admissible_actions": [f"guess {i}" for i in range(1, self.high + 1)]}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(1, self.high + 1))
        self.won, self.tried = False, set()
        return f"Guess a number from 1 to {self.high}.", self._info()

    def step(self, action):
        if action not in self._info()["admissible_actions"]:
            return "Say 'guess N'.", 0.0, False, False, self._info(valid=False)
        n = int(action.split()[1])
        self.tried.add(n)
        self.won = n == self.target
        obs = "Right!" if self.won else ("Higher." if n < self.target else "Lower.")
        return obs, float(self.won), self.won, False, self._info()

    def walkthrough(self):
        return [f"guess {self.target}"]


class UnseededEnv(GuessEnv):
    """Broken: ignores the seed, so a group would not share its task."""

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=None)
        self.target = random.randint(1, 1000)
        info["task_id"] = f"guess-{self.target}"
        return f"Guess a number ({self.target}).", info


class NoAnchorEnv(GuessEnv):
    """Broken: info lacks the anchor."""

    def _info(self, valid=True):
        info = super()._info(valid)
        del info["anchor"]
        return info


class CrashOnControlCharsEnv(GuessEnv):
    """Broken when used without the guard: chokes on odd input."""

    def step(self, action):
        if any(ord(c) < 32 for c in action) or not action:
            raise ValueError("unexpected input")
        return super().step(action)


class CrashingEnv(GuessEnv):
    """Raises on its second step (a buggy environment mid-episode)."""

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if self.steps == 2:
            raise RuntimeError("the game engine fell over")
        return super().step(action)


class HangingEnv(GuessEnv):
    """Blocks in step until released (a stuck environment); `release` frees it."""

    import threading
    release = threading.Event()

    def step(self, action):
        self.release.wait()
        return super().step(action)


class EchoEnv(GuessEnv):
    """Whole replies are actions: the episode ends (rewarded by the reply's length) when a
    reply's character codes sum to a multiple of 3, so episodes end at different turns."""

    def step(self, action):
        code = sum(map(ord, action))
        done = code % 3 == 0
        self.tried.add(code % 7)
        return f"echo {code % 97}", float(len(action) % 2) if done else 0.0, done, False, \
            dict(self._info(valid=bool(action)), won=done and len(action) % 2 == 1)


class SnapshotEchoEnv(EchoEnv):
    """EchoEnv with the fast fork path: its whole state is three fields."""

    def snapshot(self):
        return pickle.dumps((self.target, self.won, sorted(self.tried)))

    def restore(self, blob):
        self.target, self.won, tried = pickle.loads(blob)
        self.tried = set(tried)


class DriftingEchoEnv(EchoEnv):
    """Broken for forking: its observations depend on how many envs were built before."""

    built = 0

    def __init__(self):
        super().__init__()
        DriftingEchoEnv.built += 1
        self.instance = DriftingEchoEnv.built

    def step(self, action):
        obs, *rest = super().step(action)
        return f"{obs} (run {self.instance})", *rest
