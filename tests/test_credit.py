"""Credit assignment over hand-built episodes: shaping, groups, who gets trained."""

import pytest

from agentgym.config import AlgorithmConfig, config_from_dict, load_config
from agentgym.credit import assign_advantages, trainable
from agentgym.episode import Episode, Step


def _episode(group, name, rewards, valid=None, termination="failure"):
    valid = valid or [True] * len(rewards)
    steps = [Step(index=i, observation="", prompt_ids=[1], response_ids=[2], logprobs=[0.0],
                  entropies=[0.0], response_text="", action="a", action_valid=v, reward=r, anchor="")
             for i, (r, v) in enumerate(zip(rewards, valid))]
    return Episode(run_id="r", iteration=1, split="train", group_id=group, episode_id=name,
                   env_id="x", task_id=group, seed=0, steps=steps, termination=termination)


def test_grpo_per_group_broadcast_to_steps():
    eps = [_episode("g1", "a", [0, 1]), _episode("g1", "b", [0, 0, 0]),
           _episode("g2", "c", [1]), _episode("g2", "d", [1])]
    metrics = assign_advantages(eps, AlgorithmConfig())
    assert [s.advantage for s in eps[0].steps] == pytest.approx([0.7071, 0.7071], abs=1e-4)
    assert [s.advantage for s in eps[1].steps] == pytest.approx([-0.7071] * 3, abs=1e-4)
    assert [s.advantage for s in eps[2].steps + eps[3].steps] == [0.0, 0.0]
    assert eps[0].steps[0].advantage_parts == {"episode": pytest.approx(0.7071, abs=1e-4)}
    assert metrics["credit/zero_variance_groups"] == 0.5


def test_invalid_action_penalty_enters_the_return():
    cfg = config_from_dict({"algorithm": {"advantage": {"normalize": "none"}}}).algorithm
    eps = [_episode("g", "a", [0, 0], valid=[False, True]), _episode("g", "b", [0, 0])]
    assign_advantages(eps, cfg)
    assert eps[0].info["return"] == pytest.approx(-0.1)
    assert eps[0].steps[0].advantage == pytest.approx(-0.05)
    assert eps[1].steps[0].advantage == pytest.approx(0.05)


def test_rloo_and_env_failures_left_out():
    cfg = config_from_dict({"algorithm": {"advantage": {"episode": "rloo"}}}).algorithm
    broken = _episode("g", "x", [0], termination="env_error")
    eps = [_episode("g", "a", [1]), _episode("g", "b", [0]), _episode("g", "c", [0]), broken]
    assign_advantages(eps, cfg)
    assert [e.steps[0].advantage for e in eps[:3]] == pytest.approx([1.0, -0.5, -0.5])
    assert broken.steps[0].advantage is None
    assert broken not in trainable(eps)


# --- step-level credit and modulation, composed from the config --------------------

def _rich_episode(group, name, rewards, anchors, actions=None, entropies=None, won=False):
    actions = actions or ["go"] * len(rewards)
    entropies = entropies or [[0.5]] * len(rewards)
    steps = [Step(index=i, observation=a, prompt_ids=[1], response_ids=[2] * len(h),
                  logprobs=[-x for x in h], entropies=list(h), response_text=act, action=act,
                  action_valid=True, reward=r, anchor=a)
             for i, (r, a, act, h) in enumerate(zip(rewards, anchors, actions, entropies))]
    return Episode(run_id="r", iteration=1, split="train", group_id=group, episode_id=name,
                   env_id="x", task_id=group, seed=0, steps=steps, won=won,
                   termination="success" if won else "failure")


def _algo(**advantage):
    return config_from_dict({"algorithm": {"advantage": advantage}}).algorithm


