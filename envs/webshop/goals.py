"""Shopping goals made from catalogue products.

Goal ``i`` of a split is made from one product, picked and phrased by a generator seeded
with ``(catalogue key, split, i)``: some of the product's attributes, a value for some of
its options, and a price bound drawn as the original draws it (two of the first four
multiples of ten above the price, keep the larger). The product itself satisfies its
goal fully; ``make_goal`` checks that by scoring it.
"""

from __future__ import annotations

import hashlib
import random

from agentgym.envs.webshop.catalog import Catalog, Product
from agentgym.envs.webshop.reward import NO_PRICE_BOUND, Goal, score

PRICE_RANGE = [10.0 * i for i in range(1, 100)]
SPLITS = ("train", "eval", "test")

_OPENERS = ("i'm looking for", "i need", "i want", "find me", "i would like", "can you find",
            "show me", "get me", "i am searching for", "help me find", "i'd like to buy",
            "please find", "looking for")


def price_bound(price: float, rng: random.Random) -> float:
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return NO_PRICE_BOUND
    return sorted(rng.sample(above, 2))[1]


def _article(type_name: str, rng: random.Random) -> str:
    if type_name.endswith("s") and not type_name.endswith("ss"):
        return rng.choice(("some", "a pack of", "")) if "chips" in type_name else "some"
    return "an" if type_name[0] in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _option_phrase(name: str, value: str, rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"{name}: {value}"
    if name == "color":
        return rng.choice((f"in {value} color", f"in the color {value}", f"in a {value} shade"))
    if name == "size":
        return rng.choice((f"in size {value}", f"in {value} size", f"size {value}"))
    if name == "flavor name":
        return rng.choice((f"with {value} flavor", f"in {value} flavor"))
    if name == "scent":
        return rng.choice((f"with a {value} scent", f"in {value} scent"))
    return f"with {name} {value}"


def phrase(product: Product, attributes: list[str], options: list[tuple[str, str]],
           rng: random.Random) -> str:
    """A natural instruction (without the price clause) for these requirements."""
    type_name = product.query
    article = _article(type_name, rng)
    opener = rng.choice(_OPENERS)
    style = rng.randrange(4)
    plural = type_name.endswith("s") and not type_name.endswith("ss")
    verb = rng.choice(("that are" if plural else "that is", "with", "featuring"))
    if style == 0:      # "a sulfate free shampoo that is paraben free"
        head = f"{article} {attributes[0]} {type_name}".strip()
        rest = f" {verb} {_join(attributes[1:])}" if len(attributes) > 1 else ""
    elif style == 1:    # "a shampoo that is sulfate free and paraben free"
        head, rest = f"{article} {type_name}".strip(), f" {verb} {_join(attributes)}"
    elif style == 2:    # "a shampoo, sulfate free, paraben free"
        head, rest = f"{article} {type_name}".strip(), ", " + ", ".join(attributes)
    else:               # "sulfate free and paraben free shampoo"
        head, rest = f"{_join(attributes)} {type_name}", ""
    text = f"{opener} {head}{rest}"
    if options:
        parts = [_option_phrase(n, v, rng) for n, v in options]
        if parts[0].startswith(("in ", "with ")):
            text += " " + ", and ".join(parts)
        else:
            text += " with " + ", and ".join(parts)
    return text


def make_goal(catalog: Catalog, split: str, index: int) -> Goal:
    """Goal ``index`` of ``split`` for a generated catalogue."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    digest = hashlib.sha256(f"{catalog.key}|{split}|{index}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    product = catalog.products[rng.randrange(len(catalog))]
    attributes = rng.sample(product.attributes, k=rng.randint(1, min(3, len(product.attributes))))
    options = [(name, rng.choice(values)) for name, values in product.options.items()
               if rng.random() < 0.8]
    upper = price_bound(product.price, rng)
    text = phrase(product, attributes, options, rng)
    if upper < NO_PRICE_BOUND:
        text += f", and price lower than {upper:.2f} dollars"
    goal = Goal(
        asin=product.asin, instruction_text=text, attributes=tuple(attributes),
        goal_options=tuple(v for _, v in options), price_upper=upper, query=product.query,
        category=product.category, product_category=product.product_category,
        name=product.title, nouns=product.nouns,
    )
    chosen = dict(options)
    result = score(product, goal, chosen)
    if result.total != 1.0:  # a generator bug, never a user error
        raise AssertionError(f"goal {split}/{index} is not satisfied by its own product: {result}")
    return goal
