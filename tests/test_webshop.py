"""agentgym/WebShop-v0: catalogue, goals, search, pages, actions, reward modes, original data."""

import json
import re

import pytest

import agentgym
from agentgym.checker import check_env
from agentgym.envs.webshop import CATEGORIES
from agentgym.envs.webshop.catalog import generate_catalog, generate_product
from agentgym.envs.webshop.env import WebShopConfigError, WebShopEnv
from agentgym.envs.webshop.goals import make_goal
from agentgym.envs.webshop.search import SearchEngine
from agentgym.envs.webshop.shop import SEP

N = 400  # products in the test catalogue: small enough to index in well under a second


@pytest.fixture(scope="module")
def env():
    e = WebShopEnv(num_products=N)
    yield e
    e.close()


def test_catalogue_is_deterministic_varied_and_a_prefix_of_larger_ones():
    small, large = generate_catalog(N, seed=3), generate_catalog(2 * N, seed=3)
    assert [p.asin for p in small.products] == [p.asin for p in large.products[:N]]
    assert generate_product(3, 7) == small.products[7]
    assert generate_product(4, 7) != small.products[7]
    assert {p.category for p in large.products} == set(CATEGORIES)
    assert len({p.query for p in large.products}) >= 40
    assert len(large.by_asin) == 2 * N
    for p in small.products[:50]:
        assert p.title and p.description and p.bullets and p.attributes
        assert re.fullmatch(r"B0[0-9A-Z]{8}", p.asin)
        assert p.price_tag == f"${p.price:.2f}"
        for values in p.options.values():
            assert values and all(v == v.lower() for v in values)
    assert any(len(p.options) == 2 for p in small.products)


def test_large_catalogues_are_cached_on_disk(tmp_path, monkeypatch):
    from agentgym.envs.webshop import catalog as cat

    monkeypatch.setattr(cat, "DISK_CACHE_MIN_PRODUCTS", 50)
    monkeypatch.setattr(cat, "_cache", {})
    first = cat.generate_catalog(60, seed=9, cache_dir=tmp_path)
    assert (tmp_path / f"catalog-{first.key}.pkl").is_file()
    monkeypatch.setattr(cat, "generate_product", None)   # a second load must not generate
    monkeypatch.setattr(cat, "_cache", {})
    assert cat.generate_catalog(60, seed=9, cache_dir=tmp_path).products == first.products


def test_goals_name_type_attributes_options_and_price_and_are_satisfiable():
    catalog = generate_catalog(N)
    texts = set()
    for i in range(60):
        g = make_goal(catalog, "train", i)   # raises unless its product scores 1.0
        product = catalog.by_asin[g.asin]
        assert g.query in g.instruction_text
        assert all(a in g.instruction_text for a in g.attributes)
        assert all(v in g.instruction_text for v in g.goal_options)
        assert re.search(r", and price lower than \d+\.00 dollars$", g.instruction_text)
        assert product.price <= g.price_upper
        texts.add(g.instruction_text.split(" ")[0])
    assert len(texts) >= 5   # several openers
    assert make_goal(catalog, "train", 5) == make_goal(catalog, "train", 5)
    assert make_goal(catalog, "train", 5) != make_goal(catalog, "eval", 5)


def test_search_ranks_by_bm25_and_caches_the_index(tmp_path):
    catalog = generate_catalog(N)
    engine = SearchEngine(catalog, tmp_path)
    target = catalog.products[11]
    hits = engine.search(target.title)
    assert 0 < len(hits) <= 50 and target in hits[:3]
    assert engine.search("zzzz qqqq") == []
    assert all("earbuds" in p.query or "earbud" in p.title.lower() + p.description.lower()
               for p in engine.search("earbuds"))   # stemmed: earbud/earbuds
    # the fast query tokeniser agrees with bm25s's own
    for text in [p.title for p in catalog.products[:40]] + [make_goal(catalog, "eval", i).instruction_text
                                                            for i in range(20)]:
        assert engine.query_tokens(text) == engine._tokenize([text.lower()], ids=False)[0]
    again = SearchEngine(catalog, tmp_path)
    assert again.loaded_from_cache and not engine.loaded_from_cache
    assert [p.asin for p in again.search(target.title)] == [p.asin for p in hits]