def test_gigpo_worked_example_through_the_config():
    eps = [_rich_episode("g", "a", [0, 0, 1], ["s0", "s1", "s2"]),
           _rich_episode("g", "b", [0, 0, 0], ["s0", "s3", "s1"]),
           _rich_episode("h", "c", [0], ["s0"])]              # another group: no leaking
    metrics = assign_advantages(eps, _algo(step="gigpo", gigpo={"gamma": 1.0, "weight": 0.5}))
    step_adv = [[s.advantage_parts["step"] for s in ep.steps] for ep in eps]
    assert step_adv == [[0.5, 0.5, 0.0], [-0.5, 0.0, -0.5], [0.0]]
    assert eps[0].steps[0].advantage == pytest.approx(0.7071 + 0.25, abs=1e-4)
    assert eps[0].steps[0].advantage_parts["episode"] == pytest.approx(0.7071, abs=1e-4)
    # step groups: s0 {a, b}, s1 {a, b}, s2, s3, and s0 of group h = 5 groups, 3 singletons
    assert metrics["credit/step_group_groups"] == 5
    assert metrics["credit/singleton_share"] == pytest.approx(3 / 5)
    assert metrics["credit/singleton_step_share"] == pytest.approx(3 / 7)
    assert metrics["credit/step_group_size_max"] == 2
    assert "credit/adv_step_abs_mean" in metrics and "credit/adv_episode_std" in metrics


def test_gigpo_with_rloo_and_similarity():
    eps = [_rich_episode("g", "a", [0, 1], ["kitchen: fridge.", "end"]),
           _rich_episode("g", "b", [0, 0], ["kitchen: fridge!", "x"])]
    exact = assign_advantages(eps, _algo(step="gigpo", episode="rloo", gigpo={"gamma": 1.0}))
    assert exact["credit/singleton_share"] == 1.0
    similar = assign_advantages(eps, _algo(step="gigpo", episode="rloo", gigpo={
        "gamma": 1.0, "anchor_match": "similarity", "similarity_threshold": 0.9}))
    assert similar["credit/singleton_share"] == pytest.approx(2 / 3)
    assert eps[0].steps[0].advantage_parts == {"episode": 1.0, "step": 0.5}


def test_salt_through_the_config():
    # ALGORITHMS.md labels as (state, action) with next states following the path
    paths = ["abc", "adc", "abe", "fde"]
    eps = [_rich_episode("g", str(i), [0, 0, r], ["s0", "s1", "s2"] if p[0] != "f" else ["s9", "s1", "s2"],
                         actions=list(p))
           for i, (p, r) in enumerate(zip(paths, [1, 1, 0, 0]))]
    metrics = assign_advantages(eps, _algo(step="salt"))
    # the node key is (state, action, next state): actions a..f give 6 nodes, as the labels
    got = [[s.advantage for s in ep.steps] for ep in eps]
    assert got[0] == pytest.approx([0.2887, 0.0, 0.866], abs=1e-3)
    assert got[3] == pytest.approx([-0.866, 0.0, -0.866], abs=1e-3)
    assert set(eps[0].steps[0].advantage_parts) == {"episode", "salt"}
    assert metrics["credit/salt_node_groups"] == 6      # a, b, c, d, e, f


def test_empg_modulates_any_advantage():
    eps = [_rich_episode("g", "a", [0, 0, 1], ["x", "y", "z"], entropies=[[0.2], [0.5], [0.8]]),
           _rich_episode("g", "b", [0, 0], ["x", "w"], entropies=[[1.0, 1.0], [0.3, 0.5]])]
    cfg = _algo(modulate="empg", normalize="none")
    cfg.reward.invalid_action_penalty = 0.1
    metrics = assign_advantages(eps, cfg)
    # episode advantages +-0.5 (normalize none), modulated and shifted (ALGORITHMS.md form)
    from agentgym.algos.empg import empg_advantages
    expected = empg_advantages([0.5] * 3 + [-0.5] * 2, [0.2, 0.5, 0.8, 1.0, 0.4], [0, 0, 0, 1, 1])
    got = [s.advantage for ep in eps for s in ep.steps]
    assert got == pytest.approx(list(expected.advantage))
    assert sum(got) == pytest.approx(0, abs=1e-12)
    parts = eps[0].steps[0].advantage_parts
    assert set(parts) == {"episode", "base", "empg_scale", "empg_bonus"}
    assert metrics["credit/step_entropy_max"] == pytest.approx(1.0)
    # the logprob source reads the behaviour log-probs instead (here -entropy)
    cfg.advantage.empg.entropy_source = "logprob"
    assign_advantages(eps, cfg)
    assert [s.advantage for ep in eps for s in ep.steps] == pytest.approx(got)


