"""The viewer's tree view of a group: root (the task) -> branches, one node per step.

Leaves that forked from one another share their first steps, so a group played by a
tree strategy (or a group of chains: one branch each) is drawn as the trie of its
leaves' step paths. A node shows the step's action, reward and advantage (mean over the
leaves through it, and each part on hover); the chosen leaf's path is highlighted; a
node where the tree forks links two of its branches side by side from that step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentgym.episode import Episode, Step
from agentgym.replay.pages import esc, num, url


@dataclass
class TreeNode:
    step: Step | None                    # None for the root
    depth: int
    advantages: list[float] = field(default_factory=list)   # one per leaf through it
    children: dict[str, TreeNode] = field(default_factory=dict)
    ends: list[Episode] = field(default_factory=list)       # leaves that end here
    leaves: list[str] = field(default_factory=list)         # every leaf through it


def group_tree(episodes: list[Episode]) -> TreeNode:
    root = TreeNode(None, 0)
    for ep in episodes:
        node = root
        node.leaves.append(ep.episode_id)
        for k, step in enumerate(ep.steps):
            node = node.children.setdefault(ep.node_key(k), TreeNode(step, k + 1))
            node.leaves.append(ep.episode_id)
            if step.advantage is not None:
                node.advantages.append(step.advantage)
        node.ends.append(ep)
    return root


def tree_page(group_id: str, episodes: list[Episode], leaf: str | None) -> str:
    root = group_tree(episodes)
    chosen = leaf if leaf in root.leaves else None
    forks = sum(ep.parent_id is not None for ep in episodes)
    return (f"<h1>Group {esc(group_id)} as a tree</h1>"
            f"<p>{len(episodes)} leaves, {forks} forked · click a leaf to highlight its path · "
            f'<a href="{url("/episodes", group=group_id)}">list view</a></p>'
            f'<ul class="tree">{_node(root, group_id, chosen)}</ul>')


def _node(node: TreeNode, group_id: str, chosen: str | None) -> str:
    on_path = chosen in node.leaves
    cls = "tree-node" + (" on-path" if on_path else "")
    if node.step is None:
        label = f"<b>task</b> ({len(node.leaves)} leaves)"
    else:
        s = node.step
        mean = sum(node.advantages) / len(node.advantages) if node.advantages else None
        parts = ", ".join(f"{k} {num(v)}" for k, v in s.advantage_parts.items())
        action = esc(s.action) if s.action is not None else "(none parsed)"
        label = (f'<span class="step-no">step {s.index}</span> <code>{action}</code> · reward '
                 f'{num(s.reward)} · <span title="{esc(parts)}">advantage {num(mean)}</span>'
                 + (f" · shared by {len(node.leaves)}" if len(node.leaves) > 1 else ""))
    ends = "".join(
        f'<a class="tree-leaf {"won" if ep.won else "lost"}" '
        f'href="{url("/tree", group=group_id, leaf=ep.episode_id)}">{esc(ep.episode_id)}</a> '
        f'(<a href="{url("/episode", id=ep.episode_id)}">open</a>, '
        f'{"won" if ep.won else "lost"}, {num(ep.total_reward, 2)}) '
        for ep in node.ends)
    branches = list(node.children.values())
    compare = ""
    if len(branches) > 1:
        a, b = branches[0].leaves[0], branches[1].leaves[0]
        compare = (f' <a class="tree-compare" href="{url("/compare", a=a, b=b, start=node.depth)}">'
                   f"siblings side by side</a>")
    children = "".join(_node(child, group_id, chosen) for child in branches)
    return (f'<li><div class="{cls}">{label}{compare}</div>'
            + (f'<div class="tree-ends">{ends}</div>' if ends else "")
            + (f"<ul>{children}</ul>" if children else "") + "</li>")
