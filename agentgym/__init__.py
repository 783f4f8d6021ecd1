"""agentgym: multi-turn reinforcement learning for LLM agents on text environments."""

from agentgym.contract import REQUIRED_INFO, EpisodeGuard
from agentgym.errors import AgentGymError, ConfigError, UnknownEnvError
from agentgym.registry import env_info, make, register, registered_envs
from agentgym.spaces import TextSpace

__version__ = "0.1.0"

__all__ = [
    "AgentGymError", "ConfigError", "EpisodeGuard", "REQUIRED_INFO", "TextSpace",
    "UnknownEnvError", "check_env", "env_info", "make", "register", "registered_envs",
    "train", "Trainer", "Config", "load_config",
]


def check_env(env, **kwargs):
    """Run the contract checks on an environment instance; see ``agentgym.checker``."""
    from agentgym.checker import check_env as _check

    return _check(env, **kwargs)


def train(config, overrides=None, *, resume_dir=None):
    """Train from a YAML recipe's path, a ``Config`` or a dict, with ``key=value``
    overrides; returns the run directory. See :func:`agentgym.trainer.train`."""
    from agentgym.trainer import train as _train

    return _train(config, overrides, resume_dir=resume_dir)


def __getattr__(name: str):
    # torch and friends load on first use, not on `import agentgym`
    if name == "Trainer":
        from agentgym.trainer import Trainer

        return Trainer
    if name in ("Config", "load_config"):
        from agentgym import config

        return getattr(config, name)
    raise AttributeError(f"module 'agentgym' has no attribute {name!r}")


import agentgym.envs  # noqa: E402,F401  (registers the built-in environments)
from agentgym.registry import load_plugins  # noqa: E402

load_plugins()  # environments of installed packages (entry-point group agentgym.envs)
