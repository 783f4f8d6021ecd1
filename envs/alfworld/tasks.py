"""One ALFWorld game from (scene, task type, random generator).

A game is what the official ``game.tw-pddl`` files hold: the PDDL domain, the grammar
with the task sentence in place of "UNKNOWN GOAL", and a PDDL problem: the scene's
receptacles at their locations, objects placed in receptacles that can hold them, and
the goal from ALFWorld's goal library. ``traj_data`` carries what ``AlfredTWEnv``
expects beside each game (task type and the goal's parameters).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from agentgym.envs.alfworld import TASK_TYPES
from agentgym.envs.alfworld import scenes as _scenes

# Room kinds each task type is played in (ALFRED's GOALS_VALID).
ROOMS_FOR_TYPE = {
    "pick_and_place_simple": {"Kitchen", "LivingRoom", "Bathroom", "Bedroom"},
    "pick_two_obj_and_place": {"Kitchen", "LivingRoom", "Bathroom", "Bedroom"},
    "look_at_obj_in_light": {"LivingRoom", "Bedroom"},
    "pick_clean_then_place_in_recep": {"Kitchen", "Bathroom"},
    "pick_heat_then_place_in_recep": {"Kitchen"},
    "pick_cool_then_place_in_recep": {"Kitchen"},
}
# The appliance a state-change task needs, and the object property it needs.
APPLIANCE = {"pick_clean_then_place_in_recep": ("SinkBasin", "Cleanable"),
             "pick_heat_then_place_in_recep": ("Microwave", "Heatable"),
             "pick_cool_then_place_in_recep": ("Fridge", "Coolable")}
MAX_INSTANCES = 3


class NoTaskError(ValueError):
    """This scene cannot host a task of this type."""


@dataclass
class GameSpec:
    task_type: str
    scene: int
    obj: str
    recep: str          # "" for look_at_obj_in_light
    toggle: str         # "" unless look_at_obj_in_light
    sentence: str
    problem: str
    objects: dict[str, str] = field(default_factory=dict)   # object id -> receptacle id

    @property
    def signature(self) -> tuple:
        return (self.task_type, self.obj, self.recep, self.toggle, self.scene)

    @property
    def folder_name(self) -> str:
        """Official naming: ``pick_and_place_simple-Apple-None-Fridge-10``."""
        target = self.toggle if self.task_type == "look_at_obj_in_light" else self.recep
        return f"{self.task_type}-{self.obj}-None-{target}-{self.scene}"

    def grammar(self) -> str:
        return _scenes.grammar_text().replace("UNKNOWN GOAL", self.sentence)

    def traj_data(self) -> dict:
        return {
            "task_type": self.task_type,
            "scene": {"floor_plan": f"FloorPlan{self.scene}", "scene_num": self.scene},
            "pddl_params": {"object_target": self.obj, "parent_target": self.recep,
                            "toggle_target": self.toggle, "mrecep_target": "",
                            "object_sliced": False},
            "turk_annotations": {"anns": [{"task_desc": self.sentence}]},
        }


def signature_split(signature: tuple, seen_eval_share: float = 0.2) -> str:
    """``train`` or ``eval_seen`` for a task signature in a seen scene (a fixed hash
    partition, so eval_seen tasks are new tasks without knowing the train suite)."""
    digest = hashlib.sha1(repr(signature).encode()).digest()
    return "eval_seen" if digest[0] / 256 < seen_eval_share else "train"


def _action_props() -> dict[str, set]:
    return _scenes.constants()["VAL_ACTION_OBJECTS"]


def _choose_targets(scene: _scenes.Scene, task_type: str, rng: random.Random,
                    accept) -> tuple[str, str, str]:
    """(object class, receptacle class, lamp class) for a task, or NoTaskError."""
    if scene.kind not in ROOMS_FOR_TYPE[task_type]:
        raise NoTaskError(f"{task_type} is not played in a {scene.kind}")
    fits = _scenes.constants()["VAL_RECEPTACLE_OBJECTS"]
    rclasses = scene.receptacle_classes()
    options = []
    if task_type == "look_at_obj_in_light":
        for lamp in scene.lamps:
            options += [(o, "", lamp) for o in scene.object_classes]
    else:
        needed_prop = None
        excluded = set()
        if task_type in APPLIANCE:
            appliance, needed_prop = APPLIANCE[task_type]
            if appliance not in rclasses:
                raise NoTaskError(f"no {appliance} in FloorPlan{scene.number}")
            excluded.add(appliance)
        for o in scene.object_classes:
            if needed_prop and o not in _action_props()[needed_prop]:
                continue
            holders = {r.cls for r in scene.holders(o)}
            for r in sorted(rclasses - excluded - set(_scenes.BASINS)):
                # the object must fit the target and also start somewhere else
                if o in fits.get(r, ()) and holders - {r}:
                    options.append((o, r, ""))
    options = [t for t in options if accept((task_type, t[0], t[1], t[2], scene.number))]
    if not options:
        raise NoTaskError(f"no {task_type} task in FloorPlan{scene.number}")
    return rng.choice(sorted(options))


def _goal_pddl(task_type: str, obj: str, recep: str, toggle: str) -> str:
    goal = _scenes.goal_library()[task_type]["pddl"].replace("#", "-")
    return goal.format(obj=obj, recep=recep, toggle=toggle)


def _sentence(task_type: str, obj: str, recep: str, toggle: str, rng: random.Random) -> str:
    template = rng.choice(_scenes.goal_library()[task_type]["templates"])
    return template.format(obj=obj.lower(), recep=recep.lower(), toggle=toggle.lower(),
                           mrecep="")


def build_game(scene_number: int, task_type: str, rng: random.Random,
               accept=lambda signature: True) -> GameSpec:
    """A game of ``task_type`` in ``scene_number``; ``accept(signature)`` filters targets."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}; choose from {', '.join(TASK_TYPES)}")
    scene = _scenes.load_scene(scene_number)
    obj, recep, toggle = _choose_targets(scene, task_type, rng, accept)

    # Object instances: every pickupable class of the scene, 1-3 of each (2-3 of the
    # target for pick-two), the lamp for look tasks. Target instances never start in a
    # receptacle of the goal's type, so no game is won at step 0.
    placements: dict[str, tuple[str, _scenes.Receptacle]] = {}
    counter = 0
    classes = list(scene.object_classes) + ([toggle] if toggle else [])
    for cls in classes:
        holders = scene.holders(cls)
        if cls == obj:
            holders = [h for h in holders if h.cls != recep]
            low = 2 if task_type == "pick_two_obj_and_place" else 1
            n = rng.randint(low, MAX_INSTANCES)
        elif cls == toggle:
            n = 1
        else:
            n = rng.randint(1, MAX_INSTANCES)
        if not holders:
            continue
        for _ in range(n):
            counter += 1
            placements[f"{cls}_bar_{counter}"] = (cls, rng.choice(holders))

    name = f"alfworld_{task_type}_{scene_number}"
    goal = _goal_pddl(task_type, obj, recep, toggle)
    problem = _problem_text(name, scene, placements, goal)
    return GameSpec(task_type, scene_number, obj, recep, toggle,
                    _sentence(task_type, obj, recep, toggle, rng), problem,
                    {oid: r.id for oid, (_, r) in placements.items()})


