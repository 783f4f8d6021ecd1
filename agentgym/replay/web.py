"""``agentgym replay RUN_DIR``: a local, read-only web viewer over a run's episodes.

aiohttp serves server-rendered pages (``pages.py``) and two JSON endpoints; the only
files it serves are its own static files and files inside the run directory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web

from agentgym.errors import AgentGymError
from agentgym.replay import pages
from agentgym.replay.tree import tree_page
from agentgym.replay.filters import FILTER_NAMES, check_order, parse_filters
from agentgym.replay.run import Run, token_pieces
from agentgym.replay.views import anchor_groups, episode_dict, summary_dict
from agentgym.store import EpisodeNotFound

RUN_KEY = web.AppKey("run", Run)
STATIC = {"viewer.css": "text/css", "viewer.js": "text/javascript"}
PER_PAGE, MAX_PER_PAGE = 50, 500
MAX_QUERY_INT = 2**31 - 1   # pages, steps: far beyond any run, far inside SQLite's int64
DEFAULT_ORDER = "-iteration,episode"
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


def make_app(run: Run) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[RUN_KEY] = run
    app.add_routes([
        web.get("/", overview), web.get("/episodes", episode_list),
        web.get("/episode", episode), web.get("/anchor", anchor),
        web.get("/compare", compare), web.get("/tree", tree), web.get("/api/episodes", api_episodes),
        web.get("/api/episode", api_episode), web.get("/static/{name}", static),
        web.get("/run-file/{path:.*}", run_file)])
    return app


def serve(run_dir: str, host: str = "127.0.0.1", port: int = 8765,
          print_fn: Callable[[str], None] = print) -> None:
    """Serve until interrupted; the URL is printed once the socket is listening."""
    run = Run(run_dir)
    run.tokenizer  # load it now, not on the first episode page  # noqa: B018
    try:
        asyncio.run(_serve(run, host, port, print_fn))
    except KeyboardInterrupt:
        pass
    finally:
        run.close()


async def _serve(run: Run, host: str, port: int, print_fn: Callable[[str], None]) -> None:
    runner = web.AppRunner(make_app(run))
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise AgentGymError(f"cannot listen on {host}:{port} ({exc.strerror}): "
                                "pick another --port") from None
        shown = f"[{host}]" if ":" in host else host
        print_fn(f"agentgym replay: {run.dir} ({run.store.count()} episodes) at "
                 f"http://{shown}:{port}/  (Ctrl+C to stop)")
        await asyncio.Event().wait()  # until Ctrl+C / SIGTERM
    finally:
        await runner.cleanup()


@web.middleware
async def _errors(request: web.Request, handler):
    """Errors as an HTML page, or as JSON (``{"error": ...}``) under ``/api/``."""
    run = request.app[RUN_KEY]
    try:
        return await handler(request)
    except EpisodeNotFound as exc:
        status, message = 404, str(exc)
    except AgentGymError as exc:
        status, message = 400, str(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        status, message = exc.status, exc.text or exc.reason
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    return _html(pages.error_page(status, message, run.name), status=status)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Store reads and tokenizer decoding run in a thread: the server stays responsive."""
    return await asyncio.to_thread(fn, *args)


def _int(request: web.Request, name: str, default: int | None = None, low: int = 0,
         high: int = MAX_QUERY_INT) -> int:
    raw = request.query.get(name, "")
    if raw == "" and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AgentGymError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise AgentGymError(f"{name} must be between {low} and {high}")
    return value


def _listing(request: web.Request) -> tuple[dict[str, Any], int, int, str]:
    filters = parse_filters(request.query)
    page = _int(request, "page", 1, low=1)
    per_page = _int(request, "per_page", PER_PAGE, low=1, high=MAX_PER_PAGE)
    order = check_order(request.query.get("order") or DEFAULT_ORDER)
    return filters, page, per_page, order


# ---- pages ---------------------------------------------------------------------------

async def overview(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]

    def build() -> str:
        return pages.overview(run.name, run.config_text(), run.metrics(),
                              run.store.stats(by=("split", "task_type")),
                              run.store.stats(by=("split",)))

    return _html(pages.layout("overview", await _call(build), run.name))


