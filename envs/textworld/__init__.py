"""TextWorld games generated offline from seeds: ``agentgym/TextWorld-v0``.

Importing this package does not import textworld; the environment class lives in
``agentgym.envs.textworld.env`` and game generation/caching in ``.games``.
"""

FAMILIES = ("simple", "custom", "cooking", "treasure_hunter")

__all__ = ["FAMILIES"]
