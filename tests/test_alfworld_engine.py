"""Our ALFWorld engine gives exactly the stock engine's observations, commands and outcomes."""

from __future__ import annotations

import importlib.util
import random

import pytest

# find_spec, not an import: importing alfworld rewrites $ALFWORLD_DATA
if importlib.util.find_spec("alfworld") is None:
    pytest.skip("needs the alfworld package", allow_module_level=True)
pytest.importorskip("fast_downward")

from agentgym.envs.alfworld import engine, suite


def _trace(env, game_source, actions=None, rng=None, steps=12):
    """Play ``actions`` (or random admissible ones, some invalid) and record every state."""
    env.load(game_source)
    state = env.reset()
    trace = [(state["feedback"], state["admissible_commands"], bool(state["won"]))]
    played = []
    for i in range(len(actions) if actions is not None else steps):
        action = actions[i] if actions is not None else \
            rng.choice(state["admissible_commands"] + ["jump around"])
        played.append(action)
        state, _, done = env.step(action)
        trace.append((state["feedback"], state["admissible_commands"], bool(state["won"]), done))
        if done:
            break
    return played, trace


@pytest.mark.slow
@pytest.mark.parametrize("index", [5])  # pick_two_obj_and_place: two rounds of take and move
def test_recorded_sequences_give_identical_results(tmp_path_factory, index):
    import textworld

    cache = str(tmp_path_factory.getbasetemp() / "alfworld-engine")
    game = suite.ensure_game("train", index, cache)
    stock = engine.stock_engine(textworld.EnvInfos(won=True, admissible_commands=True))
    ours = engine.FastPddlEnv()
    actions, stock_trace = _trace(stock, str(game.path), rng=random.Random(index))
    assert "jump around" in actions or len(actions) == 12
    assert _trace(ours, game.load(), actions)[1] == stock_trace

    # a translation pickled on disk (as environments use it) plays the same game
    disk = str(tmp_path_factory.mktemp("sas"))
    _trace(engine.FastPddlEnv(sas_cache_dir=disk), game.load(), actions)
    for fn in (engine._convert, engine._convert_on_disk):
        fn.cache_clear()
    assert _trace(engine.FastPddlEnv(sas_cache_dir=disk), game.load(), actions)[1] == stock_trace

    plan = game.load()["walkthrough"]
    _, stock_trace = _trace(stock, str(game.path), plan)
    assert stock_trace[-1][2] is True  # the expert's plan wins on the stock engine too
    assert _trace(ours, game.load(), plan)[1] == stock_trace


def test_cached_grammar_derives_like_textworld():
    """Derivations through the cached grammar equal textworld's own on a real game."""
    import json
    import random as _random

    from agentgym.envs.alfworld import scenes, tasks
    from textworld.envs.pddl.textgen import ContextSensitiveGrammar  # noqa: F401

    spec = tasks.build_game(401, "pick_and_place_simple", _random.Random(1))
    game = {"pddl_domain": scenes.domain_text(), "grammar": spec.grammar(),
            "pddl_problem": spec.problem}
    logic, task_rhs = engine.game_logic(game["pddl_domain"], game["grammar"])
    assert task_rhs == f"Your task is to: {spec.sentence}."
    from textworld.envs.pddl import logic as pddl_logic

    full = pddl_logic.GameLogic(domain=game["pddl_domain"], grammar=game["grammar"])
    ours = engine.FastPddlEnv()
    ours.load(game)
    state = ours.reset()
    context = ours._context({}, {}, list(ours._pddl_state.facts))
    assert full.grammar.derive("#intro#", context) == state["feedback"]
    assert json.dumps(sorted(full.actions)) == json.dumps(sorted(logic.actions))
