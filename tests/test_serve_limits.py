"""Out-of-range input to `agentgym serve` and the viewer: JSON 4xx errors, never a 500 or
HTML, and no request so large that it occupies the generation thread."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from agentgym.policy import make_policy
from agentgym.policy.server import ServerThread
from tests.test_replay_web import fetch, run_dir  # noqa: F401 - the module-scoped run fixture

MESSAGES = '[{"role": "user", "content": "hi"}]'


@pytest.fixture(scope="module")
def server():
    tiny = make_policy("tiny-smollm2", seed=0)
    calls = []
    real = tiny.generate_chat

    def counted(conversations, sampling):
        calls.append(sum(len(m["content"]) for c in conversations for m in c))
        return real(conversations, sampling)

    tiny.generate_chat = counted
    with ServerThread(tiny, model_name="tiny-smollm2") as srv:
        srv.calls = calls
        yield srv
    tiny.close()


def post_raw(url: str, body: bytes, method: str = "POST") -> tuple[int, str, dict]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), json.loads(err.read())


@pytest.mark.parametrize("field, value, expected", [
    ("max_tokens", "1e400", "must be a whole number"),
    ("max_tokens", str(10**30), "at most"),
    ("max_tokens", "10000000", "the model's context"),
    ("max_tokens", "2.5", "must be a whole number"),
    ("max_completion_tokens", "-3", "at least 1"),
    ("temperature", "-1", "at least 0"),
    ("temperature", "NaN", "must be a number"),
    ("temperature", "Infinity", "must be a number"),
    ("temperature", "1e400", "must be a number"),
    ("temperature", '"hot"', "must be a number"),
    ("top_p", "1e400", "must be a number"),
    ("top_k", str(10**30), "at most"),
    ("stop", "5", "'stop' must be"),
])
def test_out_of_range_numbers_are_json_400s(server, field, value, expected):
    body = f'{{"messages": {MESSAGES}, "{field}": {value}}}'.encode()
    status, kind, reply = post_raw(server.base_url + "/chat/completions", body)
    assert status == 400 and kind.startswith("application/json"), (status, reply)
    assert expected in reply["error"]["message"], reply


def test_a_huge_prompt_is_refused_before_it_reaches_the_model(server):
    before = len(server.calls)
    body = json.dumps({"messages": [{"role": "user", "content": "x" * (12 << 20)}], "max_tokens": 2})
    status, _, reply = post_raw(server.base_url + "/chat/completions", body.encode())
    assert status == 400 and reply["error"]["code"] == "context_length_exceeded"
    assert len(server.calls) == before          # never tokenized in the generation thread
    ok, _, answer = post_raw(server.base_url + "/chat/completions",
                             f'{{"messages": {MESSAGES}, "max_tokens": 2}}'.encode())
    assert ok == 200 and answer["choices"][0]["message"]["role"] == "assistant"


def test_unknown_routes_and_methods_answer_in_json(server):
    root = server.base_url.removesuffix("/v1")
    for url, method in ((root + "/v1/nothing", "GET"), (server.base_url + "/chat/completions", "GET")):
        status, kind, reply = post_raw(url, None, method=method)
        assert status in (404, 405) and kind.startswith("application/json") and "error" in reply


def test_viewer_rejects_out_of_range_numbers_with_4xx(run_dir):  # noqa: F811
    results = fetch(run_dir, f"/episodes?page={10**30}", f"/api/episodes?page={10**30}",
                    f"/api/episodes?iteration={10**30}", "/api/episodes?per_page=1e400",
                    f"/anchor?episode=train-1-0-1&step={10**30}", "/api/nothing")
    for status, _ in results:
        assert 400 <= status < 500, results
    api = [body for (_, body), path in zip(results, range(6)) if path in (1, 2, 3, 5)]
    for body in api:
        assert "error" in json.loads(body), body
