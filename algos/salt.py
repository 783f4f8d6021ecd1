"""SALT: step advantages from the group's trajectory graph.

Within a group, identical transitions (state, action, next state) of different
trajectories are merged into one graph node. A step's advantage is the mean of the
trajectory-level advantages of all trajectories passing through its node:

    A_step(t) = mean_{i : tau_i passes through node(t)} A(tau_i)

Each trajectory counts once per node, however often it loops through it. Steps shared
by winners and losers drift towards 0; steps only one trajectory took keep that
trajectory's advantage. Nodes never span groups. A plug-in replacement for the
per-step advantage: feed it any trajectory-level advantage (GRPO by default).

Flat-array layout, one entry per step; ``node_keys`` are any hashable-as-string labels
of the transition (the caller builds them from state, action and next state).
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.labels import factorize

__all__ = ["transition_nodes", "salt_advantages"]


def transition_nodes(group_ids, node_keys) -> np.ndarray:
    """Dense node index per step: same group and same transition key."""
    g = np.asarray(group_ids)
    if g.ndim != 1 or len(node_keys) != g.size:
        raise ValueError(f"group_ids and node_keys must be 1-D of one length: {g.shape} vs {len(node_keys)}")
    k = node_keys                  # a list stays a list: converting strings to numpy is slow
    return factorize(g, k)


def salt_advantages(trajectory_advantages, episode_ids, nodes) -> np.ndarray:
    """Per-step SALT advantage.

    ``trajectory_advantages``: each step's trajectory advantage (constant within a
    trajectory); ``episode_ids``: trajectory label per step; ``nodes``: node index per
    step (see :func:`transition_nodes`). Returns float64, one value per step.
    """
    a = np.asarray(trajectory_advantages, dtype=np.float64)
    nodes = np.asarray(nodes)
    if a.shape != nodes.shape or np.shape(episode_ids) != a.shape:
        raise ValueError("trajectory_advantages, episode_ids and nodes must have one entry per step")
    if a.size == 0:
        return a.copy()
    ep = factorize(episode_ids)
    n_nodes, n_ep = int(nodes.max()) + 1, int(ep.max()) + 1
    a_traj = np.zeros(n_ep)
    a_traj[ep] = a
    # distinct (node, trajectory) pairs: a trajectory looping through a node counts once
    pair = np.sort(nodes.astype(np.int64) * n_ep + ep)
    pair = pair[np.concatenate(([True], pair[1:] != pair[:-1]))]
    node_of, ep_of = np.divmod(pair, n_ep)
    count = np.bincount(node_of, minlength=n_nodes)
    total = np.bincount(node_of, weights=a_traj[ep_of], minlength=n_nodes)
    return (total / count)[nodes]
