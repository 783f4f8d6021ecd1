"""`agentgym serve` and the OpenAI-compatible client, end to end over real HTTP on
127.0.0.1 (ephemeral ports, servers in background threads, readiness via events)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import urllib.error
import urllib.request

import pytest
from aiohttp import web

from agentgym.errors import AgentGymError
from agentgym.policy import SamplingParams, make_policy
from agentgym.policy.openai_client import OpenAIPolicy
from agentgym.policy.server import ServerThread


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if os.environ.get("AGENTGYM_CACHE"):  # conftest's per-session temp cache
        yield make_policy("tiny-smollm2", seed=0)
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTGYM_CACHE", str(tmp_path_factory.getbasetemp() / "agentgym-cache"))
        yield make_policy("tiny-smollm2", seed=0)


@pytest.fixture(scope="module")
def server(tiny):
    with ServerThread(tiny, model_name="tiny-smollm2") as srv:
        yield srv


@pytest.fixture
def client(server):
    policy = make_policy("tiny-smollm2", backend="openai", base_url=server.base_url, api_key="sk-test")
    yield policy
    policy.close()


def post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_binds_localhost_and_lists_models(server, client):
    assert server.base_url.startswith("http://127.0.0.1:")
    assert client.list_models() == ["tiny-smollm2"]
    assert not client.trainable


def test_chat_completions_shape_and_usage(server, tiny):
    status, body = post(server.base_url + "/chat/completions", {
        "model": "tiny-smollm2",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 7, "temperature": 0.0, "logprobs": True,
    })
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "tiny-smollm2"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    prompt = tiny.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    assert usage["prompt_tokens"] == len(prompt)
    assert 1 <= usage["completion_tokens"] <= 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert len(choice["logprobs"]["content"]) == usage["completion_tokens"]
    # greedy over HTTP == greedy in process
    local = tiny.generate([prompt], SamplingParams(max_new_tokens=7, temperature=0.0))[0]
    assert choice["message"]["content"] == local.text
    assert [t["token_id"] for t in choice["logprobs"]["content"]] == local.token_ids


def test_client_generate_chat_batch(client, tiny):
    convos = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    outs = client.generate_chat(convos, greedy)
    local = tiny.generate_chat(convos, greedy)
    assert [o.text for o in outs] == [o.text for o in local]
    for out in outs:
        assert out.prompt_ids == [] and out.token_ids == [] and out.logprobs == []
        assert out.finish_reason in ("stop", "length")
    assert client.generate_chat([], greedy) == []
    with pytest.raises(NotImplementedError):
        client.encode_chat(convos[0])
    with pytest.raises(NotImplementedError):
        client.generate([[1, 2, 3]], greedy)


def test_client_reads_logprobs_when_asked(server, tiny):
    with OpenAIPolicy("tiny-smollm2", base_url=server.base_url, request_logprobs=True) as client:
        out = client.generate_chat([[{"role": "user", "content": "hi"}]],
                                   SamplingParams(max_new_tokens=4, temperature=0.0))[0]
    assert len(out.token_ids) == len(out.logprobs) >= 1


def test_stop_strings_are_cut_from_the_text(server):
    # with greedy decoding the reply is fixed; use its own second token's text as "stop"
    body = {"messages": [{"role": "user", "content": "stop test"}], "max_tokens": 8, "temperature": 0.0}
    _, full = post(server.base_url + "/chat/completions", body)
    text = full["choices"][0]["message"]["content"]
    assert len(text) > 2
    stop = text[len(text) // 2:][:2]
    status, cut = post(server.base_url + "/chat/completions", dict(body, stop=stop))
    assert status == 200
    assert cut["choices"][0]["message"]["content"] == text[: text.find(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_bad_requests_get_400(server, client):
    url = server.base_url + "/chat/completions"
    assert post(url, {"messages": []})[0] == 400
    assert post(url, {"messages": [{"role": "user", "content": "x"}], "n": 2})[0] == 400
    assert post(url, {"messages": [{"role": "user", "content": "x"}], "stream": True})[0] == 400
    assert post(url, {"messages": [{"role": "user", "content": "x"}], "top_p": 0})[0] == 400
    # the client reports a 4xx at once (no retries), with the server's message
    with pytest.raises(AgentGymError, match="HTTP 400.*messages"):
        client._run(client._post({"messages": "nope"}))


def test_context_overflow_is_a_400(server, tiny):
    status, body = post(server.base_url + "/chat/completions", {
        "messages": [{"role": "user", "content": "word " * 9000}], "max_tokens": 4})
    assert status == 400 and "context" in body["error"]["message"]


def _gated(tiny):
    """A policy whose first batch blocks until ``release`` is set; batch sizes in ``sizes``."""
    entered, release, sizes = threading.Event(), threading.Event(), []

    class Gated:
        name, max_context, trainable = "gated", 8192, True
        tokenizer = tiny.tokenizer

        def generate_chat(self, conversations, sampling):
            sizes.append(len(conversations))
            if len(sizes) == 1:
                entered.set()
                assert release.wait(60)
            return tiny.generate_chat(conversations, sampling)

    return Gated(), entered, release, sizes


def test_concurrent_requests_are_batched(tiny):
    """While a batch generates, new requests queue up and go out together."""
    gated, entered, release, sizes = _gated(tiny)
    queued3 = threading.Event()

    with ServerThread(gated) as srv:
        srv.batcher.on_submit = lambda n: queued3.set() if n >= 3 else None
        url = srv.base_url + "/chat/completions"
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0.0}
        results = []
        first = threading.Thread(target=lambda: results.append(post(url, body)))
        first.start()
        assert entered.wait(60)
        others = [threading.Thread(target=lambda: results.append(post(url, body))) for _ in range(3)]
        for t in others:
            t.start()
        assert queued3.wait(60)
        release.set()
        for t in [first, *others]:
            t.join(60)
    assert sizes == [1, 3]
    assert [r[0] for r in results] == [200] * 4
    assert len({r[1]["choices"][0]["message"]["content"] for r in results}) == 1


def test_unreachable_server_gives_a_clear_error():
    port = free_port()
    with OpenAIPolicy("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01) as client:
        with pytest.raises(AgentGymError, match="is the server running"):
            client.generate_chat([[{"role": "user", "content": "hi"}]], SamplingParams(max_new_tokens=2))


def test_client_retries_5xx_and_sends_the_api_key():
    seen = {"calls": 0, "auth": set()}

    async def handler(request: web.Request) -> web.Response:
        seen["calls"] += 1
        seen["auth"].add(request.headers.get("Authorization"))
        body = await request.json()
        if seen["calls"] % 2 == 1:  # every request fails once
            return web.json_response({"error": {"message": "busy"}}, status=503)
        return web.json_response({"choices": [{"index": 0, "finish_reason": "length",
                                               "message": {"role": "assistant", "content": body["messages"][-1]["content"].upper()}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    with ServerThread(app) as srv:
        with OpenAIPolicy("m", base_url=srv.base_url, api_key="sk-abc", concurrency=1, backoff_s=0.001) as client:
            outs = client.generate_chat([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]],
                                        SamplingParams(max_new_tokens=2))
    assert [o.text for o in outs] == ["A", "B"]
    assert all(o.finish_reason == "length" for o in outs)
    assert seen["calls"] == 4 and seen["auth"] == {"Bearer sk-abc"}


def test_client_gives_up_after_bounded_retries():
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    with ServerThread(app) as srv:
        with OpenAIPolicy("m", base_url=srv.base_url, max_retries=2, backoff_s=0.001) as client:
            with pytest.raises(AgentGymError, match="after 3 attempts"):
                client.generate_chat([[{"role": "user", "content": "x"}]], SamplingParams(max_new_tokens=2))
    assert len(calls) == 3


def test_client_works_inside_a_running_event_loop(client):
    async def main():
        return client.generate_chat([[{"role": "user", "content": "from async"}]],
                                    SamplingParams(max_new_tokens=2, temperature=0.0))

    outs = asyncio.run(main())
    assert len(outs) == 1 and outs[0].finish_reason in ("stop", "length")


def test_make_policy_openai_needs_a_url(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AgentGymError, match="base_url"):
        make_policy("m", backend="openai")


def test_one_bad_request_does_not_fail_its_batch(tiny):
    gated, entered, release, calls = _gated(tiny)
    queued2 = threading.Event()

    with ServerThread(gated) as srv:
        srv.batcher.on_submit = lambda n: queued2.set() if n >= 2 else None
        url = srv.base_url + "/chat/completions"
        ok = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        too_long = {"messages": [{"role": "user", "content": "word " * 9000}], "max_tokens": 2}
        results = {}
        threads = [threading.Thread(target=lambda k=k, b=b: results.__setitem__(k, post(url, b)))
                   for k, b in (("first", ok), ("ok", ok), ("long", too_long))]
        threads[0].start()
        assert entered.wait(60)
        threads[1].start()
        threads[2].start()
        assert queued2.wait(60)
        release.set()
        for t in threads:
            t.join(60)
    assert calls == [1, 2, 1, 1]  # the failed batch of two is retried one by one
    assert results["first"][0] == 200 and results["ok"][0] == 200
    assert results["long"][0] == 400 and "context" in results["long"][1]["error"]["message"]