def test_pages_actions_and_original_text_format(env):
    obs, info = env.reset(options={"goal_index": 2})
    instruction = info["task"]
    assert obs == f"WebShop{SEP}Instruction:{SEP}{instruction}{SEP}Search"
    assert info["admissible_actions"] == ["search[<your query>]"]
    assert info["task_type"] in CATEGORIES

    # clicks do nothing on the search page
    same, r, term, _, info = env.step("click[buy now]")
    assert (same, r, term, info["action_valid"]) == (obs, 0.0, False, False)

    obs, _, _, _, info = env.step("search[black free easy]")
    parts = obs.split(SEP)
    assert parts[:5] == ["Instruction:", instruction, "Back to Search",
                         parts[3], "Next >"] and parts[3].startswith("Page 1 (Total results: ")
    total = int(re.search(r"Total results: (\d+)", obs).group(1))
    assert 10 < total <= 50
    asins = re.findall(r"B0[0-9A-Z]{8}", obs)
    assert len(asins) == 10
    assert set(info["admissible_actions"]) == {"click[back to search]", "click[next >]",
                                               *(f"click[{a.lower()}]" for a in asins)}
    # search is only available on the search page
    assert env.step("search[lamp]")[4]["action_valid"] is False

    obs2, *_ , info = env.step("click[Next >]")
    assert "Page 2" in obs2 and "< Prev" in obs2 and info["action_valid"]
    assert not set(re.findall(r"B0[0-9A-Z]{8}", obs2)) & set(asins)
    env.step("click[< prev]")
    obs, *_, info = env.step(f"click[{asins[0].lower()}]")
    product = env.catalog.by_asin[asins[0]]
    assert f"{SEP}Price: {product.price_tag}{SEP}" in obs
    assert obs.endswith(f"Description{SEP}Features{SEP}Reviews{SEP}Buy Now")
    for name, values in product.options.items():
        assert f"{SEP}{name}{SEP}{SEP.join(values)}" in obs
    before = info["anchor"]
    if product.options:
        value = next(iter(product.options.values()))[0]
        _, _, _, _, info = env.step(f"click[{value}]")
        assert info["action_valid"] and info["anchor"] != before

    obs, *_ = env.step("click[features]")
    assert obs.endswith(SEP.join(product.bullets))
    obs, *_ = env.step("click[< prev]")
    assert obs.endswith("Buy Now")
    env.step("click[description]")
    obs, *_ = env.step("click[back to search]")
    assert obs.startswith("WebShop")


def test_invalid_actions_change_nothing(env):
    env.reset(options={"goal_index": 0})
    obs, *_ = env.step("search[coffee table]")
    for bad in ("click[not a button]", "buy now", "jump[3]", "click[]", "search[]"):
        again, reward, term, trunc, info = env.step(bad)
        assert (again, reward, term, trunc, info["action_valid"]) == (obs, 0.0, False, False, False)


@pytest.mark.parametrize("mode, win_reward", [("score", 1.0), ("sparse", 10.0)])
def test_buying_ends_the_episode_with_the_score(mode, win_reward):
    e = WebShopEnv(num_products=N, reward=mode)
    _, info = e.reset(seed=4)
    rewards = [e.step(a)[1:] for a in e.walkthrough()]
    reward, terminated, _, info = rewards[-1]
    assert terminated and info["won"] and info["task_score"] == 1.0
    assert reward == win_reward and all(r == 0.0 for r, *_ in rewards[:-1])
    assert info["score_parts"]["r_type"] == 1.0

    # buy the first result without choosing options: a partial score
    e.reset(seed=4)
    goal = e.shop.goal
    e.step(f"search[{goal.query}]")
    wrong = next(p for p in e.shop.page_products() if p.asin != goal.asin)
    e.step(f"click[{wrong.asin}]")
    obs, reward, terminated, _, info = e.step("click[buy now]")
    assert terminated and 0.0 <= info["task_score"] < 1.0 and not info["won"]
    assert obs.startswith("Thank you for shopping with us!")
    assert reward == (info["task_score"] if mode == "score" else 0.0)


def test_oracle_reaches_full_score_on_every_goal_of_a_sample(env):
    for i in range(40):
        env.reset(options={"goal_index": i})
        for action in env.walkthrough():
            *_, info = env.step(action)
        assert info["won"] and info["task_score"] == 1.0, (i, env.shop.goal)


def test_registered_env_keeps_the_contract():
    e = agentgym.make("agentgym/WebShop-v0", num_products=N)
    for agent in ("scripted", "random"):
        report = check_env(e, episodes=3, agent=agent)
        assert report.ok, [(r.name, r.detail) for r in report.failures]
        if agent == "scripted":
            assert report.wins == 3


