"""agentgym: multi-turn reinforcement learning for LLM agents on text environments."""

from agentgym.contract import REQUIRED_INFO, EpisodeGuard
from agentgym.errors import AgentGymError, ConfigError, UnknownEnvError
from agentgym.registry import env_info, make, register, registered_envs
from agentgym.spaces import TextSpace

__version__ = "0.1.0"

__all__ = [
    "AgentGymError", "ConfigError", "EpisodeGuard", "REQUIRED_INFO", "TextSpace",
    "UnknownEnvError", "check_env", "env_info", "make", "register", "registered_envs",
]


def check_env(env, **kwargs):
    """Run the contract checks on an environment instance; see ``agentgym.checker``."""
    from agentgym.checker import check_env as _check

    return _check(env, **kwargs)


import agentgym.envs  # noqa: E402,F401  (registers the built-in environments)
