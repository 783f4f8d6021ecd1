"""The viewer's tree view of a tree-rollout group (aiohttp test client, hand-built tree)."""

from __future__ import annotations

from html import unescape

from agentgym.replay.tree import group_tree
from agentgym.store import EpisodeStore
from tests.test_replay_web import fetch
from tests.test_store_trees import _with_advantages


def _run(tmp_path):
    run = tmp_path / "run"
    with EpisodeStore(run) as store:
        store.add_episodes(_with_advantages())
    (run / "config.yaml").write_text("env: {id: test/Tree-v0}\n")
    return run


def test_group_tree_is_the_trie_of_the_leaves():
    root = group_tree(_with_advantages())
    assert root.leaves == ["a", "b", "c"] and len(root.children) == 2   # a's first step, c's
    shared = next(iter(root.children.values()))
    assert shared.leaves == ["a", "b"] and len(shared.children) == 2
    assert shared.advantages == [0.0, 10.0]   # a's and b's own advantage of the shared step
    ends = [n.ends[0].episode_id for n in shared.children.values()]
    assert ends == ["a", "b"]


def test_tree_page_highlights_a_leaf_path_and_links_siblings(tmp_path):
    run = _run(tmp_path)
    [(status, html), (_, compare), (bad, message)] = fetch(
        run, "/tree?group=g&leaf=b", "/compare?a=a&b=b&start=1", "/tree?group=nope")
    assert status == 200
    html = unescape(html)
    assert html.count('class="tree-node on-path"') == 3       # root, the shared step, b's step
    assert "shared by 2" in html and "advantage 5" in html     # mean of 0 and 10
    assert '/compare?a=a&b=b&start=1' in html                  # the fork after step 0
    assert "from step 1: the steps before it are shared" in compare
    assert compare.count("<b>step 0</b>") == 0 and compare.count("<b>step 1</b>") == 2
    assert bad == 400 or bad == 404
    assert "no episodes in group" in message


def test_the_episode_page_links_its_group_tree(tmp_path):
    [(status, html)] = fetch(_run(tmp_path), "/episode?id=b")
    assert status == 200 and "/tree?group=g&amp;leaf=b" in html
