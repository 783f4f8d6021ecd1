"""The admissible actions an environment lists: a bounded, deterministic selection from the
engine's valid actions.

The engine lists every valid (action template, objects) combination: ~400 in the starting
hallway, ~2,700 in the kitchen, most of them two-object templates (``connect A to B`` alone
is 1,700). A prompt cannot hold that, so ``select`` keeps at most ``limit`` of them with
every kind of action represented: it takes the first action (alphabetically) of every
template, then the second of every template that has one, and so on, until ``limit``
are chosen. Templates with few actions (go to, open, activate, look around, inventory,
the number choices of an ambiguous request) are therefore always listed whole.
Any valid action can still be typed; the list is what a policy is shown and what the
random baseline samples from.
"""

from __future__ import annotations

from collections import defaultdict

#: Template texts the environment does not list or accept: ``reset task`` restarts the
#: episode inside the engine (``reset()`` is the way to do that here).
REFUSED = ("reset task",)


def select(valid: list[tuple[str, int]], limit: int | None) -> list[str]:
    """At most ``limit`` (all when None) of ``valid`` (text, template id) pairs, sorted."""
    groups: dict[int, set[str]] = defaultdict(set)
    seen: set[str] = set()
    for text, template in sorted(valid, key=lambda pair: (pair[1], pair[0])):
        if text not in REFUSED and text not in seen:  # once, in its lowest template id
            seen.add(text)
            groups[template].add(text)
    if limit is None or len(seen) <= limit:
        return sorted(seen)
    ordered = [sorted(texts) for _, texts in sorted(groups.items())]
    chosen: list[str] = []
    for depth in range(max(map(len, ordered))):
        for group in ordered:
            if depth < len(group):
                chosen.append(group[depth])
                if len(chosen) == limit:
                    return sorted(chosen)
    return sorted(chosen)
