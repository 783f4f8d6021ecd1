"""Room layouts built from the scene data shipped in the ``alfworld`` package.

Each AI2-THOR floor plan ships ``FloorPlanN-objects.json`` (the object classes present)
and ``FloorPlanN-openable.json`` (receptacle instances with the pose the agent takes to
use them). A :class:`Scene` holds the receptacles of one floor plan and the object
classes that can be placed in it; ALFWorld's own compatibility table
(``VAL_RECEPTACLE_OBJECTS``) says which object goes in which receptacle.

The alfworld package is read from disk, never imported: importing it creates
``~/.cache/alfworld`` and overwrites ``$ALFWORLD_DATA``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import runpy
from dataclasses import dataclass
from pathlib import Path

from agentgym.errors import AgentGymError

# Floor-plan numbers: kitchens 1-30, living rooms 201-230, bedrooms 301-330,
# bathrooms 401-430. ALFRED holds out 1-6 of each kind (its test scenes): we use those
# for eval_unseen and the rest for train / eval_seen.
ROOM_KINDS = {"Kitchen": range(1, 31), "LivingRoom": range(201, 231),
              "Bedroom": range(301, 331), "Bathroom": range(401, 431)}
UNSEEN_SCENES = tuple(n for r in ROOM_KINDS.values() for n in list(r)[:6])
SEEN_SCENES = tuple(n for r in ROOM_KINDS.values() for n in list(r)[6:])

LAMPS = ("DeskLamp", "FloorLamp")
# Receptacles a lamp stands on/in; lamps are toggleable, not pickupable.
LAMP_HOLDERS = ("SideTable", "Desk", "Dresser", "Shelf", "CoffeeTable", "DiningTable",
                "TVStand", "ArmChair", "Sofa", "Bed")
OPENABLE = frozenset({"Fridge", "Cabinet", "Microwave", "Drawer", "Safe", "Box"})
BASINS = ("SinkBasin", "BathtubBasin")


class AlfworldMissingError(AgentGymError, ImportError):
    """The alfworld package (scene data, PDDL domain, grammar) is not installed."""


@functools.lru_cache(maxsize=1)
def package_dir() -> Path:
    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        from agentgym.install import install_command

        raise AlfworldMissingError(
            f"ALFWorld needs the alfworld package: {install_command('alfworld')} "
            "(it compiles for a few minutes)")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def constants() -> dict:
    """``alfworld/gen/constants.py`` as a dict (run from its file, see module doc)."""
    return runpy.run_path(str(package_dir() / "gen" / "constants.py"))


@functools.lru_cache(maxsize=1)
def goal_library() -> dict:
    """``gdict`` from ``alfworld/gen/goal_library.py``: goal PDDL and sentence templates."""
    return runpy.run_path(str(package_dir() / "gen" / "goal_library.py"))["gdict"]


@functools.lru_cache(maxsize=1)
def domain_text() -> str:
    return (package_dir() / "data" / "alfred.pddl").read_text()


@functools.lru_cache(maxsize=1)
def grammar_text() -> str:
    return (package_dir() / "data" / "alfred.twl2").read_text()


def room_kind(scene: int) -> str:
    for kind, numbers in ROOM_KINDS.items():
        if scene in numbers:
            return kind
    raise ValueError(f"no floor plan {scene}")


def mangle(name: str) -> str:
    """ALFRED's id spelling for PDDL: ``Cabinet|+00.68|-02.20`` -> ``Cabinet_bar__plus_00_dot_68...``."""
    for a, b in (("|", "_bar_"), ("-", "_minus_"), ("+", "_plus_"), (".", "_dot_"),
                 (",", "_comma_")):
        name = name.replace(a, b)
    return name


@dataclass(frozen=True)
class Receptacle:
    id: str          # mangled PDDL name
    cls: str         # type without "Type", e.g. "SinkBasin"
    location: str    # PDDL location name


@dataclass(frozen=True)
class Scene:
    number: int
    kind: str
    receptacles: tuple[Receptacle, ...]
    object_classes: tuple[str, ...]      # pickupable classes that fit some receptacle here
    lamps: tuple[str, ...]               # lamp classes present

    def receptacle_classes(self) -> set[str]:
        return {r.cls for r in self.receptacles}

    def holders(self, obj_cls: str) -> list[Receptacle]:
        """Receptacles an object of class ``obj_cls`` can be in."""
        if obj_cls in LAMPS:
            return [r for r in self.receptacles if r.cls in LAMP_HOLDERS]
        fits = constants()["VAL_RECEPTACLE_OBJECTS"]
        return [r for r in self.receptacles if obj_cls in fits.get(r.cls, ())]


def _location_name(pose: list) -> str:
    x, z, rot, horizon = (round(float(pose[0]) * 4), round(float(pose[1]) * 4),
                          int(pose[2]) // 90, int(pose[3]))
    return "loc" + "".join(mangle(f"|{v}") for v in (x, z, rot, horizon))


@functools.cache
def load_scene(number: int) -> Scene:
    layouts = package_dir() / "gen" / "layouts"
    objects_file = layouts / f"FloorPlan{number}-objects.json"
    if not objects_file.is_file():
        raise ValueError(f"the alfworld package has no scene data for FloorPlan{number}")
    present = json.loads(objects_file.read_text())
    poses = json.loads((layouts / f"FloorPlan{number}-openable.json").read_text())
    c = constants()
    static = set(c["RECEPTACLES"]) - set(c["MOVABLE_RECEPTACLES"])

    receptacles: list[Receptacle] = []
    used_locations: set[str] = set()

    def add(rid: str, cls: str, location: str) -> None:
        base, k = location, 1
        while location in used_locations:  # one receptacle per location
            k += 1
            location = f"{base}_bar_{k}"
        used_locations.add(location)
        receptacles.append(Receptacle(mangle(rid), cls, location))

    for key in sorted(poses):
        parts = key.split("|")
        cls = parts[-1] if parts[-1] in BASINS else parts[0]
        if cls not in static:
            continue
        add(key, cls, _location_name(poses[key]))
    # Receptacles the pose file leaves out (stove burners, toasters, bins, ...): one each.
    have = {r.cls for r in receptacles}
    for i, cls in enumerate(sorted(set(present) & static - have)):
        count = 4 if cls == "StoveBurner" else 1
        for k in range(count):
            add(f"{cls}|synth|{k + 1}", cls, f"loc_bar_synth_bar_{i}_bar_{k}")

    fits = c["VAL_RECEPTACLE_OBJECTS"]
    rcls = {r.cls for r in receptacles}
    pickable = sorted(o for o in set(present)
                      if o in c["OBJECTS"] and o not in static and o not in LAMPS
                      and any(o in fits[r] for r in rcls if r in fits))
    lamps = tuple(sorted(lamp for lamp in LAMPS if lamp in present
                         and any(r.cls in LAMP_HOLDERS for r in receptacles)))
    return Scene(number, room_kind(number), tuple(receptacles), tuple(pickable), lamps)


def available_scenes() -> list[int]:
    layouts = package_dir() / "gen" / "layouts"
    numbers = sorted(int(m.group(1)) for p in layouts.glob("FloorPlan*-objects.json")
                     if (m := re.match(r"FloorPlan(\d+)-objects", p.name)))
    return numbers
