"""The scripted oracle: an action list that buys a product scoring 1.0 for the goal.

It searches the goal product's title, walks the result pages to the first product that
fully satisfies the goal (usually the goal product itself), picks the option values
that match the goal's options, and buys. Every step is a real action on the shop.
"""

from __future__ import annotations

from agentgym.envs.webshop.catalog import Product
from agentgym.envs.webshop.reward import Goal, normalize_color, score, similarity, MATCH_THRESHOLD
from agentgym.envs.webshop.shop import PRODUCT_WINDOW, SearchEngine


def matching_options(product: Product, goal: Goal) -> dict[str, str]:
    """For each goal option, a value of ``product`` that the reward counts as a match."""
    chosen: dict[str, str] = {}
    for wanted in goal.goal_options:
        best = None
        for name, values in product.options.items():
            if name in chosen:
                continue
            for v in values:
                if v == wanted:
                    best = (name, v)
                    break
                if best is None and similarity(normalize_color(v), normalize_color(wanted)) > MATCH_THRESHOLD:
                    best = (name, v)
            if best is not None and best[1] == wanted:
                break
        if best is not None:
            chosen[best[0]] = best[1]
    return chosen


def oracle_actions(engine: SearchEngine, goal: Goal, queries: list[str] | None = None) -> list[str] | None:
    """Actions from the search page to a purchase scoring 1.0, or None if none is found."""
    target = engine.catalog.by_asin.get(goal.asin)
    candidates = queries or ([target.title.lower()] if target is not None else [])
    candidates = candidates + [goal.instruction_text.lower()]
    for query in candidates:
        for rank, product in enumerate(engine.search(query)):
            options = matching_options(product, goal)
            if score(product, goal, options).total != 1.0:
                continue
            actions = [f"search[{query}]"]
            actions += ["click[next >]"] * (rank // PRODUCT_WINDOW)
            actions.append(f"click[{product.asin.lower()}]")
            actions += [f"click[{v}]" for v in options.values()]
            actions.append("click[buy now]")
            return actions
    return None
