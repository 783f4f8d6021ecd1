"""The WebShop reward, component by component, on hand-worked cases."""

import pytest

from agentgym.envs.webshop.catalog import Product
from agentgym.envs.webshop.nouns import substitute_nouns
from agentgym.envs.webshop.reward import (Goal, attribute_matches, normalize_color,
                                          option_matches, score, similarity, type_reward)


def product(**kw):
    base = dict(asin="B000000001", title="Aurora Sulfate Free Shampoo for Dry Hair",
                description="A gentle shampoo. Smells of lavender.",
                bullets=["PARABEN FREE: no parabens", "Made with argan oil"],
                price=17.99, price_tag="$17.99",
                options={"size": ["8 fl oz", "16 fl oz"], "scent": ["lavender", "navy blue"]},
                attributes=["sulfate free", "long-lasting"], category="beauty",
                query="shampoo",
                product_category="Beauty & Personal Care › Hair Care › Shampoos",
                nouns=("aurora", "shampoo", "hair"))
    base.update(kw)
    return Product(**base)


def goal(**kw):
    base = dict(asin="B000000001", instruction_text="x", attributes=("sulfate free",),
                goal_options=(), price_upper=30.0, query="shampoo", category="beauty",
                product_category="Beauty & Personal Care › Hair Care › Shampoos",
                name="Aurora Sulfate Free Shampoo for Dry Hair", nouns=("aurora", "shampoo", "hair"))
    base.update(kw)
    return Goal(**base)


def test_similarity_is_thefuzz_token_set_ratio():
    assert similarity("long-lasting", "long lasting") == 100   # punctuation is processed away
    assert similarity("Sulfate Free", "sulfate free") == 100   # case too
    assert similarity("x-large", "large") == 100               # token subset: full score
    assert similarity("paraben free", "sulfate free") < 85


def test_attribute_fuzzy_match_then_text_fallback():
    p = product()
    # 'long lasting' ~ 'long-lasting' (fuzzy 100); 'paraben free' only in the bullets;
    # 'lavender' only in the description; 'cruelty free' nowhere
    g = goal(attributes=("long lasting", "paraben free", "lavender", "cruelty free"))
    assert attribute_matches(p, g) == 3
    assert attribute_matches(p, goal(attributes=("dry hair",))) == 1   # title substring
    assert attribute_matches(p, goal(attributes=("oily hair",))) == 0


def test_option_match_with_colour_normalisation():
    assert normalize_color("navy blue") == "blue"
    assert normalize_color("16 fl oz") == "16 fl oz"
    assert option_matches(["navy blue"], ("blue",)) == 1
    assert option_matches(["16 fl oz", "lavender"], ("16 fl oz", "lavender")) == 2
    assert option_matches(["8 fl oz"], ("16 fl oz",)) == 0          # token-set ratio 83
    assert option_matches([], ("16 fl oz",)) == 0
    # the original's token-set quirk: choosing "large" satisfies "x-large"
    assert option_matches(["large"], ("x-large",)) == 1


def test_price_component():
    p = product(price=29.99)
    assert score(p, goal(price_upper=30.0), {}).r_price is True
    cheap_bound = score(p, goal(price_upper=20.0), {})
    assert cheap_bound.r_price is False
    assert cheap_bound.total == pytest.approx(1 / 2)   # 1 attribute + price: (1 + 0) / 2


def test_type_score_levels():
    g = goal(nouns=("aurora", "shampoo", "hair"))
    # same query: 1.0
    assert type_reward(product(), g)[0] == 1.0
    other = dict(query="conditioner", product_category="Beauty & Personal Care › Skin Care")
    # no query match, one shared level, nouns 1/3 > 0.2: 1.0 by the title
    r, q, c, t = type_reward(product(**other, nouns=("shampoo", "x")), g)
    assert (r, q, c) == (1.0, False, False) and t == pytest.approx(1 / 3)
    # overlap 1/6 (in [0.1, 0.2]) and nothing else matches: 0.5
    g6 = goal(nouns=("a", "b", "c", "d", "e", "shampoo"))
    assert type_reward(product(**other, nouns=("shampoo",)), g6)[0] == 0.5
    # the category path shares two levels: the match comes from there
    same_dept = dict(query="conditioner",
                     product_category="Beauty & Personal Care › Hair Care › Conditioners")
    assert type_reward(product(**same_dept, nouns=("shampoo",)), g6)[0] == 1.0
    # overlap 1/11 < 0.1: 0.1 even with the category match
    g11 = goal(nouns=tuple("abcdefghij") + ("shampoo",))
    assert type_reward(product(**same_dept, nouns=("shampoo",)), g11)[0] == 0.1
    # no overlap at all: 0
    assert type_reward(product(nouns=("lamp",)), g)[0] == 0.0


def test_type_score_without_known_nouns_uses_the_title():
    g = goal(nouns=None, name="Aurora Shampoo")
    p = product(nouns=None, title="Velix Shampoo Bottle")
    r, *_ , title_score = type_reward(p, g)
    assert r == 1.0 and title_score > 0


def test_total_combines_components():
    p = product()
    g = goal(attributes=("sulfate free", "cruelty free"), goal_options=("16 fl oz", "rose"),
             price_upper=20.0)
    # attributes 1/2, options 1/2 (16 fl oz chosen, rose not available), price ok: 3/5
    s = score(p, g, {"size": "16 fl oz", "scent": "lavender"})
    assert s.total == pytest.approx(3 / 5)
    assert (s.r_att, s.r_option, s.r_price) == (0.5, 0.5, True)
    # a bought product of another type with no noun overlap scores 0 whatever matches
    assert score(product(nouns=("lamp",)), g, {"size": "16 fl oz"}).total == 0.0
    # everything matched: exactly 1.0
    full = goal(attributes=("sulfate free",), goal_options=("16 fl oz",), price_upper=20.0)
    assert score(p, full, {"size": "16 fl oz"}).total == 1.0


def test_substitute_noun_finder():
    assert substitute_nouns("Aurora Premium Sulfate Free Shampoo, 16 fl oz") == \
        ("aurora", "sulfate", "shampoo")