def _problem_text(name: str, scene: _scenes.Scene, placements: dict, goal: str) -> str:
    props = _action_props()
    otypes = sorted({cls for cls, _ in placements.values()})
    rtypes = sorted(scene.receptacle_classes())
    locations = sorted({r.location for r in scene.receptacles})
    fits = _scenes.constants()["VAL_RECEPTACLE_OBJECTS"]

    decl = ["agent1 - agent", "loc_bar_start - location"]
    decl += [f"{loc} - location" for loc in locations]
    decl += [f"{t}Type - otype" for t in otypes]
    decl += [f"{t}Type - rtype" for t in rtypes]
    decl += [f"{oid} - object" for oid in placements]
    decl += [f"{r.id} - receptacle" for r in scene.receptacles]

    init = ["(atLocation agent1 loc_bar_start)"]
    for r in scene.receptacles:
        init.append(f"(receptacleType {r.id} {r.cls}Type)")
        init.append(f"(receptacleAtLocation {r.id} {r.location})")
        if r.cls in _scenes.OPENABLE:
            init.append(f"(openable {r.id})")
    for rt in rtypes:
        for ot in otypes:
            if ot in fits.get(rt, ()) or (ot in _scenes.LAMPS and rt in _scenes.LAMP_HOLDERS):
                init.append(f"(canContain {rt}Type {ot}Type)")
    for oid, (cls, r) in placements.items():
        init.append(f"(objectType {oid} {cls}Type)")
        init.append(f"(inReceptacle {oid} {r.id})")
        init.append(f"(objectAtLocation {oid} {r.location})")
        if cls in _scenes.LAMPS:
            init.append(f"(toggleable {oid})")
            continue
        init.append(f"(pickupable {oid})")
        for prop, pred in (("Cleanable", "cleanable"), ("Heatable", "heatable"),
                           ("Coolable", "coolable"), ("Sliceable", "sliceable")):
            if cls in props[prop]:
                init.append(f"({pred} {oid})")

    return (f"(define (problem {name})\n(:domain alfred)\n(:objects\n  "
            + "\n  ".join(decl) + "\n)\n(:init\n  " + "\n  ".join(init) + "\n)\n"
            + goal.strip() + "\n")
