"""`agentgym sft` and `trainer.init_from`: demonstrations, the loss mask, resume, warm starts.

One small SFT run (tiny model with LoRA, one-room TextWorld games, the expert's
demonstrations) is shared by the tests of this module.
"""

import gymnasium
import pytest
import torch
from safetensors.torch import load_file

import agentgym
from agentgym import TextSpace
from agentgym.cli import main
from agentgym.config import ModelConfig, LoraConfig, load_config
from agentgym.demonstrations import SPLIT, play_expert
from agentgym.episode import Episode, Step
from agentgym.errors import AgentGymError, ConfigError
from agentgym.metrics import read_metrics
from agentgym.policy.models import load_tokenizer
from agentgym.prompting import PromptTemplate, Turn, build_messages, register_template, template_for
from agentgym.samples import build_samples
from agentgym.sft import init_checkpoint, load_init_weights
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer, build_policy, make_engine

CONFIG = """\
env:
  id: agentgym/TextWorld-v0
  kwargs: {family: custom, world_size: 1, nb_objects: 3, quest_length: 1, num_games: 2}
  max_episode_steps: 3
model: {name: tiny-smollm2, lora: {r: 4, alpha: 8}}
rollout: {tasks_per_iteration: 1, group_size: 2, max_new_tokens: 6, think: false,
          history_length: 0}
trainer: {iterations: 1, lr: 1.0e-3, micro_batch: 8, checkpoint_every: 1}
sft: {tasks: 3, epochs: 2, lr: 1.0e-2, batch_size: 4, micro_batch: 2}
"""
ADAPTER = "model/adapter_model.safetensors"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sft") / "tw.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def sft_run(config_file):
    run_dir = config_file.parent / "sft_run"
    assert main(["sft", str(config_file), f"logging.run_dir={run_dir}"]) == 0
    return run_dir


def _demonstrations(run_dir):
    with EpisodeStore(run_dir, readonly=True) as store:
        return [store.get_episode(s.episode_id) for s in store.query(split=SPLIT, limit=None)]


def _expert_plan(env_id, kwargs, seed):
    env = agentgym.make(env_id, **kwargs)
    try:
        env.reset(seed=seed)
        return env.unwrapped.walkthrough()
    finally:
        env.close()


def test_loss_mask_covers_exactly_the_expert_reply(sft_run):
    tokenizer = load_tokenizer("tiny-smollm2")
    cfg = load_config(sft_run / "config.yaml")
    episodes = _demonstrations(sft_run)
    assert len(episodes) == 3 and all(ep.won for ep in episodes)
    for ep in episodes:
        plan = _expert_plan(cfg.env.id, cfg.env.kwargs, ep.seed)
        samples = build_samples([ep])
        assert len(samples) == len(ep.steps) == len(plan)
        for step, sample, action in zip(ep.steps, samples, plan):
            n = len(step.prompt_ids)
            assert sample.input_ids == step.prompt_ids + step.response_ids
            assert sample.loss_mask == [0] * n + [1] * len(step.response_ids)
            trained = [t for t, m in zip(sample.input_ids, sample.loss_mask) if m]
            # the <action> opener is prefilled on the prompt side; the reply stops at </action>
            assert tokenizer.decode(trained) == f"{action}</action>"
            assert tokenizer.decode(step.prompt_ids).endswith("<|im_start|>assistant\n<action>")
            assert step.action == action and step.action_valid


def test_prompt_ids_equal_what_the_rollout_builds(sft_run):
    cfg = load_config(sft_run / "config.yaml")
    policy = build_policy(cfg, seed=0)
    engine = make_engine(cfg, policy, "train", "rl")
    try:
        for ep in _demonstrations(sft_run):
            rollouts = engine.run([ep.seed])
            assert all(r.steps[0].prompt_ids == ep.steps[0].prompt_ids for r in rollouts)
    finally:
        engine.pool.close()


class CodeEnv(gymnasium.Env):
    """Press the three letters of a code the seed picks; each right press shows progress."""

    def __init__(self):
        self.observation_space = self.action_space = TextSpace()

    def _info(self, valid=True):
        return {"task_id": f"code-{self.code}", "won": self.done == len(self.code),
                "action_valid": valid, "anchor": self.code[:self.done],
                "admissible_actions": ["press a", "press b", "press c"], "task": "Press the code."}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.code = "".join(self.np_random.choice(list("abc"), size=3))
        self.done = 0
        return "Nothing pressed yet.", self._info()

    def step(self, action):
        right = action == f"press {self.code[self.done]}"
        self.done += right
        won = self.done == len(self.code)
        return f"{self.done} letters right.", float(won), won, False, self._info(right)

    def walkthrough(self):
        return [f"press {c}" for c in self.code]


