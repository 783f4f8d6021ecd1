"""ALFWorld on the real alfworld/textworld engine: ``agentgym/ALFWorld-v0``.

Importing this package imports neither alfworld nor textworld. Modules:

- ``scenes``: room layouts built from the scene data shipped in the alfworld package;
- ``tasks``: one PDDL game (problem, grammar, task sentence) per (scene, task type, seed);
- ``engine``: the stock textworld PDDL engine, and our faster one with identical output;
- ``suite``: task suites (train / eval_seen / eval_unseen), generated once and cached,
  and the official data layout;
- ``env``: the Gymnasium environment.
"""

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)
SPLITS = ("train", "eval_seen", "eval_unseen")

__all__ = ["SPLITS", "TASK_TYPES"]
