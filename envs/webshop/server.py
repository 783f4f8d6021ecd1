"""The shop as a website (aiohttp): ``agentgym webshop-serve`` starts it.

Each visitor session is one ``WebShopEnv``; a form post is one ``env.step`` with the
action the clicked button stands for, then a redirect back to the session page. So the
browser drives the very environment an agent plays, page for page.

Routes: ``/`` lists goals; ``/start?goal=N`` opens a session on goal N;
``/s/<id>`` shows (GET) or acts on (POST ``action=...`` or ``search_query=...``) it.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import OrderedDict
from typing import Any

from aiohttp import web

from agentgym.envs.webshop.env import WebShopEnv
from agentgym.envs.webshop.html import render_index, render_page

MAX_SESSIONS = 1000
GOALS_LISTED = 50


class ShopSite:
    def __init__(self, **env_kwargs: Any):
        self.env_kwargs = env_kwargs
        self.template = WebShopEnv(**env_kwargs)   # builds/loads the catalogue and index once
        self.sessions: OrderedDict[str, WebShopEnv] = OrderedDict()
        self.lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/", self.index), web.get("/start", self.start),
                        web.get("/s/{sid}", self.show), web.post("/s/{sid}", self.act)])
        return app

    async def index(self, request: web.Request) -> web.Response:
        n = min(GOALS_LISTED, self.template.num_goals)
        goals = [(i, self.template.goal(i).instruction_text) for i in range(n)]
        return web.Response(text=render_index(goals, self.template.split), content_type="text/html")

    async def start(self, request: web.Request) -> web.Response:
        try:
            goal = int(request.query.get("goal", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="goal must be a number") from None
        if not 0 <= goal < self.template.num_goals:
            raise web.HTTPBadRequest(text=f"goal must be in [0, {self.template.num_goals})")
        env = WebShopEnv(**self.env_kwargs)
        env.reset(options={"goal_index": goal})
        sid = secrets.token_hex(6)
        with self.lock:
            self.sessions[sid] = env
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        raise web.HTTPSeeOther(f"/s/{sid}")

    def _env(self, request: web.Request) -> tuple[str, WebShopEnv]:
        sid = request.match_info["sid"]
        env = self.sessions.get(sid)
        if env is None:
            raise web.HTTPNotFound(text="no such session; start one from /")
        return sid, env

    async def show(self, request: web.Request) -> web.Response:
        sid, env = self._env(request)
        return web.Response(text=render_page(env.shop, f"/s/{sid}"), content_type="text/html")

    async def act(self, request: web.Request) -> web.Response:
        sid, env = self._env(request)
        form = await request.post()
        if "search_query" in form:
            action = f"search[{form['search_query']}]"
        else:
            action = str(form.get("action", ""))
        if action.strip() and env.shop.page != "done":
            env.step(action)
        raise web.HTTPSeeOther(f"/s/{sid}")


class BackgroundServer:
    """The site on its own thread and event loop (tests, notebooks)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **env_kwargs: Any):
        self.site = ShopSite(**env_kwargs)
        self.host, self.port = host, port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(self.site.app())
            self._loop.run_until_complete(self._runner.setup())
            tcp = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(tcp.start())
            self.port = self._runner.addresses[0][1]
        except BaseException as e:  # noqa: BLE001 - reported by __enter__
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def serve(host: str = "127.0.0.1", port: int = 3000, **env_kwargs: Any) -> None:
    """Serve the shop until interrupted."""
    site = ShopSite(**env_kwargs)
    print(f"WebShop ({len(site.template.catalog)} products, {site.template.split} goals) "
          f"on http://{host}:{port}/")
    web.run_app(site.app(), host=host, port=port, print=None)