agentgym.register("test/SftCode-v0", entry_point=CodeEnv, max_episode_steps=5)
agentgym.register("test/SftCodeRaw-v0", entry_point=CodeEnv, max_episode_steps=5)
register_template("test/SftCodeRaw-v0", PromptTemplate(raw_action=True, stop=()))


@pytest.mark.parametrize("env_id, think", [("test/SftCode-v0", True), ("test/SftCodeRaw-v0", False)])
def test_multi_step_prompts_show_the_history_and_replies_end_as_sampled(tmp_path, env_id, think):
    cfg = load_config(None, [f"env.id={env_id}", "model.name=tiny-smollm2", "sft.tasks=2",
                             f"rollout.think={think}", "rollout.history_length=2"])
    policy = build_policy(cfg)
    tokenizer, template = policy.tokenizer, template_for(env_id)
    episodes = play_expert(cfg, policy, "run")
    for ep in episodes:
        assert ep.won and ep.split == SPLIT and len(ep.steps) == 3
        history = []
        for step in ep.steps:
            messages = build_messages(template, "Press the code.", history, step.observation,
                                      ["press a", "press b", "press c"], 2, think)
            assert step.prompt_ids == policy.encode_chat(messages)
            if think:   # ends at the stop string, as generation does
                reply = tokenizer.encode(f"<think></think><action>{step.action}</action>",
                                         add_special_tokens=False)
            else:       # no stop string: a sampled reply ends with eos
                reply = tokenizer.encode(step.action, add_special_tokens=False) + [tokenizer.eos_token_id]
            assert step.response_ids == reply
            history.append(Turn(step.observation, step.action))
    assert len({ep.episode_id for ep in episodes}) == 2


def test_loss_falls_over_epochs(sft_run):
    losses = [r["sft/loss"] for r in read_metrics(sft_run) if "sft/loss" in r]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert sorted(p.name for p in (sft_run / "checkpoints").iterdir()) == ["iter_000001", "iter_000002"]


def _step(k, prompt, response, **extra):
    return Step(index=k, observation=f"obs {k}", prompt_ids=prompt, response_ids=response,
                logprobs=[-0.5] * len(response), entropies=[1.0] * len(response),
                response_text="r", action="look", action_valid=True, reward=0.0, anchor="a",
                **extra)


def _episode(episode_id, split, won, steps, **extra):
    return Episode(run_id="rl", iteration=1, split=split, group_id="g", episode_id=episode_id,
                   env_id="agentgym/TextWorld-v0", task_id="t", seed=0, steps=steps, won=won,
                   termination="success" if won else "failure", **extra)


def test_from_store_takes_only_won_episodes_with_their_exact_ids(tmp_path, config_file):
    shared = _step(0, [1, 2, 3, 4], [50, 51])
    source = [
        _episode("won", "train", True, [_step(0, [5, 6, 7], [60, 61, 62])]),
        _episode("lost", "train", False, [_step(0, [5, 6, 8], [70])]),
        _episode("held-out", "eval", True, [_step(0, [5, 6, 9], [80])]),
        _episode("root", "train", False, [shared, _step(1, [1, 2, 3, 4, 50, 51], [90])]),
        _episode("fork", "train", True,
                 [_step(0, [1, 2, 3, 4], [50, 51], info={"shared_from": "root"}),
                  _step(1, [1, 2, 3, 4, 50, 51], [91, 92])],
                 tree_id="root", parent_id="root", branch_step=1),
    ]
    with EpisodeStore(tmp_path / "rl") as store:
        store.add_episodes(source)
    run_dir = tmp_path / "sft"
    assert main(["sft", str(config_file), f"logging.run_dir={run_dir}", "sft.epochs=1",
                 "--from-store", str(tmp_path / "rl"), "--won"]) == 0
    copied = {ep.episode_id: ep for ep in _demonstrations(run_dir)}
    assert sorted(copied) == ["fork", "won"]
    expected = {"won": [([5, 6, 7], [60, 61, 62])],
                "fork": [([1, 2, 3, 4], [50, 51]), ([1, 2, 3, 4, 50, 51], [91, 92])]}
    for episode_id, steps in expected.items():
        assert [(s.prompt_ids, s.response_ids) for s in copied[episode_id].steps] == steps
    masked = [[t for t, m in zip(x.input_ids, x.loss_mask) if m]
              for x in build_samples(list(copied.values()))]
    assert sorted(masked) == [[50, 51], [60, 61, 62], [91, 92]]


