"""The rollout layer: the engine that plays episodes, the env pools it steps them in.

    engine.py    RolloutEngine: batched multi-turn rollouts, one generation per turn
    envpool.py   EnvPool (threads) / ProcessEnvPool (worker processes), per-call timeouts
"""

from agentgym.rollout.engine import RolloutEngine, RolloutSettings
from agentgym.rollout.envpool import EnvMaker, EnvPool, Outcome, ProcessEnvPool, resolve_backend

__all__ = ["EnvMaker", "EnvPool", "Outcome", "ProcessEnvPool", "RolloutEngine",
           "RolloutSettings", "resolve_backend"]
