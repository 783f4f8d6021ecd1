"""The viewer in a real browser (headless Chromium) on a real training run.

Trains the tiny model on TextWorld for one iteration, starts ``agentgym replay``'s web
app on a free port, and clicks through it the way a person would: filter to a failed
episode, open it, read it, follow an anchor-group link. Saves a screenshot."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from agentgym.config import load_config
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.path.exists(CHROMEDRIVER) and os.path.exists(CHROMIUM)),
                       reason="needs Debian's chromium and chromium-driver"),
]

CONFIG = """\
env:
  id: agentgym/TextWorld-v0
  kwargs: {family: custom, world_size: 1, nb_objects: 3, quest_length: 1, num_games: 2}
  max_episode_steps: 3
model: {name: tiny-smollm2}
rollout: {tasks_per_iteration: 1, group_size: 3, max_new_tokens: 6, think: false,
          history_length: 0}
trainer: {iterations: 1, lr: 1.0e-3, micro_batch: 8, checkpoint_every: 1}
"""


def _train(root, overrides=()):
    (root / "tw.yaml").write_text(CONFIG)
    cfg = load_config(root / "tw.yaml", [f"logging.run_dir={root / 'run'}", *overrides])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    return root / "run"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def tree_run(tmp_path_factory):
    """The same run with Tree-GRPO rollouts: 2 trees, two expansions each (6 leaves)."""
    return _train(tmp_path_factory.mktemp("browser-tree"), [
        "rollout.strategy=tree_grpo", "rollout.tree.trees=2", "rollout.tree.expansions=2",
        "algorithm.advantage.episode=tree_grpo"])


@pytest.fixture(scope="module")
def viewer(real_run):
    yield from _serving(real_run)


@pytest.fixture(scope="module")
def tree_viewer(tree_run):
    yield from _serving(tree_run)


def _serving(run_dir):
    """The viewer's aiohttp app serving ``run_dir`` on 127.0.0.1 from a thread."""
    from aiohttp import web

    from agentgym.replay.run import Run
    from agentgym.replay.web import make_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = Run(run_dir)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(make_app(run))
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.run_until_complete(runner.cleanup())
    loop.close()
    run.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1300,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


