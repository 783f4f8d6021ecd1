"""The replay viewer's HTTP handlers, through aiohttp's test client on a real run dir."""

from __future__ import annotations

import asyncio
import re
from html import unescape

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agentgym.replay.run import Run
from agentgym.replay.web import make_app
from tests.replay_runs import PNG, make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("replay") / "run")


def fetch(run_dir, *requests):
    """GET each path (or (method, path)); return [(status, body text or bytes)]."""
    async def go():
        with Run(run_dir, tokenizer=False) as run:
            async with TestClient(TestServer(make_app(run))) as client:
                out = []
                for req in requests:
                    method, path = req if isinstance(req, tuple) else ("GET", req)
                    response = await client.request(method, path)
                    body = await response.read()
                    kind = response.headers.get("Content-Type", "")
                    out.append((response.status, body.decode() if "text" in kind or "json" in kind
                                else body))
                return out
    return asyncio.run(go())


def ids_in(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'class="episode-link" href="/episode\?id=([^"]+)"', html)]


def test_overview_shows_config_curves_and_success_by_type(run_dir):
    [(status, html)] = fetch(run_dir, "/")
    assert status == 200
    assert "test/ReplayGuess-v0" in html  # the config
    for key in ("rollout/success_rate", "rollout/reward_mean", "loss/kl", "credit/step_group_size"):
        assert f'aria-label="{key}"' in html, key
    by_type = html[html.index('id="by-type"'):]
    assert "guess-even" in by_type and "guess-odd" in by_type
    # 12 train episodes, 6 won
    assert re.search(r"train</a></td><td>12</td><td>6</td>", html)


def test_episode_list_filters_and_pages(run_dir):
    (s1, all_), (s2, lost), (s3, page2), (s4, typed), (s5, errors), (s6, bad) = fetch(
        run_dir, "/episodes?per_page=5", "/episodes?outcome=lost&split=train",
        "/episodes?per_page=5&page=2&order=iteration,episode",
        "/episodes?task_type=guess-odd&iteration=1&order=group,episode",
        "/episodes?error=yes", "/episodes?iteration=two&order=reward;drop")
    assert (s1, s2, s3, s4, s5) == (200,) * 5
    assert "13 episodes" in all_ and len(ids_in(all_)) == 5
    assert ids_in(page2) == ["train-1-1-2", "train-2-0-0", "train-2-0-1", "train-2-0-2",
                             "train-2-1-0"]  # oldest first: episodes 6-10
    assert "order=iteration%2Cepisode" in page2  # kept by the page links
    assert 'id="next"' in all_ and 'id="prev"' in page2
    assert ids_in(lost) and all(i.startswith("train-") for i in ids_in(lost))
    assert "6 episodes" in lost  # 12 train, 6 won
    assert ids_in(typed) == ["train-1-1-0", "train-1-1-1", "train-1-1-2"]
    assert ids_in(errors) == ["train-1-0-0"]
    assert s6 == 400 and "iteration must be a number" in bad


def test_episode_page_shows_steps_heatmap_advantages_and_image(run_dir):
    [(status, html)] = fetch(run_dir, "/episode?id=train-1-0-1")
    assert status == 200
    assert html.count('class="step"') == 2
    assert "Guess a number from 1 to 5." in html  # an observation
    assert "<code>guess 4</code>" in html  # a parsed action
    card = html[html.index('id="step-1"'):]
    assert card.index("<h4>Observation</h4>") < card.index("Model output") \
        < card.index("action: <code>") < card.index('class="result"')
    assert html.count('class="tok"') == len("<action>guess 3</action>") + len("<action>guess 4</action>")
    assert 'data-lp="-0.25"' in html and 'id="heat-mode"' in html
    # advantage parts are shown whatever their names
    assert "<th>episode part</th><th>step part</th>" in html and "step 0.100" in html
    assert 'src="/run-file/images/step.png"' in html
    assert "anchor group: 4 steps from 3 episodes" in html  # all members start alike
    assert html.count('class="compare-link"') == 2


def test_anchor_group_and_side_by_side(run_dir):
    (s1, anchor), (s2, compare), (s3, other) = fetch(
        run_dir, "/anchor?episode=train-1-0-1&step=0", "/compare?a=train-1-0-0&b=train-1-0-1",
        "/compare?a=train-1-0-0&b=train-2-0-0")
    assert s1 == s2 == s3 == 200
    members = re.findall(r'class="member-link" href="/episode\?id=([^"#]+)#step-(\d)"', anchor)
    # member 2's first reply had no action, so its second step starts from the same state
    assert sorted(members) == [("train-1-0-0", "0"), ("train-1-0-1", "0"), ("train-1-0-2", "0"),
                               ("train-1-0-2", "1")]
    assert "(none)" in anchor and "guess 3" in anchor  # grouped by action
    assert compare.count('class="cmp-col"') == 2 and "different groups" not in compare
    assert "different groups" in other


def test_json_endpoints(run_dir):
    (s1, listing), (s2, episode), (s3, missing) = fetch(
        run_dir, "/api/episodes?split=eval", "/api/episode?id=eval-2-0-0", "/api/episode?id=nope")
    import json

    listing, episode = json.loads(listing), json.loads(episode)
    assert s1 == s2 == 200 and s3 == 404
    assert listing["total"] == 1 and listing["episodes"][0]["episode_id"] == "eval-2-0-0"
    assert episode["length"] == len(episode["steps"]) == 4 and episode["steps"][0]["response_ids"]


def test_missing_things_give_clear_errors(run_dir):
    (s1, a), (s2, b), (s3, c), (s4, _) = fetch(
        run_dir, "/episode?id=nope", "/episode", "/anchor?episode=train-1-0-1&step=9",
        "/static/../store.py")
    assert s1 == 404 and "no episode 'nope'" in unescape(a)
    assert s2 == 400 and "?id=EPISODE_ID" in b
    assert s3 == 400 and "has no step 9" in c
    assert s4 == 404


def test_files_only_from_inside_the_run_dir_and_read_only(run_dir, tmp_path):
    secret = run_dir.parent / "secret.txt"
    secret.write_text("TOP SECRET")
    (run_dir / "link.txt").symlink_to(secret)
    results = fetch(run_dir, "/run-file/images/step.png", "/run-file/config.yaml",
                    "/run-file/..%2Fsecret.txt", "/run-file/images%2F..%2F..%2Fsecret.txt",
                    f"/run-file/{'%2F'.join(['']+ str(secret).strip('/').split('/'))}",
                    "/run-file/link.txt", "/run-file/nothing.png",
                    ("POST", "/episodes"), ("DELETE", "/episode?id=train-1-0-1"))
    statuses = [s for s, _ in results]
    assert results[0] == (200, PNG)
    assert statuses[1] == 200
    assert statuses[2:6] == [403, 403, 403, 403]
    assert all("TOP SECRET" not in str(body) for _, body in results)
    assert statuses[6] == 404
    assert statuses[7:] == [405, 405]


@pytest.mark.slow
def test_cli_serves_on_localhost_and_prints_the_url(run_dir):
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "agentgym.cli", "replay", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()  # printed once the socket is listening
        assert f"http://127.0.0.1:{port}/" in line and "13 episodes" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/episodes", timeout=30) as r:
            assert r.status == 200 and "13 episodes" in r.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