def test_gigpo_plus_empg_compose():
    eps = [_rich_episode("g", "a", [0, 1], ["s0", "s1"], entropies=[[0.1], [0.9]]),
           _rich_episode("g", "b", [0, 0], ["s0", "s2"], entropies=[[0.4], [0.2]])]
    assign_advantages(eps, _algo(step="gigpo", modulate="empg", gigpo={"gamma": 1.0}))
    parts = eps[0].steps[0].advantage_parts
    assert parts["base"] == pytest.approx(parts["episode"] + parts["step"])
    assert eps[0].steps[0].advantage != pytest.approx(parts["base"])


def test_step_level_config_errors():
    from agentgym.errors import ConfigError
    with pytest.raises(ConfigError, match="gigpo"):
        config_from_dict({"algorithm": {"advantage": {"step": "gipgo"}}})
    with pytest.raises(ConfigError, match="episode_scope"):
        config_from_dict({"algorithm": {"advantage": {"episode": "rloo", "episode_scope": "step"}}})
    with pytest.raises(ConfigError, match="'algorithm.advantage.gigpo.weight'"):
        config_from_dict({"algorithm": {"advantage": {"gigpo": {"wieght": 0.5}}}})
    # the flat keys of earlier releases name their new home
    with pytest.raises(ConfigError, match="is now 'algorithm.advantage.gigpo.weight'"):
        config_from_dict({"algorithm": {"advantage": {"step_weight": 0.5}}})
    with pytest.raises(ConfigError, match="is now 'algorithm.advantage.gigpo.gamma'"):
        load_config(None, ["algorithm.advantage.gamma=0.9"])
    with pytest.raises(ConfigError, match="epo"):
        config_from_dict({"algorithm": {"loss": {"entropy": "epp"}}})


def _tool_episode(group, name, actions, correct):
    steps = [Step(index=i, observation="", prompt_ids=[1], response_ids=[2], logprobs=[0.0],
                  entropies=[0.0], response_text=a, action=a, action_valid=True,
                  reward=float(correct) if i == len(actions) - 1 else 0.0, anchor="")
             for i, a in enumerate(actions)]
    return Episode(run_id="r", iteration=1, split="train", group_id=group, episode_id=name,
                   env_id="x", task_id=group, seed=0, steps=steps, total_reward=float(correct))


def test_otc_replaces_the_outcome_reward_and_keeps_the_stored_one():
    from agentgym.algos.otc import OTCState

    search = "<search>who</search>"
    cfg = config_from_dict({"algorithm": {"advantage": {"normalize": "none"},
                                          "reward": {"otc": {"mode": "ppo", "max_tool_calls": 3}}}}).algorithm
    eps = [_tool_episode("q", "direct", ["<answer>4</answer>"], True),
           _tool_episode("q", "searched", [search, search, "<answer>4</answer>"], True)]
    metrics = assign_advantages(eps, cfg)
    # r_tool = cos(m pi / (2m + c)): 1 for m = 0, cos(2 pi / 7) = 0.62349 for m = 2
    assert [ep.info["return"] for ep in eps] == pytest.approx([1.0, 0.62349], abs=1e-5)
    assert eps[0].steps[0].advantage == pytest.approx((1 - 0.62349) / 2, abs=1e-5)
    assert eps[1].steps[-1].reward == 1.0          # the stored environment reward is untouched
    assert metrics["tool/calls_per_episode"] == 1.0

    cfg.reward.otc.mode = "grpo"
    state = OTCState()
    eps = [_tool_episode("q", "one", [search, "<answer>4</answer>"], True),
           _tool_episode("q", "two", [search, search, "<answer>4</answer>"], True),
           _tool_episode("q", "wrong", ["<answer>5</answer>"], False)]
    assign_advantages(eps, cfg, otc_state=state)
    # n = 1 (updated before scoring); f(2, 1) = 4/3, sin(4/3 * pi / 2) = 0.86603; wrong -> 0
    assert [ep.info["return"] for ep in eps] == pytest.approx([1.0, 0.86603, 0.0], abs=1e-5)
    assert state.lookup(["q"]).tolist() == [1]


