"""One shopping session: the pages, the clickable elements on each, and what a click does.

This is the browser-and-server of the original WebShop in one object. A page is a list
of ``Segment``s; the text observation is their texts joined by " [SEP] " (what the
original's ``text`` mode extracts from its HTML) and ``html.py`` renders the same
segments as a web page, so a person in a browser sees exactly what the agent sees.

Actions (original semantics):

- ``search[keywords]`` on the search page runs a search and shows results page 1;
- ``click[x]`` where ``x`` (case-insensitive) is a clickable of the current page:
  ``back to search``, ``next >``, ``< prev``, a product ID on a results page, an option
  value, ``description``, ``features``, ``reviews`` or ``buy now`` on an item page;
- anything else changes nothing (``Shop.act`` returns False).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agentgym.envs.webshop.catalog import Catalog, Product
from agentgym.envs.webshop.reward import Goal, Score, score
from agentgym.envs.webshop.search import SearchEngine

PRODUCT_WINDOW = 10
SEP = " [SEP] "
BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, BUY_NOW = "Back to Search", "Next >", "< Prev", "Buy Now"
SUB_PAGES = ("Description", "Features", "Reviews")
SEARCH_PLACEHOLDER = "search[<your query>]"
_ACTION = re.compile(r"(.+)\[(.+)\]", re.DOTALL)


@dataclass(frozen=True)
class Segment:
    """One visible piece of a page. ``kind``: text, button, product, option, search."""

    kind: str
    text: str
    group: str = ""          # the option name, for options
    selected: bool = False   # an option currently chosen (HTML shows it; text does not)


def parse_action(action: str) -> tuple[str, str | None]:
    """``"click[Buy Now]"`` -> ``("click", "Buy Now")``; no brackets -> ``(action, None)``."""
    m = _ACTION.match(action.strip())
    if m is None:
        return action.strip(), None
    return m.group(1).strip().lower(), m.group(2).strip()


@dataclass
class Shop:
    """The state of one session: which page, what was searched, chosen, bought."""

    catalog: Catalog
    engine: SearchEngine
    goal: Goal
    page: str = "search"            # search, results, item, sub, done
    keywords: str = ""
    page_no: int = 1
    results: list[Product] = field(default_factory=list)
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str | None = None
    result: Score | None = None
    bought: str | None = None

    # ------------------------------------------------------------------ actions

    def act(self, action: str) -> bool:
        """Apply ``action``; False (and no change) when it is not available here."""
        name, arg = parse_action(action)
        if arg is None:
            return False
        if name == "search":
            if self.page != "search" or not arg.strip():
                return False
            self._search(arg.lower())
            return True
        if name != "click":
            return False
        target = self.clickables().get(arg.lower())
        if target is None:
            return False
        kind, value = target
        if kind == "back":
            self._reset_to_search()
        elif kind == "next":
            self._show_results(self.page_no + 1)
        elif kind == "prev":
            if self.page == "results":
                self._show_results(self.page_no - 1)
            elif self.page == "item":
                self._show_results(self.page_no)
            else:  # a sub page goes back to its item page
                self.page, self.sub_page = "item", None
        elif kind == "product":
            self.page, self.asin, self.options = "item", value, {}
        elif kind == "option":
            self.options[value[0]] = value[1]
        elif kind == "sub":
            self.page, self.sub_page = "sub", value
        elif kind == "buy":
            product = self.catalog.by_asin[self.asin]
            self.result = score(product, self.goal, self.options)
            self.bought = product.asin
            self.page = "done"
        return True

    def _reset_to_search(self) -> None:
        self.page, self.keywords, self.page_no, self.results = "search", "", 1, []
        self.asin, self.options, self.sub_page = None, {}, None

    def _search(self, keywords: str) -> None:
        # the original splits on spaces and joins back: runs of spaces collapse
        self.keywords = " ".join(keywords.split(" "))
        self.results = self.engine.search(self.keywords)
        self._show_results(1)

    def _show_results(self, page_no: int) -> None:
        self.page, self.page_no, self.asin, self.options, self.sub_page = \
            "results", page_no, None, {}, None

    # ------------------------------------------------------------------ what is clickable

    def page_products(self) -> list[Product]:
        start = (self.page_no - 1) * PRODUCT_WINDOW
        return self.results[start:start + PRODUCT_WINDOW]

    def clickables(self) -> dict[str, tuple[str, object]]:
        """Lower-cased clickable name -> (kind, value) on the current page."""
        out: dict[str, tuple[str, object]] = {}
        if self.page in ("results", "item", "sub"):
            out[BACK_TO_SEARCH.lower()] = ("back", None)
        if self.page == "results":
            if self.page_no > 1:
                out[PREV_PAGE.lower()] = ("prev", None)
            out[NEXT_PAGE.lower()] = ("next", None)
            for p in self.page_products():
                out[p.asin.lower()] = ("product", p.asin)
        elif self.page == "item":
            out[PREV_PAGE.lower()] = ("prev", None)
            product = self.catalog.by_asin[self.asin]
            for name, values in product.options.items():
                for v in values:
                    out.setdefault(v.lower(), ("option", (name, v)))
            for sub in SUB_PAGES:
                out[sub.lower()] = ("sub", sub)
            out[BUY_NOW.lower()] = ("buy", None)
        elif self.page == "sub":
            out[PREV_PAGE.lower()] = ("prev", None)
        return out

    def admissible_actions(self) -> list[str]:
        if self.page == "search":
            return [SEARCH_PLACEHOLDER]
        return [f"click[{name}]" for name in self.clickables()]

    # ------------------------------------------------------------------ pages

    def segments(self) -> list[Segment]:
        instruction = [Segment("text", "Instruction:"), Segment("text", self.goal.instruction_text)]
        if self.page == "search":
            return [Segment("text", "WebShop"), *instruction, Segment("search", "Search")]
        if self.page == "done":
            assert self.result is not None
            return [Segment("text", "Thank you for shopping with us!"),
                    Segment("text", "Your score (min 0.0, max 1.0)"),
                    Segment("text", f"{self.result.total:.4g}")]
        segs = [*instruction, Segment("button", BACK_TO_SEARCH)]
        if self.page == "results":
            segs.append(Segment("text", f"Page {self.page_no} (Total results: {len(self.results)})"))
            if self.page_no > 1:
                segs.append(Segment("button", PREV_PAGE))
            segs.append(Segment("button", NEXT_PAGE))
            for p in self.page_products():
                segs += [Segment("product", p.asin), Segment("text", p.title),
                         Segment("text", p.price_tag)]
            return segs
        product = self.catalog.by_asin[self.asin]
        segs.append(Segment("button", PREV_PAGE))
        if self.page == "item":
            for name, values in product.options.items():
                segs.append(Segment("text", name))
                segs += [Segment("option", v, group=name, selected=self.options.get(name) == v)
                         for v in values]
            segs += [Segment("text", product.title), Segment("text", f"Price: {product.price_tag}"),
                     Segment("text", f"Rating: {product.rating}")]
            segs += [Segment("button", s) for s in SUB_PAGES]
            segs.append(Segment("button", BUY_NOW))
        elif self.sub_page == "Description":
            segs.append(Segment("text", product.description))
        elif self.sub_page == "Features":
            segs += [Segment("text", b) for b in product.bullets]
        else:
            for r in product.reviews:
                segs += [Segment("text", f'"{r["title"]}"'), Segment("text", str(r["score"])),
                         Segment("text", r["body"])]
        return segs

    def observation(self) -> str:
        return SEP.join(s.text for s in self.segments() if s.text)

    def anchor(self) -> str:
        """The state in a few fields: equal anchors mean the same page with the same choices."""
        if self.page == "search":
            return "search"
        if self.page == "done":
            return f"done|{self.bought}|{sorted(self.options.items())}"
        if self.page == "results":
            return f"results|{self.keywords}|{self.page_no}"
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        where = "item" if self.page == "item" else f"sub:{self.sub_page}"
        return f"{where}|{self.keywords}|{self.page_no}|{self.asin}|{opts}"
