"""Built-in environment families. Registration is by entry-point string, so importing
agentgym does not import any environment's dependencies."""

from agentgym.prompting import PromptTemplate, register_template
from agentgym.registry import register

register(
    "agentgym/TextWorld-v0",
    entry_point="agentgym.envs.textworld.env:TextWorldEnv",
    kwargs={"family": "simple", "split": "train"},
    max_episode_steps=50,
    description="TextWorld games generated offline from seeds (families: simple, "
                "custom, cooking, treasure_hunter)",
)
register_template("agentgym/TextWorld-v0", PromptTemplate(
    system="You are playing a text adventure game. Read what the game says, then type one "
           "command to move closer to the goal.",
    task="Goal: {task}",
    admissible="Commands you can type now: {actions}",
))