async def episode_list(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    raw = {k: request.query.get(k, "") for k in (*FILTER_NAMES, "order", "page")}
    choices = {c: [] for c in ("split", "task_type", "env_id")}
    problem = None
    try:
        filters, page, per_page, order = _listing(request)
    except AgentGymError as exc:  # show the form again with the message
        filters, page, per_page, order, problem = {}, 1, PER_PAGE, DEFAULT_ORDER, str(exc)

    def build() -> str:
        store = run.store
        for column in choices:
            choices[column] = store.distinct(column)
        total = store.count(**filters)
        rows = store.query(limit=per_page, offset=(page - 1) * per_page, order=order, **filters)
        return pages.episode_list(rows, total, raw, page, per_page, choices, problem)

    body = await _call(build)
    return _html(pages.layout("episodes", body, run.name), status=400 if problem else 200)


def _episode_id(request: web.Request, name: str = "id") -> str:
    value = request.query.get(name, "")
    if not value:
        raise AgentGymError(f"give the episode id as ?{name}=EPISODE_ID")
    return value


async def episode(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    episode_id = _episode_id(request)

    def build() -> str:
        ep = run.store.get_episode(episode_id)
        tok = run.tokenizer
        pieces = [token_pieces(tok, s.response_ids) for s in ep.steps]
        prompts = [tok.decode(s.prompt_ids, skip_special_tokens=False) if tok is not None
                   else " ".join(map(str, s.prompt_ids)) for s in ep.steps]
        members = run.store.query(group_id=ep.group_id, limit=None, order="episode")
        images = [image_src(run, s.info.get("image") if isinstance(s.info, dict) else None)
                  for s in ep.steps]
        return pages.episode_page(ep, pieces, prompts, anchor_groups(run.store, ep), members,
                                  images)

    return _html(pages.layout(f"episode {episode_id}", await _call(build), run.name))


async def anchor(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    episode_id = _episode_id(request, "episode")
    index = _int(request, "step")

    def build() -> str:
        ep = run.store.get_episode(episode_id)
        step = next((s for s in ep.steps if s.index == index), None)
        if step is None:
            raise AgentGymError(f"episode {episode_id} has no step {index}")
        return pages.anchor_page(ep, step, anchor_groups(run.store, ep)[index])

    return _html(pages.layout("anchor group", await _call(build), run.name))


async def compare(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    a, b = _episode_id(request, "a"), _episode_id(request, "b")
    start = _int(request, "start", 0)

    def build() -> str:
        return pages.compare_page(run.store.get_episode(a), run.store.get_episode(b), start)

    return _html(pages.layout("side by side", await _call(build), run.name))


async def tree(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    group = request.query.get("group", "")
    if not group:
        raise AgentGymError("give the group as ?group=GROUP_ID")
    leaf = request.query.get("leaf") or None

    def build() -> str:
        members = run.store.query(group_id=group, limit=None, order="episode")
        if not members:
            raise AgentGymError(f"no episodes in group {group!r}")
        return tree_page(group, [run.store.get_episode(m.episode_id) for m in members], leaf)

    return _html(pages.layout(f"group {group}", await _call(build), run.name))


# ---- JSON ----------------------------------------------------------------------------

async def api_episodes(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    filters, page, per_page, order = _listing(request)

    def build() -> dict:
        rows = run.store.query(limit=per_page, offset=(page - 1) * per_page, order=order,
                               **filters)
        return {"total": run.store.count(**filters), "page": page, "per_page": per_page,
                "episodes": [summary_dict(s) for s in rows]}

    return web.json_response(await _call(build))


async def api_episode(request: web.Request) -> web.Response:
    run = request.app[RUN_KEY]
    episode_id = _episode_id(request)
    try:
        ep = await _call(run.store.get_episode, episode_id)
    except EpisodeNotFound as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.json_response(episode_dict(ep))


# ---- files ---------------------------------------------------------------------------

async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound(text=f"no static file {name}")
    text = resources.files("agentgym.replay").joinpath("static", name).read_text("utf-8")
    return web.Response(text=text, content_type=STATIC[name], charset="utf-8")


async def run_file(request: web.Request) -> web.StreamResponse:
    """A file inside the run directory (screenshots, config, the learning-curve plot)."""
    run = request.app[RUN_KEY]
    try:
        path = run.locate(request.match_info["path"])
    except PermissionError as exc:
        raise web.HTTPForbidden(text=str(exc)) from None
    except FileNotFoundError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.FileResponse(path)


def image_src(run: Run, value: Any) -> str | None:
    """Where a step's ``info["image"]`` can be shown from: a data URI, a file in the run
    directory, or bare base64 PNG data."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("data:image/"):
        return value
    try:
        run.locate(value)
        return "/run-file/" + quote(value)
    except (PermissionError, FileNotFoundError, OSError):
        pass
    if len(value) > 64 and _BASE64.fullmatch(value[:4096]):
        return "data:image/png;base64," + value
    return None
