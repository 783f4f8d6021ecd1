"""One headless Chromium running MiniWoB++ pages, driven through the ``miniwob`` package.

``Browser`` extends miniwob's ``SeleniumInstance`` (which owns the page protocol:
seeding, starting an episode, reading utterance/DOM/screenshot/reward) with:

- a chromedriver started under ``_guard.py``, which reaps every Chromium process and
  kills them all if this Python process dies (no orphans, no zombies under PID 1);
- switching to another task in the same browser (``load``), so one browser serves
  every task of a suite and is reused across episodes;
- the in-page 10 s episode clock lifted after every page load.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import threading
import urllib.parse
from pathlib import Path

from agentgym.errors import AgentGymError

GUARD = str(Path(__file__).with_name("_guard.py"))
EPISODE_MAX_MS = 3_600_000
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--mute-audio",
                "--disable-background-networking", "--disable-component-update")


class BrowserSetupError(AgentGymError):
    """Chromium or chromedriver is missing."""


def find_binaries() -> tuple[str, str]:
    """(chromium, chromedriver): from MINIWOB_CHROME_BINARY / MINIWOB_CHROMEDRIVER, else PATH."""
    chrome = os.environ.get("MINIWOB_CHROME_BINARY") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = os.environ.get("MINIWOB_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chrome or not driver:
        raise BrowserSetupError(
            "MiniWoB needs Chromium and chromedriver: `sudo apt-get install -y chromium "
            "chromium-driver` (Debian/Ubuntu), or set MINIWOB_CHROME_BINARY and "
            "MINIWOB_CHROMEDRIVER to their paths")
    return chrome, driver


_server_lock = threading.Lock()
_server_base: str | None = None


def _http_base(html_dir: str) -> str:
    """One quiet HTTP server per process for the flight.* tasks (they refuse file://)."""
    global _server_base
    with _server_lock:
        if _server_base is None:
            from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

            class Quiet(SimpleHTTPRequestHandler):
                def log_message(self, format, *args):  # noqa: A002 - stdlib signature
                    pass

            httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                        functools.partial(Quiet, directory=html_dir))
            threading.Thread(target=httpd.serve_forever, daemon=True,
                             name="miniwob-http").start()
            _server_base = f"http://127.0.0.1:{httpd.server_address[1]}/"
        return _server_base


def _guarded_service(chromedriver: str):
    from selenium.webdriver.chrome.service import Service

    class GuardedService(Service):
        """chromedriver, started as ``python _guard.py PID chromedriver --port=N``."""

        def command_line_args(self) -> list[str]:
            return [GUARD, str(os.getpid()), chromedriver] + super().command_line_args()

    return GuardedService(executable_path=sys.executable)


def _instance_class():
    from miniwob.selenium_instance import DEFAULT_BASE_URL, HTML_DIR, SeleniumInstance

    class Browser(SeleniumInstance):
        def __init__(self, subdomain: str, base_url: str | None = None):
            if subdomain.startswith("flight.") and base_url is None:
                base_url = _http_base(str(HTML_DIR))
            super().__init__(index=0, subdomain=subdomain, headless=True, base_url=base_url,
                             reward_processor=_raw_reward)
            self._flight_base = base_url  # an http:// base for flight.* tasks, made lazily
            self.subdomain = subdomain
            self.driver = None

        def create_driver(self) -> None:
            from selenium import webdriver

            chrome, chromedriver = find_binaries()
            options = webdriver.ChromeOptions()
            for flag in CHROME_FLAGS:
                options.add_argument(flag)
            options.add_argument(f"--window-size={self.window_width},{self.window_height}")
            options.binary_location = chrome
            self.driver = webdriver.Chrome(service=_guarded_service(chromedriver),
                                           options=options)
            self._open_page()

        def _open_page(self) -> None:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support import expected_conditions as EC
            from selenium.webdriver.support.wait import WebDriverWait

            self.driver.get(self.url)
            WebDriverWait(self.driver, 10).until(
                EC.element_to_be_clickable((By.ID, self.SYNC_SCREEN_ID)))
            self.driver.execute_script(f"core.EPISODE_MAX_TIME = {EPISODE_MAX_MS};")
            self.inner_width, self.inner_height = self.driver.execute_script(
                "return [window.innerWidth, window.innerHeight];")

        def load(self, subdomain: str) -> None:
            """Show another task's page in the same browser (a restart if its window
            geometry differs: flight.* tasks are larger)."""
            if subdomain == self.subdomain:
                return
            from miniwob.fields import get_field_extractor

            was_flight = self.subdomain.startswith("flight.")
            is_flight = subdomain.startswith("flight.")
            self.subdomain = subdomain
            self.field_extractor = get_field_extractor(subdomain)
            if is_flight:
                if not self._flight_base:
                    self._flight_base = _http_base(str(HTML_DIR))
                self.url = urllib.parse.urljoin(
                    self._flight_base, subdomain.replace(".", "/") + "/wrapper.html")
            else:
                self.url = urllib.parse.urljoin(DEFAULT_BASE_URL, f"{subdomain}.html")
            if was_flight != is_flight:  # window and task sizes differ: start over
                from miniwob import constants as c

                self.close()
                prefix = "FLIGHT_" if is_flight else ""
                for name in ("window_width", "window_height", "task_width", "task_height"):
                    setattr(self, name, getattr(c, prefix + name.upper()))
                self.inner_width, self.inner_height = self.window_width, self.window_height
                self.driver = None
                return
            if self.driver is not None:
                self._open_page()

        def reset(self, obs, infos, seed) -> None:
            # the previous episode's focus would otherwise carry over to the new page
            # (a button clicked last episode shows up focused): same seed, same state
            self.driver.execute_script(
                "if (document.activeElement) document.activeElement.blur();")
            super().reset(obs, infos, seed)

        def ensure_started(self) -> None:
            if self.driver is None:
                self.create_driver()
                self.died = False

        def close(self) -> None:
            driver, self.driver = self.driver, None
            if driver is not None:
                try:
                    driver.quit()
                except Exception:  # noqa: BLE001 - the guard still stops everything
                    service = getattr(driver, "service", None)
                    if service is not None and getattr(service, "process", None) is not None:
                        service.process.kill()
                        service.process.wait()
            self.died = True

    return Browser


def _raw_reward(metadata) -> float:
    from miniwob.reward import get_raw_reward

    return get_raw_reward(metadata)


def new_browser(subdomain: str):
    """A ``Browser`` for ``subdomain``; Chromium starts on ``ensure_started``."""
    return _instance_class()(subdomain)