# --- reference-faithful shaping ------------------------------------------------------

def test_invalid_action_scope_step_reproduces_verl_agent():
    """Two trajectories of two steps, both reward 1, one invalid step: verl-agent
    subtracts 0.1 from that step sample's score only, statistics over step samples
    (mean_norm): A^E = [-0.075, 0.025, 0.025, 0.025]."""
    cfg = config_from_dict({"algorithm": {
        "reward": {"invalid_action_scope": "step"},
        "advantage": {"normalize": "none", "episode_scope": "step"}}}).algorithm
    eps = [_episode("g", "a", [0, 1], valid=[False, True]), _episode("g", "b", [0, 1])]
    assign_advantages(eps, cfg)
    got = [s.advantage for ep in eps for s in ep.steps]
    assert got == pytest.approx([-0.075, 0.025, 0.025, 0.025])
    assert eps[0].info["return"] == pytest.approx(1.0)          # the return keeps the env reward
    # the default scope lowers the whole trajectory's return instead
    traj = config_from_dict({"algorithm": {"advantage": {"normalize": "none",
                                                          "episode_scope": "step"}}}).algorithm
    assign_advantages(eps, traj)
    assert [s.advantage for ep in eps for s in ep.steps] == pytest.approx([-0.05, -0.05, 0.05, 0.05])


def test_invalid_action_scope_step_needs_step_statistics():
    from agentgym.errors import ConfigError

    with pytest.raises(ConfigError, match="episode_scope=step"):
        config_from_dict({"algorithm": {"reward": {"invalid_action_scope": "step"}}})


def test_overlong_and_format_rewards_enter_the_return():
    cfg = config_from_dict({"algorithm": {
        "reward": {"overlong": {"buffer": 4}, "format": 0.5},
        "advantage": {"normalize": "none"}}}).algorithm
    a, b = _episode("g", "a", [1.0]), _episode("g", "b", [1.0])
    a.steps[0].response_ids = [2] * 18        # L = 20, L_c = 4: 18 tokens -> -0.5
    b.steps[0].action = None                  # unparseable: 0.5 * -1
    metrics = assign_advantages([a, b], cfg, max_new_tokens=20)
    assert a.info["return"] == pytest.approx(0.5) and b.info["return"] == pytest.approx(0.5)
    assert metrics["credit/overlong_share"] == 0.5
    assert metrics["credit/format_reward_mean"] == pytest.approx(-0.25)


def test_a_registered_estimator_has_its_own_options_section(monkeypatch):
    import dataclasses

    from agentgym import credit
    from agentgym.errors import ConfigError
    monkeypatch.setattr(credit, "ESTIMATORS", {k: dict(v) for k, v in credit.ESTIMATORS.items()})
    monkeypatch.setattr(credit, "ESTIMATOR_CONFIGS", dict(credit.ESTIMATOR_CONFIGS))

    @dataclasses.dataclass
    class ScaleOptions:
        factor: float = 1.0

    @credit.register_estimator("step", "scaled", config=ScaleOptions)
    def scaled(batch, a_episode, parts, metrics):
        parts["scaled"] = batch.options("scaled").factor * a_episode
        return parts["scaled"]

    eps = [_rich_episode("g", "a", [1], ["s0"]), _rich_episode("g", "b", [0], ["s0"])]
    assign_advantages(eps, _algo(step="scaled", options={"scaled": {"factor": 3.0}}))
    assert [ep.steps[0].advantage for ep in eps] == pytest.approx([3 * 0.7071, -3 * 0.7071], abs=1e-4)
    assign_advantages(eps, _algo(step="scaled"))          # defaults where the recipe sets none
    assert eps[0].steps[0].advantage == pytest.approx(0.7071, abs=1e-4)
    with pytest.raises(ConfigError, match="'algorithm.advantage.options.scaled.factr'.*factor"):
        _algo(step="scaled", options={"scaled": {"factr": 3.0}})
    with pytest.raises(ConfigError, match="no estimator named 'scaeld'"):
        _algo(step="scaled", options={"scaeld": {}})