def _until(browser, condition):
    """Waits (polling, up to 10 s) for a page a click navigated to: reading the URL or a
    heading straight after ``click()`` can still see the page being left."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, 10, ignored_exceptions=ignored).until(condition)


def _url_has(fragment):
    return lambda driver: fragment in driver.current_url


def _heading_is(text):
    from selenium.webdriver.common.by import By

    return lambda driver: driver.find_element(By.TAG_NAME, "h1").text == text


def test_filter_open_read_and_follow_an_anchor_group(real_run, viewer, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with EpisodeStore(real_run, readonly=True) as store:
        failed = store.query(won=False, split="train", limit=None, order="episode")
    assert failed, "the tiny random model should lose"

    browser.get(viewer + "/")
    assert "Learning curves" in browser.page_source
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    browser.find_element(By.LINK_TEXT, "episodes").click()

    Select(browser.find_element(By.NAME, "outcome")).select_by_value("lost")
    Select(browser.find_element(By.NAME, "split")).select_by_value("train")
    browser.find_element(By.ID, "apply").click()
    _until(browser, _url_has("outcome=lost"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#episodes tr.lost")
    assert len(rows) == len(failed) and not browser.find_elements(By.CSS_SELECTOR, "#episodes tr.won")
    first = browser.find_element(By.CSS_SELECTOR, "#episodes a.episode-link")
    episode_id = first.text
    first.click()

    with EpisodeStore(real_run, readonly=True) as store:
        episode = store.get_episode(episode_id)
    _until(browser, _heading_is(f"Episode {episode_id}"))
    steps = browser.find_elements(By.CSS_SELECTOR, "section.step")
    assert len(steps) == episode.length > 0
    first_step = steps[0]
    assert episode.steps[0].observation.split("\n")[0] in first_step.text
    tokens = first_step.find_elements(By.CSS_SELECTOR, ".heatmap .tok")
    assert len(tokens) == len(episode.steps[0].response_ids)
    # the tokenizer decoded the sampled ids: the tokens spell the reply
    assert "".join(t.get_attribute("textContent") for t in tokens) == episode.steps[0].response_text
    before = tokens[0].value_of_css_property("background-color")
    Select(browser.find_element(By.ID, "heat-mode")).select_by_value("entropy")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-heat") == "entropy"
    assert tokens[0].value_of_css_property("background-color") != before
    prompt = first_step.find_element(By.CSS_SELECTOR, "details.prompt")
    prompt.find_element(By.TAG_NAME, "summary").click()
    assert prompt.get_attribute("open") is not None
    assert "<|im_start|>" in prompt.find_element(By.TAG_NAME, "pre").text

    first_step.find_element(By.CSS_SELECTOR, "a.anchor-link").click()
    _until(browser, _heading_is("Anchor group"))
    members = browser.find_elements(By.CSS_SELECTOR, "#members a.member-link")
    assert len(members) >= 3  # every member of the group starts from the same state
    assert episode_id in [m.text for m in members]
    other = next(m for m in members if m.text != episode_id)
    other_id = other.text
    other.click()
    _until(browser, _heading_is(f"Episode {other_id}"))
    assert browser.current_url.endswith("#step-0")

    browser.find_element(By.CSS_SELECTOR, "a.compare-link").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cmp-col")) == 2

    browser.get(viewer + "/run-file/..%2F..%2Fetc%2Fpasswd")
    assert "root:" not in browser.page_source

    browser.get(viewer + f"/episode?id={episode_id}")
    shot = Path(os.environ.get("AGENTGYM_SCREENSHOT_DIR", tmp_path)) / "replay_episode.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_a_tree_group_is_drawn_as_a_tree(tree_run, tree_viewer, browser, tmp_path):
    from selenium.webdriver.common.by import By

    with EpisodeStore(tree_run, readonly=True) as store:
        episodes = [store.get_episode(e.episode_id)
                    for e in store.query(split="train", limit=None, order="episode")]
    forks = [ep for ep in episodes if ep.parent_id is not None]
    assert len(episodes) == 6 and len(forks) == 4
    fork = forks[0]

    browser.get(tree_viewer + f"/episode?id={fork.episode_id}")
    browser.find_element(By.CSS_SELECTOR, "a.tree-link").click()
    _until(browser, _heading_is(f"Group {fork.group_id} as a tree"))
    # one node per distinct step, plus the root; the leaf's path is highlighted
    distinct = {ep.node_key(k) for ep in episodes for k in range(ep.length)}
    assert len(browser.find_elements(By.CSS_SELECTOR, ".tree-node")) == len(distinct) + 1
    path = browser.find_elements(By.CSS_SELECTOR, ".tree-node.on-path")
    assert len(path) == fork.length + 1
    leaves = browser.find_elements(By.CSS_SELECTOR, "a.tree-leaf")
    assert sorted(a.text for a in leaves) == sorted(ep.episode_id for ep in episodes)
    other = next(a for a in leaves if a.text != fork.episode_id)
    other_id = other.text
    other.click()
    _until(browser, _url_has(f"leaf={other_id}"))
    other_ep = next(ep for ep in episodes if ep.episode_id == other_id)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".tree-node.on-path")) == other_ep.length + 1

    shot = Path(os.environ.get("AGENTGYM_SCREENSHOT_DIR", tmp_path)) / "replay_tree.png"
    assert browser.save_screenshot(str(shot))
    links = browser.find_elements(By.CSS_SELECTOR, "a.tree-compare")
    assert links, "a tree with forks has nodes with two branches"
    links[-1].click()   # a fork below the root when there is one: siblings sharing steps
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cmp-col")) == 2
