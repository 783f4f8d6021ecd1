"""The WebShop reward, as the original defines it (``web_agent_site/engine/goal.py``).

    score = r_type * (matched attributes + matched options + price ok)
                   / (goal attributes + goal options + 1)

- attribute: some product attribute has fuzzy token-set similarity > 85 with the goal
  attribute, else the goal attribute is a substring of the lower-cased title, bullet
  points or description;
- option: after colour normalisation, some chosen option value has token-set
  similarity > 85 with the goal option;
- price: the product price is at most the goal's upper bound;
- type (r_type): 1.0; 0.5 when neither the query, the category path (two or more
  shared levels) nor the title-noun overlap (> 0.2) matches; 0.1 when the overlap is
  below 0.1; 0.0 when it is zero.

Similarity is rapidfuzz's ``token_set_ratio`` with the default processor, rounded to an
integer as ``thefuzz`` (which the original calls) returns it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, utils

from agentgym.envs.webshop.nouns import title_nouns

# The original's colour list (normalize.py): an option is reduced to the first of these
# it contains, so "navy blue" and "blue" compare equal.
COLOR_SET = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige", "black",
    "blue", "blush", "bordeaux", "bronze", "brown", "burgundy", "camel", "camo", "caramel",
    "champagne", "charcoal", "cheetah", "chestnut", "chocolate", "christmas", "coffee",
    "cognac", "copper", "coral", "cranberry", "cream", "crystal", "dark", "denim",
    "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite", "grape", "graphite",
    "grass", "gray", "green", "grey", "heather", "indigo", "ivory", "ivy", "khaki",
    "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta", "maroon", "mauve",
    "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom", "mustard", "natural",
    "navy", "nude", "olive", "orange", "peach", "pewter", "pink", "plum", "purple",
    "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire", "seashell", "silver",
    "skull", "slate", "steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal",
    "tiger", "turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow",
)
MATCH_THRESHOLD = 85
NO_PRICE_BOUND = 1_000_000.0


def normalize_color(text: str) -> str:
    for color in COLOR_SET:
        if color in text:
            return color
    return text


def similarity(a: str, b: str) -> int:
    return int(round(fuzz.token_set_ratio(a, b, processor=utils.default_process)))


@dataclass(frozen=True)
class Goal:
    """What the shopper asked for. ``asin`` is the product the goal was made from."""

    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[str, ...]          # option values, e.g. ("black", "x-large")
    price_upper: float
    query: str
    category: str
    product_category: str
    name: str                              # the target product's title
    nouns: tuple[str, ...] | None = None   # the title's nouns when known


@dataclass(frozen=True)
class Score:
    total: float
    r_type: float
    r_att: float
    r_option: float | None
    r_price: bool
    query_match: bool
    category_match: bool
    title_score: float

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def type_reward(product, goal: Goal) -> tuple[float, bool, bool, float]:
    """(r_type, query_match, category_match, title_score)."""
    query_match = product.query == goal.query
    bought_path = {x.strip() for x in product.product_category.split("›")}
    goal_path = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(bought_path & goal_path) >= 2
    bought = set(product.nouns if product.nouns is not None else title_nouns(product.title))
    desired = set(goal.nouns if goal.nouns is not None else title_nouns(goal.name))
    title_score = len(bought & desired) / len(desired) if desired else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, query_match, category_match, title_score


def attribute_matches(product, goal: Goal) -> int:
    title = product.title.lower()
    bullets = " ".join(product.bullets).lower()
    description = product.description.lower()
    matched = 0
    for g_attr in goal.attributes:
        if any(similarity(p_attr, g_attr) > MATCH_THRESHOLD for p_attr in product.attributes):
            matched += 1
        elif g_attr in title or g_attr in bullets or g_attr in description:
            matched += 1
    return matched


def option_matches(chosen: list[str], goal_options: tuple[str, ...]) -> int:
    chosen_n = [normalize_color(o) for o in chosen]
    matched = 0
    for g_option in (normalize_color(o) for o in goal_options):
        if any(similarity(p, g_option) > MATCH_THRESHOLD for p in chosen_n):
            matched += 1
    return matched


def score(product, goal: Goal, chosen_options: dict[str, str]) -> Score:
    """The original's reward for buying ``product`` with ``chosen_options`` for ``goal``."""
    r_type, query_match, category_match, title_score = type_reward(product, goal)
    r_price = product.price <= goal.price_upper if goal.price_upper > 0 else None
    n_att = attribute_matches(product, goal)
    n_opt = option_matches(list(chosen_options.values()), goal.goal_options)
    denominator = len(goal.attributes) + len(goal.goal_options) + 1
    total = (n_att + n_opt + bool(r_price)) / denominator * r_type
    return Score(
        total=float(total), r_type=r_type,
        r_att=n_att / len(goal.attributes) if goal.attributes else 0.0,
        r_option=n_opt / len(goal.goal_options) if goal.goal_options else None,
        r_price=bool(r_price), query_match=query_match, category_match=category_match,
        title_score=title_score,
    )
