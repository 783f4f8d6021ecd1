"""OpenAI-compatible HTTP backend (evaluation, prompting baselines, external servers).

``OpenAIPolicy`` posts each conversation to ``{base_url}/chat/completions``; a batch is
sent concurrently (at most ``concurrency`` requests in flight) from a private asyncio
event loop running in a background thread, so it works from plain synchronous code and
from inside a running event loop alike. Connection errors, timeouts, 429 and 5xx
responses are retried with exponential backoff (``max_retries`` times); other 4xx
responses fail at once with the server's message.

The server sees text, not token ids, so the policy is not trainable: ``prompt_ids`` and
``token_ids`` are empty, and ``logprobs``/``entropies`` are empty unless the server
returns per-token logprobs (then ``logprobs`` holds them; entropies stay empty).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.policy.base import FINISH_LENGTH, FINISH_STOP, Completion, Policy, SamplingParams

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _RetryableError(Exception):
    pass


class OpenAIPolicy(Policy):
    """Chat completions from an OpenAI-compatible server.

    ``base_url``: e.g. ``http://127.0.0.1:8000/v1`` (``agentgym serve``) or
    ``https://api.openai.com/v1``; defaults to ``$OPENAI_BASE_URL``.
    ``api_key``: sent as ``Authorization: Bearer ...``; defaults to ``$OPENAI_API_KEY``.
    ``model``: the model name the server expects.
    """

    trainable = False

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        max_context: int | None = None,
        concurrency: int = 16,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        request_logprobs: bool = False,
        extra_body: dict | None = None,
        seed: int | None = None,
    ):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise AgentGymError("the openai backend needs a base_url, e.g. http://127.0.0.1:8000/v1 "
                                "(start one with `agentgym serve --model NAME`)")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.name = model
        self.max_context = max_context
        self.concurrency = max(1, int(concurrency))
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = float(backoff_s)
        self.request_logprobs = bool(request_logprobs)
        self.extra_body = dict(extra_body or {})
        self.seed = seed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session = None
        self._start_lock = threading.Lock()

    # -- event loop in a background thread -----------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name="agentgym-openai-client", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
        return self._loop

    def _run(self, coro):
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def _get_session(self):
        import aiohttp

        if self._session is None or self._session.closed:
            headers = {"Content-Type": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            timeout = aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=self.connect_timeout_s)
            connector = aiohttp.TCPConnector(limit=self.concurrency)
            self._session = aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector)
        return self._session

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or loop.is_closed():
            return
        if threading.current_thread() is thread:  # e.g. garbage-collected on the loop thread
            loop.call_soon(loop.stop)
            return

        async def shutdown() -> None:
            if self._session is not None and not self._session.closed:
                await self._session.close()
            self._session = None

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- requests ------------------------------------------------------------

    def _body(self, messages: list[dict], sampling: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": int(sampling.max_new_tokens),
            "temperature": max(0.0, float(sampling.temperature)),
            "top_p": float(sampling.top_p),
            "n": 1,
        }
        if sampling.stop_strings:
            body["stop"] = list(sampling.stop_strings)
        if sampling.top_k:
            body["top_k"] = int(sampling.top_k)  # understood by vLLM and agentgym serve
        if self.request_logprobs:
            body["logprobs"] = True
        if self.seed is not None:
            body["seed"] = int(self.seed)
        body.update(self.extra_body)
        return body

    async def _post_once(self, body: dict) -> dict:
        import aiohttp

        session = await self._get_session()
        url = f"{self.base_url}/chat/completions"
        try:
            async with session.post(url, data=json.dumps(body)) as resp:
                text = await resp.text()
                if resp.status in _RETRY_STATUS:
                    raise _RetryableError(f"HTTP {resp.status} from {url}: {text[:200]}")
                if resp.status >= 400:
                    raise AgentGymError(f"the server at {self.base_url} rejected the request "
                                        f"(HTTP {resp.status}): {_error_message(text)}")
                try:
                    return json.loads(text)
                except ValueError:
                    raise AgentGymError(f"the server at {self.base_url} returned invalid JSON: {text[:200]!r}")
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, aiohttp.ClientPayloadError) as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from exc

    async def _post(self, body: dict) -> dict:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post_once(body)
            except _RetryableError as exc:
                last = exc
                if attempt < self.max_retries:
                    delay = self.backoff_s * (2 ** attempt) * (1.0 + 0.25 * random.random())
                    await asyncio.sleep(delay)
        raise AgentGymError(
            f"could not get a completion from {self.base_url}/chat/completions after "
            f"{self.max_retries + 1} attempts ({last}); is the server running at {self.base_url}?")

    async def _gather(self, conversations: list[list[dict]], sampling: SamplingParams) -> list[dict]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(messages: list[dict]) -> dict:
            async with limit:
                return await self._post(self._body(messages, sampling))

        return await asyncio.gather(*(one(c) for c in conversations))

    # -- Policy API ----------------------------------------------------------

    def generate(self, prompts: list[list[int]], sampling: SamplingParams | None = None) -> list[Completion]:
        if not prompts:
            return []
        raise NotImplementedError(
            "the openai backend works on chat messages, not token ids; use generate_chat")

    def generate_chat(self, conversations: list[list[dict]], sampling: SamplingParams | None = None) -> list[Completion]:
        sampling = sampling or SamplingParams()
        sampling.validate()
        if not conversations:
            return []
        responses = self._run(self._gather([list(c) for c in conversations], sampling))
        return [_to_completion(r, self.base_url) for r in responses]

    def list_models(self) -> list[str]:
        """Model ids the server offers (``GET {base_url}/models``)."""

        async def get() -> dict:
            session = await self._get_session()
            try:
                async with session.get(f"{self.base_url}/models") as resp:
                    return json.loads(await resp.text())
            except Exception as exc:
                raise AgentGymError(f"could not list models at {self.base_url}/models ({exc}); "
                                    f"is the server running at {self.base_url}?") from exc

        return [m.get("id", "") for m in self._run(get()).get("data", [])]


def _error_message(text: str) -> str:
    try:
        err = json.loads(text).get("error")
        if isinstance(err, dict):
            return str(err.get("message", err))
        if err:
            return str(err)
    except (ValueError, AttributeError):
        pass
    return text[:300]


def _to_completion(response: dict, base_url: str) -> Completion:
    try:
        choice = response["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise AgentGymError(f"the server at {base_url} returned no choices: {str(response)[:300]}")
    message = choice.get("message") or {}
    text = message.get("content") or choice.get("text") or ""
    reason = choice.get("finish_reason") or FINISH_STOP
    finish = FINISH_LENGTH if reason == "length" else FINISH_STOP
    logprobs: list[float] = []
    token_ids: list[int] = []
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("content"), list):
        logprobs = [float(item.get("logprob", 0.0)) for item in lp["content"]]
        ids = [item.get("token_id") for item in lp["content"]]
        if ids and all(isinstance(i, int) for i in ids):
            token_ids = ids
    return Completion(prompt_ids=[], token_ids=token_ids, logprobs=logprobs, entropies=[],
                      text=text, finish_reason=finish)
