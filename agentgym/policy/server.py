"""``agentgym serve``: an OpenAI-compatible chat-completions server over an HF policy.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (``messages``,
``max_tokens``/``max_completion_tokens``, ``temperature``, ``top_p``, ``top_k``, ``n=1``,
``stop``, ``logprobs``, ``seed`` accepted and ignored; no streaming) and ``GET /health``.

Concurrent requests are batched: generation runs in one worker thread, and every request
that arrives while a batch is generating waits in a queue; when the batch finishes, the
worker takes all queued requests that share the oldest request's sampling parameters
(up to ``max_batch_size``) as the next batch. Nothing waits on a timer.

As in the OpenAI API, a matched stop string is cut from the returned text (the policy
itself keeps it; see ``SamplingParams``).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from typing import Any

from aiohttp import web

from agentgym.errors import AgentGymError
from agentgym.policy.base import Completion, Policy, SamplingParams

_POLICY_KEY = web.AppKey("agentgym_policy", Policy)
_BATCHER_KEY = web.AppKey("agentgym_batcher", object)
_NAME_KEY = web.AppKey("agentgym_model_name", str)
_MAX_CHARS_KEY = web.AppKey("agentgym_max_prompt_chars", object)


class _BadRequest(Exception):
    def __init__(self, message: str, code: str = "invalid_request_error"):
        super().__init__(message)
        self.code = code


@dataclass
class _Pending:
    messages: list[dict]
    sampling: SamplingParams
    future: asyncio.Future


class _Batcher:
    """Queues chat requests and runs them through the policy in batches."""

    def __init__(self, policy: Policy, max_batch_size: int):
        self.policy = policy
        self.max_batch_size = max(1, int(max_batch_size))
        self.queue: list[_Pending] = []
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentgym-serve-gen")
        self.batches = 0  # number of generate calls made (for tests and logs)
        self.on_submit = None  # optional callback(queue_length), called on the event loop

    async def start(self, _app=None) -> None:
        self.wakeup = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self, _app=None) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        for item in self.queue:
            if not item.future.done():
                item.future.set_exception(web.HTTPServiceUnavailable(text="server shutting down"))
        self.queue.clear()
        self.executor.shutdown(wait=True)

    async def submit(self, messages: list[dict], sampling: SamplingParams) -> Completion:
        future = asyncio.get_running_loop().create_future()
        self.queue.append(_Pending(messages, sampling, future))
        assert self.wakeup is not None
        self.wakeup.set()
        if self.on_submit is not None:
            self.on_submit(len(self.queue))
        return await future

    def _take_batch(self) -> list[_Pending]:
        self.queue = [p for p in self.queue if not p.future.done()]  # drop cancelled requests
        if not self.queue:
            return []
        key = _sampling_key(self.queue[0].sampling)
        batch, rest = [], []
        for item in self.queue:
            if len(batch) < self.max_batch_size and _sampling_key(item.sampling) == key:
                batch.append(item)
            else:
                rest.append(item)
        self.queue = rest
        return batch

    async def _work(self) -> None:
        assert self.wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while True:
                batch = self._take_batch()
                if not batch:
                    break
                await self._run_batch(loop, batch)

    async def _run_batch(self, loop, batch: list[_Pending]) -> None:
        sampling = batch[0].sampling
        try:
            results = await loop.run_in_executor(
                self.executor, self.policy.generate_chat, [p.messages for p in batch], sampling)
            self.batches += 1
        except Exception as exc:  # noqa: BLE001 - delivered to the request(s)
            if len(batch) > 1:  # one bad request (e.g. too long) must not fail the others
                for p in batch:
                    await self._run_batch(loop, [p])
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for p, completion in zip(batch, results):
            if not p.future.done():
                p.future.set_result(completion)


def _sampling_key(s: SamplingParams) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in astuple(s))


def _error(status: int, message: str, code: str = "invalid_request_error") -> web.Response:
    return web.json_response({"error": {"message": message, "type": code, "code": code}}, status=status)


def _parse_request(body: Any, max_context: int | None = None,
                   max_chars: int | None = None) -> tuple[list[dict], SamplingParams, bool]:
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list of {role, content} objects")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _BadRequest(f"messages[{i}] must be an object with a string 'role'")
        content = m.get("content", "")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content
                              if isinstance(part, dict) and part.get("type") == "text")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _BadRequest(f"messages[{i}].content must be a string")
        clean.append({"role": m["role"], "content": content})
    if body.get("stream"):
        raise _BadRequest("streaming is not supported by agentgym serve")
    n = body.get("n", 1)
    if n not in (1, None):
        raise _BadRequest("only n=1 is supported; send several requests instead")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, key, 256, whole=True, low=1, high=max_context or 2**31)
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list):
        raise _BadRequest("'stop' must be a string or a list of strings")
    try:
        sampling = SamplingParams(
            max_new_tokens=max_tokens,
            temperature=_number(body, "temperature", 1.0, low=0.0, high=100.0),
            top_p=_number(body, "top_p", 1.0, low=0.0, high=1.0),
            top_k=_number(body, "top_k", 0, whole=True, low=0, high=2**31),
            stop_strings=[str(s) for s in stop if s],
        )
        sampling.validate()
    except (TypeError, ValueError, AgentGymError) as exc:
        raise _BadRequest(f"invalid sampling parameters: {exc}") from exc
    if max_chars is not None and sum(len(m["content"]) for m in clean) > max_chars:
        # cheap bound, before any tokenizing: so many characters cannot fit the context
        raise _BadRequest(f"the messages are longer than the model's context of {max_context} "
                          "tokens", "context_length_exceeded")
    return clean, sampling, bool(body.get("logprobs"))


def _number(body: dict, key: str, default, *, whole: bool = False, low: float, high: float):
    """``body[key]`` as a finite number in [low, high] (an int if ``whole``), else a 400."""
    value = body.get(key)
    if value is None:
        return default
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadRequest(f"'{key}' must be {kind}, not {json.dumps(value)[:40]}")
    if not math.isfinite(value) or (whole and value != int(value)):
        raise _BadRequest(f"'{key}' must be {kind}, not {value}")
    if not low <= value <= high:
        limit = f"at most {high}" if value > high else f"at least {low}"
        why = " (the model's context)" if key.startswith("max_") and value > high else ""
        raise _BadRequest(f"'{key}' must be {limit}{why}, got {value:.6g}")
    return int(value) if whole else float(value)


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _response(completion: Completion, sampling: SamplingParams, model: str, tokenizer, want_logprobs: bool) -> dict:
    text = _cut_at_stop(completion.text, sampling.stop_strings) if sampling.stop_strings else completion.text
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": completion.finish_reason,
        "logprobs": None,
    }
    if want_logprobs and completion.token_ids:
        pieces = []
        for tid, lp in zip(completion.token_ids, completion.logprobs):
            token = tokenizer.decode([tid]) if tokenizer is not None else str(tid)
            pieces.append({"token": token, "logprob": lp, "token_id": tid,
                           "bytes": list(token.encode("utf-8")), "top_logprobs": []})
        choice["logprobs"] = {"content": pieces}
    prompt_tokens = len(completion.prompt_ids)
    completion_tokens = len(completion.token_ids)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


async def _models(request: web.Request) -> web.Response:
    name = request.app[_NAME_KEY]
    return web.json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "agentgym",
         "max_model_len": request.app[_POLICY_KEY].max_context}]})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _chat(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the request body is not valid JSON")
    policy = request.app[_POLICY_KEY]
    try:
        messages, sampling, want_logprobs = _parse_request(
            body, policy.max_context, request.app[_MAX_CHARS_KEY])
    except _BadRequest as exc:
        return _error(400, str(exc), exc.code)
    batcher: _Batcher = request.app[_BATCHER_KEY]  # type: ignore[assignment]
    try:
        completion = await batcher.submit(messages, sampling)
    except AgentGymError as exc:
        code = "context_length_exceeded" if "context" in str(exc) else "invalid_request_error"
        return _error(400, str(exc), code)
    except web.HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001
        return _error(500, f"generation failed: {type(exc).__name__}: {exc}", "server_error")
    return web.json_response(_response(completion, sampling, request.app[_NAME_KEY],
                                       getattr(policy, "tokenizer", None), want_logprobs))


@web.middleware
async def _json_errors(request: web.Request, handler):
    """Every error this API gives is a JSON body, as in the OpenAI API (never HTML)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.text or exc.reason,
                      "not_found" if exc.status == 404 else "invalid_request_error")
    except Exception as exc:  # noqa: BLE001 - a bug must still answer in the API's format
        return _error(500, f"{type(exc).__name__}: {exc}", "server_error")


