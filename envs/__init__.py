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
    system="You play a text adventure game. Reply with one command from the list of "
           "commands, written as <action>command</action>. Example: if the commands are "
           "'open door, take apple, look' and the goal is to eat the apple, reply "
           "<action>take apple</action>.",
    task="Goal: {task}",
    observation="{observation}",
    admissible="Commands: {actions}",
    instruction_plain="Your command:",
    instruction_think="Think briefly inside <think> </think>, then give your command as "
                      "<action>command</action>.",
))
