"""The original WebShop data, when a user has a copy.

Point ``data_dir`` (the ``WebShop-v0`` option) at a directory holding the files that
the original's ``setup.sh`` downloads into ``data/``:

- ``items_shuffle_1000.json`` or ``items_shuffle.json``: the products;
- ``items_ins_v2_1000.json`` or ``items_ins_v2.json``: attributes per ASIN;
- ``items_human_ins.json``: the human-written instructions (goals).

Loading follows the original's ``load_products`` and ``get_human_goals``: titles from
``name``, descriptions from ``full_description``, bullet points from
``small_description``, prices parsed from ``pricing`` (a range gives a seeded uniform
draw), option values lower-cased with "/" shown as " | ", products without
attributes get ``DUMMY_ATTR``; goals with no attributes are skipped, the price bound is
drawn from the four multiples of ten above the price, and the goals are shuffled with
seed 233 and split as the original's baselines do (first 500 test, next 1,000 eval,
the rest train).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from decimal import Decimal
from pathlib import Path

from agentgym.envs.webshop.catalog import Catalog, Product
from agentgym.envs.webshop.goals import price_bound
from agentgym.envs.webshop.reward import NO_PRICE_BOUND, Goal

PRODUCT_FILES = ("items_shuffle_1000.json", "items_shuffle.json")
ATTRIBUTE_FILES = ("items_ins_v2_1000.json", "items_ins_v2.json")
HUMAN_GOALS_FILE = "items_human_ins.json"
SPLIT_RANGES = {"test": (0, 500), "eval": (500, 1500), "train": (1500, None)}


class OriginalDataError(ValueError):
    pass


def _find(directory: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise OriginalDataError(f"{directory} has none of {', '.join(names)}; download the "
                            f"original WebShop data (its setup.sh) or leave data_dir unset "
                            f"to use a generated catalogue")


def _pricing(text) -> tuple[list[float], str]:
    if not text:
        return [100.0], "$100.0"
    values = [float(Decimal(re.sub(r"[^\d.]", "", part))) for part in str(text).split("$")[1:]]
    if not values:
        return [100.0], "$100.0"
    if len(values) == 1:
        return values, f"${values[0]}"
    return values[:2], f"${values[0]} to ${values[1]}"


def data_files(data_dir: str | Path) -> tuple[Path, Path, Path]:
    directory = Path(data_dir).expanduser()
    if not directory.is_dir():
        raise OriginalDataError(f"data_dir {directory} is not a directory")
    return (_find(directory, PRODUCT_FILES), _find(directory, ATTRIBUTE_FILES),
            _find(directory, (HUMAN_GOALS_FILE,)))


def load_original(data_dir: str | Path, num_products: int | None = None,
                  seed: int = 0) -> tuple[Catalog, list[Goal]]:
    """The catalogue and all human goals (in the original's shuffled order)."""
    product_file, attr_file, goal_file = data_files(data_dir)
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                     for p in (product_file, attr_file, goal_file))
    key = "orig-" + hashlib.sha256(f"{stamp}|{num_products}|{seed}".encode()).hexdigest()[:16]
    raw = json.loads(product_file.read_text())
    attributes = json.loads(attr_file.read_text())
    human = json.loads(goal_file.read_text())
    if num_products is not None:
        raw = raw[:num_products]
    rng = random.Random(seed)

    products: list[Product] = []
    seen: set[str] = set()
    for p in raw:
        asin = str(p.get("asin", ""))
        if asin == "nan" or not asin or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        pricing, tag = _pricing(p.get("pricing"))
        price = pricing[0] if len(pricing) == 1 else rng.uniform(*pricing[:2])
        options = {}
        for name, contents in (p.get("customization_options") or {}).items():
            if contents is None:
                continue
            options[name.lower()] = [c["value"].strip().replace("/", " | ").lower()
                                     for c in contents]
        bullets = p.get("small_description")
        products.append(Product(
            asin=asin, title=p["name"], description=p.get("full_description") or "",
            bullets=bullets if isinstance(bullets, list) else [bullets or ""],
            price=price, price_tag=tag, options=options,
            attributes=list(attributes.get(asin, {}).get("attributes") or ["DUMMY_ATTR"]),
            category=p.get("category", ""), query=str(p.get("query", "")).lower().strip(),
            product_category=p.get("product_category", ""),
        ))
    catalog = Catalog(products, key=key, source=str(Path(data_dir)))

    goals: list[Goal] = []
    for product in products:
        for ins in human.get(product.asin, []):
            attrs = ins.get("instruction_attributes") or []
            if not attrs:
                continue
            upper = price_bound(product.price, rng)
            price_text = f", and price lower than {upper:.2f} dollars" if upper < NO_PRICE_BOUND else ""
            goals.append(Goal(
                asin=product.asin,
                instruction_text=ins["instruction"].strip(".") + price_text,
                attributes=tuple(attrs), goal_options=tuple(ins.get("instruction_options") or ()),
                price_upper=upper, query=product.query, category=product.category,
                product_category=product.product_category, name=product.title))
    random.Random(233).shuffle(goals)
    return catalog, goals


def split_goals(goals: list[Goal], split: str) -> list[Goal]:
    start, stop = SPLIT_RANGES[split]
    return goals[start:stop]