def _max_prompt_chars(policy: Policy) -> int | None:
    """Characters beyond which no prompt fits the context: the context times the longest
    vocabulary entry (one character is at least one byte of a byte-level token)."""
    tokenizer = getattr(policy, "tokenizer", None)
    if not policy.max_context or tokenizer is None or not hasattr(tokenizer, "get_vocab"):
        return None
    longest = max((len(token) for token in tokenizer.get_vocab()), default=0)
    return policy.max_context * max(longest, 1)


def build_app(policy: Policy, *, model_name: str | None = None, max_batch_size: int = 32) -> web.Application:
    """The aiohttp application serving ``policy`` (which must support ``generate_chat``)."""
    app = web.Application(client_max_size=16 * 1024 * 1024, middlewares=[_json_errors])
    app[_POLICY_KEY] = policy
    app[_MAX_CHARS_KEY] = _max_prompt_chars(policy)
    app[_NAME_KEY] = model_name or policy.name or "agentgym"
    batcher = _Batcher(policy, max_batch_size)
    app[_BATCHER_KEY] = batcher
    app.on_startup.append(batcher.start)
    app.on_cleanup.append(batcher.stop)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/health", _health)
    return app


class ServerThread:
    """Run ``build_app(policy)`` (or a ready ``web.Application``) on ``host:port`` in a
    background thread.

    ``port=0`` picks a free port; ``base_url`` (``http://host:port/v1``) is set once
    :meth:`start` returns (it waits on a readiness event, not a timer). Use as a
    context manager or call :meth:`stop`.
    """

    def __init__(self, policy: Policy | web.Application, host: str = "127.0.0.1", port: int = 0, **app_kwargs):
        self.policy, self.host, self.port = policy, host, int(port)
        self.app_kwargs = app_kwargs
        self.base_url: str | None = None
        self.app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 60.0) -> "ServerThread":
        self._thread = threading.Thread(target=self._main, name="agentgym-serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AgentGymError(f"the server did not start within {timeout} s")
        if self._error is not None:
            raise AgentGymError(f"the server could not start on {self.host}:{self.port}: {self._error}")
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _start_site(self) -> None:
        if isinstance(self.policy, web.Application):
            self.app = self.policy
        else:
            self.app = build_app(self.policy, **self.app_kwargs)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.port = int(port)
        self.base_url = f"http://{self.host}:{self.port}/v1"

    @property
    def batcher(self) -> "_Batcher | None":
        return self.app.get(_BATCHER_KEY) if self.app is not None else None  # type: ignore[return-value]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    lora: dict | None = None,
    seed: int | None = None,
    max_batch_size: int = 32,
    model_name: str | None = None,
    print_fn=print,
) -> None:
    """Load ``model`` with the HF backend and serve it until interrupted (Ctrl-C).

    Binds 127.0.0.1 by default; pass ``host="0.0.0.0"`` to accept remote clients
    (there is no authentication).
    """
    from agentgym.policy import make_policy

    policy = make_policy(model, "hf", dtype=dtype, device=device, lora=lora, seed=seed)
    app = build_app(policy, model_name=model_name or model, max_batch_size=max_batch_size)
    print_fn(f"agentgym serve: {model} at http://{host}:{port}/v1 (Ctrl-C to stop)")
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None)
    except OSError as exc:
        raise AgentGymError(f"could not listen on {host}:{port}: {exc}; is another server using that port?") from exc
