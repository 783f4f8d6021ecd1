"""Moved to :mod:`agentgym.rollout.envpool`; this name keeps old imports working."""

from agentgym.rollout.envpool import *  # noqa: F401,F403
from agentgym.rollout.envpool import BACKENDS, EnvMaker, EnvPool, Outcome, ProcessEnvPool, resolve_backend  # noqa: F401
