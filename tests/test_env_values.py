"""Bad values from an environment end that episode with a typed error; the run goes on."""

import itertools
import math

import pytest

import agentgym
from agentgym.config import load_config
from agentgym.env_values import EnvValueError
from agentgym.envpool import EnvMaker, EnvPool
from agentgym.episode import ENV_ERROR
from agentgym.prompting import PromptTemplate, register_template
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer
from tests.toy_envs import GuessEnv

FAULTS = {
    "observation": ("a int observation", lambda r: (42, *r[1:])),
    "nan": ("reward of nan", lambda r: (r[0], math.nan, *r[2:])),
    "inf": ("reward of inf", lambda r: (r[0], math.inf, *r[2:])),
    "text_reward": ("a str reward", lambda r: (r[0], "1.0", *r[2:])),
    "none_reward": ("a NoneType reward", lambda r: (r[0], None, *r[2:])),
    "short_tuple": ("a tuple of 4", lambda r: r[:4]),
    "exit": ("step called sys.exit(3)", None),
}


class BadValuesEnv(GuessEnv):
    """GuessEnv whose every step goes wrong in the way ``fault`` names (None: never)."""

    def __init__(self, fault: str | None = "nan", high: int = 5):
        super().__init__(high)
        self.fault = fault

    def step(self, action):
        if self.fault == "exit":
            raise SystemExit(3)
        result = super().step(action)
        return result if self.fault is None else FAULTS[self.fault][1](result)


class SometimesBadEnv(BadValuesEnv):
    """Every other environment made in the process is faulty, cycling through FAULTS."""

    made = itertools.count()

    def __init__(self, high: int = 5):
        index = next(self.made)
        super().__init__(list(FAULTS)[(index // 2) % len(FAULTS)] if index % 2 else None, high)


agentgym.register("test/BadValues-v0", entry_point=BadValuesEnv, max_episode_steps=3)
agentgym.register("test/SometimesBad-v0", entry_point=SometimesBadEnv, max_episode_steps=3)
# the whole reply is the action, so the tiny random model's text reaches env.step
register_template("test/SometimesBad-v0", PromptTemplate(raw_action=True, stop=()))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_guard_turns_each_bad_value_into_an_env_value_error(fault):
    env = agentgym.make("test/BadValues-v0", fault=fault)
    env.reset(seed=0)
    with pytest.raises(EnvValueError, match=FAULTS[fault][0].replace("(", r"\(").replace(")", r"\)")):
        env.step("guess 1")


def test_a_non_string_observation_at_reset_is_caught_too():
    class BadReset(GuessEnv):
        def reset(self, *, seed=None, options=None):
            return b"bytes", super().reset(seed=seed)[1]

    agentgym.register("test/BadReset-v0", entry_point=BadReset)
    with pytest.raises(EnvValueError, match="reset returned a bytes observation"):
        agentgym.make("test/BadReset-v0").reset(seed=0)


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_system_exit_in_step_ends_only_that_episode(backend):
    pool = EnvPool(EnvMaker.of("test/BadValues-v0", {"fault": "exit"}), workers=2,
                   timeout_s=30, backend=backend)
    try:
        assert all(out.error is None for out in pool.reset({0: 1, 1: 2}).values())
        outcomes = pool.step({0: "guess 1", 1: "guess 2"})
        assert all(out.error == "EnvError: EnvValueError: step called sys.exit(3)"
                   for out in outcomes.values()), outcomes
        assert all(out.error is None for out in pool.reset({0: 3}).values())   # the pool lives on
    finally:
        pool.close()


def test_training_goes_on_and_stores_every_episode(tmp_path):
    SometimesBadEnv.made = itertools.count()
    cfg = load_config(None, [
        "env.id=test/SometimesBad-v0", "model.name=tiny-smollm2", f"logging.run_dir={tmp_path / 'run'}",
        "rollout.tasks_per_iteration=7", "rollout.group_size=2", "rollout.max_new_tokens=4",
        "rollout.think=false", "rollout.env_workers=14", "trainer.iterations=1",
        "trainer.micro_batch=8", "eval.tasks=0"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    with EpisodeStore(tmp_path / "run" / "episodes.db", readonly=True) as store:
        episodes = store.query(limit=None)
    assert len(episodes) == 14
    failed = [ep for ep in episodes if ep.termination == ENV_ERROR]
    assert len(failed) == 7
    messages = {ep.error for ep in failed}
    for expected, _ in FAULTS.values():
        assert any(expected in message and "EnvValueError" in message for message in messages), (expected, messages)
    assert (tmp_path / "run" / "checkpoints" / "iter_000001" / "state.pt").is_file()