def test_bad_options_say_what_to_do():
    with pytest.raises(WebShopConfigError, match="reward must be"):
        WebShopEnv(num_products=N, reward="dense")
    with pytest.raises(WebShopConfigError, match="split must be"):
        WebShopEnv(num_products=N, split="dev")
    with pytest.raises(WebShopConfigError, match="num_products"):
        WebShopEnv(num_products=0)
    e = WebShopEnv(num_products=N, num_goals=5)
    with pytest.raises(WebShopConfigError, match="goal_index"):
        e.reset(options={"goal_index": 5})
    with pytest.raises(WebShopConfigError, match="data_dir"):
        WebShopEnv(data_dir="/nonexistent/webshop")


def _write_original_files(directory, n_goals=3):
    """A few products in the original's file formats (items_shuffle, items_ins_v2, human)."""
    products, attrs, human = [], {}, {}
    for i in range(12):
        asin = f"B0ORIG{i:04d}"
        shoe = i % 2 == 0
        products.append({
            "asin": asin,
            "name": f"Brand{i} Running Shoes Lightweight" if shoe else f"Brand{i} Herbal Tea Bags",
            "full_description": "Breathable mesh upper." if shoe else "Caffeine free blend.",
            "small_description": ["Rubber sole", "Machine wash"] if shoe else "Organic leaves",
            "pricing": "$25.50" if i < 6 else "$30.00 - $40.00",
            "customization_options": ({"Color": [{"value": "Black/White", "image": None},
                                                 {"value": "Navy Blue", "image": None}],
                                       "Size": [{"value": "8", "image": None},
                                                {"value": "9", "image": None}]}
                                      if shoe else None),
            "category": "fashion" if shoe else "grocery",
            "query": "running shoes" if shoe else "herbal tea",
            "product_category": ("Clothing, Shoes & Jewelry › Women › Shoes › Athletic"
                                 if shoe else "Grocery & Gourmet Food › Beverages › Tea"),
            "images": ["x.jpg"],
        })
        attrs[asin] = {"attributes": ["rubber sole", "lightweight"] if shoe else ["caffeine free"]}
    human["B0ORIG0000"] = [{"instruction": "i need lightweight running shoes in navy blue, size 9.",
                            "instruction_attributes": ["lightweight", "rubber sole"],
                            "instruction_options": ["navy blue", "9"]},
                           {"instruction": "no attributes here", "instruction_attributes": [],
                            "instruction_options": []}]
    human["B0ORIG0001"] = [{"instruction": "i want caffeine free herbal tea",
                            "instruction_attributes": ["caffeine free"],
                            "instruction_options": []}]
    (directory / "items_shuffle_1000.json").write_text(json.dumps(products))
    (directory / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    (directory / "items_human_ins.json").write_text(json.dumps(human))


def test_original_data_files_are_used(tmp_path):
    _write_original_files(tmp_path)
    e = WebShopEnv(data_dir=str(tmp_path), split="test", cache_dir=str(tmp_path / "cache"))
    assert len(e.catalog) == 12 and e.num_goals == 2   # the goal without attributes is skipped
    shoe = e.catalog.by_asin["B0ORIG0000"]
    assert shoe.options == {"color": ["black | white", "navy blue"], "size": ["8", "9"]}
    assert shoe.price == 25.5 and shoe.bullets == ["Rubber sole", "Machine wash"]
    assert 30.0 <= e.catalog.by_asin["B0ORIG0010"].price <= 40.0
    assert e.catalog.by_asin["B0ORIG0010"].price_tag == "$30.0 to $40.0"
    texts = {e.goal(i).instruction_text.split(",")[0] for i in range(2)}
    assert texts == {"i need lightweight running shoes in navy blue", "i want caffeine free herbal tea"}
    for i in range(2):
        _, info = e.reset(options={"goal_index": i})
        assert info["task"].endswith("dollars")
        for action in e.walkthrough():
            *_, info = e.step(action)
        assert info["won"], e.shop.goal
    with pytest.raises(WebShopConfigError, match="none in split 'train'"):
        WebShopEnv(data_dir=str(tmp_path), split="train")


def test_prompt_template_and_listing():
    from agentgym.prompting import template_for

    assert "search[" in template_for("agentgym/WebShop-v0").system
    assert "agentgym/WebShop-v0" in [e.id for e in agentgym.registered_envs()]