def test_resume_continues_at_the_next_epoch_with_the_same_data(tmp_path, config_file, sft_run, capsys):
    run_dir = tmp_path / "cut"
    assert main(["sft", str(config_file), f"logging.run_dir={run_dir}", "sft.epochs=1"]) == 0
    assert main(["sft", str(config_file), f"logging.run_dir={run_dir}"]) == 2   # not over a run
    assert "agentgym sft --resume" in capsys.readouterr().err
    assert main(["sft", "--resume", str(run_dir), "sft.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "epoch 2/2" in out and "epoch 1/2" not in out
    assert len(_demonstrations(run_dir)) == 3          # trained on what it recorded
    resumed = load_file(str(run_dir / "checkpoints/iter_000002" / ADAPTER))
    straight = load_file(str(sft_run / "checkpoints/iter_000002" / ADAPTER))
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def _lora_state(model):
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model)


def test_init_from_starts_rl_from_the_sft_weights(tmp_path, config_file, sft_run):
    cfg = load_config(config_file, [f"logging.run_dir={tmp_path / 'rl'}",
                                    f"trainer.init_from={sft_run}"])
    trainer = Trainer(cfg)
    try:
        loaded = _lora_state(trainer.policy.model)
        assert trainer.start_iteration == 1
    finally:
        trainer.close()
    saved = load_file(str(sft_run / "checkpoints/iter_000002" / ADAPTER))
    key = next(k for k in saved if "lora_B" in k)
    assert saved[key].abs().sum() > 0                   # trained (LoRA B starts at zero)
    assert torch.equal(loaded[key], saved[key])


def test_init_from_a_bad_path_or_layout_is_one_clear_error(tmp_path, config_file, sft_run):
    cfg = load_config(config_file, [f"logging.run_dir={tmp_path / 'rl'}",
                                    f"trainer.init_from={tmp_path / 'nowhere'}"])
    with pytest.raises(AgentGymError, match="trainer.init_from: .*nowhere is neither a checkpoint"):
        Trainer(cfg)
    checkpoint = init_checkpoint(sft_run)
    assert checkpoint.name == "iter_000002"
    assert init_checkpoint(checkpoint) == checkpoint
    layouts = [(ModelConfig(name="tiny-smollm2"), "holds a LoRA adapter .*set model.lora"),
               (ModelConfig(name="tiny-smollm2", lora=LoraConfig(r=8, alpha=8)), "r=4, .*r=8"),
               (ModelConfig(name="smollm2-135m", lora=LoraConfig(r=4, alpha=8)),
                "trained from model 'tiny-smollm2'")]
    for model_cfg, message in layouts:
        with pytest.raises(AgentGymError, match=message):
            load_init_weights(None, checkpoint, model_cfg)


def test_sft_keys_are_validated_with_one_clear_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="Did you mean 'sft.epochs'"):
        load_config(None, ["sft.epoch=2"])
    with pytest.raises(ConfigError, match="sft.batch_size must be >= 1, got 0"):
        load_config(None, ["sft.batch_size=0"])
    with pytest.raises(ConfigError, match="sft.lr"):
        load_config(None, ["sft.lr=fast"])
    assert main(["sft"]) == 2
    assert "give a config file, or --resume RUN_DIR" in capsys.readouterr().err


def test_an_rl_run_started_from_sft_weights_resumes(tmp_path, config_file, sft_run, capsys):
    # with a KL term the reference is the initial (SFT) model, on resume too
    run_dir = tmp_path / "rl"
    assert main(["train", str(config_file), f"logging.run_dir={run_dir}",
                 f"trainer.init_from={sft_run}", "algorithm.loss.kl_coef=0.01"]) == 0
    assert "initial weights from" in capsys.readouterr().out
    assert main(["train", "--resume", str(run_dir), "trainer.iterations=2"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert (run_dir / "checkpoints/iter_000002/model/adapter_model.safetensors").is_file()
