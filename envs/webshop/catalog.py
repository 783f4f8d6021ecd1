"""Products, and the seeded generator of a synthetic catalogue.

A ``Product`` carries the fields the original WebShop reads (title, description, bullet
points, price, options, attributes, category, query, product category path). Product
``i`` of a catalogue depends only on ``(seed, i)``, so a 1,000-product catalogue is the
first 1,000 products of the 100,000-product one with the same seed.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from agentgym.envs.webshop import vocab

GENERATOR_VERSION = 1
_ASIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASIN_SPACE = 36 ** 8
_ASIN_STRIDE = 1_000_003  # odd and not a multiple of 3: i -> i*stride is a bijection mod 36^8


@dataclass
class Product:
    asin: str
    title: str
    description: str
    bullets: list[str]
    price: float                      # the price the reward compares with the goal's bound
    price_tag: str                    # what the pages show: "$12.99" or "$10.0 to $20.0"
    options: dict[str, list[str]]     # option name -> values, lower case
    attributes: list[str]
    category: str                     # top level: beauty, food, fashion, ...
    query: str                        # the search query the product was collected under
    product_category: str             # "Beauty & Personal Care › Hair Care › Shampoos"
    nouns: tuple[str, ...] | None = None   # title nouns when known; else found by nouns.py
    reviews: list[dict] = field(default_factory=list)   # {"title", "score", "body"}
    rating: str = "N.A."

    def option_of(self, value: str) -> str | None:
        """The option name that ``value`` belongs to, or None."""
        for name, values in self.options.items():
            if value in values:
                return name
        return None


class Catalog:
    """An ordered product list with lookup by ASIN; ``key`` names it for caches."""

    def __init__(self, products: list[Product], key: str, source: str):
        self.products = products
        self.key = key
        self.source = source  # "generated" or the original data directory
        self.by_asin = {p.asin: p for p in products}
        if len(self.by_asin) != len(products):
            raise ValueError("catalogue has duplicate ASINs")

    def __len__(self) -> int:
        return len(self.products)


def make_asin(seed: int, index: int) -> str:
    n = (index * _ASIN_STRIDE + seed * 7_919 + 1_234_567_891) % _ASIN_SPACE
    chars = []
    for _ in range(8):
        n, r = divmod(n, 36)
        chars.append(_ASIN_ALPHABET[r])
    return "B0" + "".join(reversed(chars))


def _title_case(text: str) -> str:
    return " ".join(w if any(c.isdigit() for c in w) else w[:1].upper() + w[1:]
                    for w in text.split())


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


_BULLET_TEMPLATES = (
    "{A}: this {type} is {attr}, made for everyday use.",
    "{A} - designed to be {attr} without compromise.",
    "{A}: tested to stay {attr}, wash after wash and day after day.",
    "Why {attr}? {Brand} builds every {type} to be {attr}.",
)
_DESCRIPTION_OPENERS = (
    "Meet the {brand} {type}.", "Introducing the {brand} {type}.",
    "The {brand} {type} is here.", "Upgrade to the {brand} {type}.",
)


def generate_product(seed: int, index: int) -> Product:
    """Product ``index`` of the catalogue with ``seed``."""
    rng = random.Random((seed << 40) ^ (index * 2_654_435_761) ^ GENERATOR_VERSION)
    ptype = vocab.PRODUCT_TYPES[rng.randrange(len(vocab.PRODUCT_TYPES))]
    brand = rng.choice(vocab.BRAND_HEADS) + rng.choice(vocab.BRAND_TAILS)
    attributes = rng.sample(ptype.attributes, k=rng.randint(2, min(4, len(ptype.attributes))))

    options: dict[str, list[str]] = {}
    if rng.random() < 0.92:
        for name, pool in ptype.options:
            if rng.random() < 0.85:
                k = rng.randint(2, min(6, len(pool)))
                chosen = set(rng.sample(range(len(pool)), k))
                options[name] = [v for i, v in enumerate(pool) if i in chosen]

    use = rng.choice(ptype.uses) if ptype.uses and rng.random() < 0.6 else ""
    words = [brand]
    if rng.random() < 0.4:
        words.append(rng.choice(vocab.QUALITY_WORDS))
    words.append(_title_case(attributes[0]))
    words.append(_title_case(ptype.name))
    if use:
        words.append(use)
    title = " ".join(words)
    if len(attributes) > 1 and rng.random() < 0.7:
        title += ", " + _title_case(attributes[1])
    if "size" in options and len(options["size"]) == 2 and rng.random() < 0.3:
        title += f" - {options['size'][0]}"

    bullets = []
    for attr in attributes:
        template = rng.choice(_BULLET_TEMPLATES)
        bullets.append(template.format(A=attr.upper(), attr=attr, type=ptype.name,
                                       Brand=brand))
    if options:
        listed = "; ".join(f"{name}: {', '.join(vals)}" for name, vals in options.items())
        bullets.append(f"AVAILABLE OPTIONS - {listed}.")
    if use:
        bullets.append(f"MADE {use.upper()}: a {ptype.name} that fits your routine.")
    rng.shuffle(bullets)

    description = " ".join([
        rng.choice(_DESCRIPTION_OPENERS).format(brand=brand, type=ptype.name),
        f"It is {' and '.join(attributes[:2])}"
        + (f", and works {use[4:]}" if use.startswith("for ") else "") + ".",
        f"Every {ptype.name} from {brand} ships in recyclable packaging"
        f" and comes with a 30-day return policy.",
    ])

    low, high = ptype.price
    price = max(round(rng.uniform(low, high)) - 0.01, 0.99)

    reviews = []
    for _ in range(rng.randint(0, 4)):
        score = rng.choices((5, 4, 3, 2, 1), weights=(40, 30, 15, 8, 7))[0]
        option_values = [v for vals in options.values() for v in vals]
        reviews.append({
            "title": rng.choice(vocab.REVIEW_TITLES[score]),
            "score": score,
            "body": rng.choice(vocab.REVIEW_BODIES[score]).format(
                type=ptype.name, attr=rng.choice(attributes),
                option=rng.choice(option_values) if option_values else "default"),
        })
    rating = f"{sum(r['score'] for r in reviews) / len(reviews):.1f}" if reviews else "N.A."

    department = vocab.DEPARTMENTS[ptype.category]
    return Product(
        asin=make_asin(seed, index),
        title=title,
        description=description,
        bullets=bullets,
        price=price,
        price_tag=f"${price:.2f}",
        options=options,
        attributes=attributes,
        category=ptype.category,
        query=ptype.name,
        product_category=" › ".join((department,) + ptype.path),
        nouns=(brand.lower(),) + ptype.nouns,
        reviews=reviews,
        rating=rating,
    )


_cache: dict[tuple[int, int], Catalog] = {}
_cache_lock = threading.Lock()
#: Catalogues at least this large are also cached on disk (generating 100,000 products
#: takes tens of seconds; loading them back about one).
DISK_CACHE_MIN_PRODUCTS = 20_000


def _disk_path(cache_dir: str | Path | None, key: str) -> Path:
    if cache_dir is None:
        from agentgym.envs.webshop.search import default_cache_dir
        cache_dir = default_cache_dir()
    return Path(cache_dir) / f"catalog-{key}.pkl"


def _generate(num_products: int, seed: int, cache_dir) -> Catalog:
    key = f"gen{GENERATOR_VERSION}-s{seed}-n{num_products}"
    path = _disk_path(cache_dir, key) if num_products >= DISK_CACHE_MIN_PRODUCTS else None
    if path is not None and path.is_file():
        with open(path, "rb") as f:
            return Catalog(pickle.load(f), key=key, source="generated")
    products = [generate_product(seed, i) for i in range(num_products)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(products, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)   # atomic publish
    return Catalog(products, key=key, source="generated")


def generate_catalog(num_products: int = 1000, seed: int = 0,
                     cache_dir: str | Path | None = None) -> Catalog:
    """The synthetic catalogue of ``num_products`` products for ``seed``: cached per
    process, and on disk (``cache_dir``) from ``DISK_CACHE_MIN_PRODUCTS`` products up."""
    if isinstance(num_products, bool) or not isinstance(num_products, int) or num_products < 1:
        raise ValueError(f"num_products must be a positive integer, got {num_products!r}")
    with _cache_lock:
        cached = _cache.get((seed, num_products))
        if cached is None:
            cached = _cache[(seed, num_products)] = _generate(num_products, seed, cache_dir)
        return cached
