"""The planner expert for ALFWorld's six task types.

A task-structured planner: from the game's initial facts it finds the target objects,
where they are, the appliance and the destination, and writes the command sequence
(go, open, take, heat/cool/clean or use the lamp, go, open, move). A plan is only trusted
after it was played through the engine and won (``suite.prove_solvable``).

Fast Downward (``FastPddlEnv.plan``) plans any PDDL goal, but on ALFWorld-sized scenes
(40-60 receptacles) its search takes from seconds to minutes per game; this planner
takes milliseconds and its plans are at most a few steps longer than optimal.
"""

from __future__ import annotations

from collections import defaultdict

APPLIANCE_VERB = {"pick_clean_then_place_in_recep": ("sinkbasin", "clean"),
                  "pick_heat_then_place_in_recep": ("microwave", "heat"),
                  "pick_cool_then_place_in_recep": ("fridge", "cool")}


class _Facts:
    def __init__(self, facts, names: dict[str, str]):
        self.names = names
        self.by_pred: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for f in facts:
            self.by_pred[f.name].append(tuple(v.name for v in f.arguments))

    def of_type(self, pred: str, type_name: str) -> list[str]:
        t = type_name.lower() + "type"
        return sorted((a[0] for a in self.by_pred[pred] if a[1] == t), key=self.names.get)

    def holder(self, obj: str) -> str | None:
        return next((a[1] for a in self.by_pred["inreceptacle"] if a[0] == obj), None)

    def has(self, pred: str, *args: str) -> bool:
        return tuple(args) in self.by_pred[pred]


def plan(task_type: str, obj: str, recep: str, toggle: str, facts, names: dict[str, str]) -> list[str]:
    """Commands that should win the game from the state given by ``facts``.

    ``obj``, ``recep``, ``toggle`` are class names as in ``traj_data`` (e.g. "Mug");
    ``names`` maps PDDL ids to display names (the engine's entity names).
    """
    F = _Facts(facts, names)
    opened: set[str] = {a[0] for a in F.by_pred["opened"]}
    commands: list[str] = []
    n = names.get

    def go_and_open(r: str) -> None:
        commands.append(f"go to {n(r)}")
        if F.has("openable", r) and r not in opened:
            commands.append(f"open {n(r)}")
            opened.add(r)

    def fetch(o: str) -> None:
        src = F.holder(o)
        if src is None:
            raise ValueError(f"{n(o)} is in no receptacle")
        go_and_open(src)
        commands.append(f"take {n(o)} from {n(src)}")

    dests = F.of_type("receptacletype", recep) if recep else []
    # prefer a destination that needs no opening
    dests.sort(key=lambda r: (F.has("openable", r), n(r)))
    goal_holders = set(dests)
    candidates = [o for o in F.of_type("objecttype", obj) if F.holder(o) not in goal_holders]
    if task_type == "look_at_obj_in_light":
        lamps = [lamp for lamp in F.of_type("objecttype", toggle) if F.holder(lamp)]
        if not candidates or not lamps:
            raise ValueError("no object or lamp for the look task")
        fetch(candidates[0])
        commands.append(f"go to {n(F.holder(lamps[0]))}")
        commands.append(f"use {n(lamps[0])}")
        return commands
    if not dests:
        raise ValueError(f"no {recep} in the scene")
    needed = 2 if task_type == "pick_two_obj_and_place" else 1
    if len(candidates) < needed:
        raise ValueError(f"fewer than {needed} {obj} outside the destination")
    for o in candidates[:needed]:
        fetch(o)
        if task_type in APPLIANCE_VERB:
            kind, verb = APPLIANCE_VERB[task_type]
            appliances = F.of_type("receptacletype", kind)
            if not appliances:
                raise ValueError(f"no {kind} in the scene")
            commands.append(f"go to {n(appliances[0])}")
            commands.append(f"{verb} {n(o)} with {n(appliances[0])}")
        go_and_open(dests[0])
        commands.append(f"move {n(o)} to {n(dests[0])}")
    return commands
