"""Benchmark: the vectorised credit modules against a per-step Python loop of the same formula.

    python tools/bench_credit.py [--trajectories 128] [--steps 50] [--group-size 8]

Each module (GiGPO, SALT, EMPG, EPO) runs on the same batch (128 trajectories x 50
steps = 6,400 steps; EPO on 16 tokens per step) in both implementations, in one run;
the outputs must agree. Goal: <= 50 ms per module and >= 10x the loop. The last line is
``bench_credit: min_ratio=<x> max_ms=<y>`` (x: the smallest loop/vectorised speed ratio,
y: the slowest vectorised module, in ms).
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict

import numpy as np
import torch

from agentgym.algos.empg import empg_advantages
from agentgym.algos.epo import epo_terms, turn_token_weights
from agentgym.algos.gigpo import gigpo_advantages
from agentgym.algos.salt import salt_advantages, transition_nodes

EPS = 1e-6


def make_batch(n_traj: int, n_steps: int, group_size: int, tokens: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    episode = np.repeat(np.arange(n_traj), n_steps)
    group = np.array([f"task{e // group_size}" for e in episode])
    # a small state space per task, so that step groups and graph nodes really merge
    states = rng.integers(0, 12, size=episode.size)
    anchors = np.array([f"room {s}: a table, a door" for s in states])
    actions = rng.integers(0, 3, size=episode.size)
    rewards = np.zeros(episode.size)
    last = np.arange(n_traj) * n_steps + n_steps - 1
    rewards[last] = rng.integers(0, 2, size=n_traj)
    penalty = np.where(rng.random(episode.size) < 0.1, -0.1, 0.0)
    nxt = np.append(anchors[1:], "end")
    nxt[last] = "end"
    keys = np.array([f"{a}|{b}|{c}" for a, b, c in zip(anchors, actions, nxt)])
    # anchors and transition keys as the credit pipeline builds them: Python lists of str
    return {"episode": episode, "group": group, "anchors": anchors.tolist(), "rewards": rewards,
            "penalty": penalty, "keys": keys.tolist(), "entropy": rng.gamma(2.0, 0.3, size=episode.size),
            "token_entropy": rng.gamma(2.0, 0.5, size=(episode.size, tokens))}


# --- straightforward per-step loops (the reference implementations) ----------------

def _mean(xs):
    return sum(xs) / len(xs)


def _std(xs):
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def gigpo_loop(b, gamma=0.95, omega=1.0):
    n = len(b["rewards"])
    returns, totals, G = {}, defaultdict(float), [0.0] * n
    for k in range(n):
        totals[b["episode"][k]] += b["rewards"][k] + b["penalty"][k]
    running = 0.0
    for k in reversed(range(n)):
        if k == n - 1 or b["episode"][k + 1] != b["episode"][k]:
            running = 0.0
        running = b["rewards"][k] + gamma * running
        G[k] = running + b["penalty"][k]
    by_group = defaultdict(list)
    ep_group = {}
    for k in range(n):
        ep_group[b["episode"][k]] = b["group"][k]
    for e, g in ep_group.items():
        by_group[g].append(totals[e])
    for e, g in ep_group.items():
        xs = by_group[g]
        returns[e] = 0.0 if len(xs) == 1 else (totals[e] - _mean(xs)) / (_std(xs) + EPS)
    step_groups = defaultdict(list)
    for k in range(n):
        step_groups[(b["group"][k], b["anchors"][k])].append(G[k])
    out = []
    for k in range(n):
        xs = step_groups[(b["group"][k], b["anchors"][k])]
        a_s = 0.0 if len(xs) == 1 else G[k] - _mean(xs)
        out.append(returns[b["episode"][k]] + omega * a_s)
    return np.array(out)


def salt_loop(b, traj_adv):
    through = defaultdict(set)
    for k in range(len(traj_adv)):
        through[(b["group"][k], b["keys"][k])].add(b["episode"][k])
    adv_of = {b["episode"][k]: traj_adv[k] for k in range(len(traj_adv))}
    return np.array([_mean([adv_of[e] for e in through[(b["group"][k], b["keys"][k])]])
                     for k in range(len(traj_adv))])


def empg_loop(b, adv, k_=1.0, k_next=1.0, zeta=0.05):
    h = list(b["entropy"])
    lo, hi = min(h), max(h)
    hn = [(x - lo) / (hi - lo + 1e-8) for x in h]
    conf = [math.exp(-k_ * x) for x in hn]
    mc = _mean(conf)
    mod = []
    for k in range(len(h)):
        has_next = k + 1 < len(h) and b["episode"][k + 1] == b["episode"][k]
        f = math.exp(-k_next * hn[k + 1]) if has_next else 0.0
        mod.append(conf[k] / mc * adv[k] + zeta * f)
    m = _mean(mod)
    return np.array([x - m for x in mod])


def epo_loop(b, reference, alpha=0.1, kappa_low=0.0, kappa_high=2.0):
    turns_of = defaultdict(list)
    for k, e in enumerate(b["episode"]):
        turns_of[e].append(k)
    l_h = l_s = 0.0
    for e, turns in turns_of.items():
        th = ts = 0.0
        for k in turns:
            hs = b["token_entropy"][k]
            th += _mean(list(hs))
            ts += _mean([max(kappa_low * reference - x, 0.0) + max(x - kappa_high * reference, 0.0)
                         for x in hs])
        l_h += th / len(turns)
        l_s += ts / len(turns)
    return np.array([l_h / len(turns_of), alpha * l_s / len(turns_of)])


# --- the vectorised modules, called as the trainer calls them ----------------------

def gigpo_vec(b):
    return gigpo_advantages(b["rewards"], b["episode"], b["group"], b["anchors"],
                            undiscounted=b["penalty"], gamma=0.95).advantage


def salt_vec(b, traj_adv):
    return salt_advantages(traj_adv, b["episode"], transition_nodes(b["group"], b["keys"]))


def empg_vec(b, adv):
    return empg_advantages(adv, b["entropy"], b["episode"]).advantage


def epo_vec(b, reference):
    tok = torch.from_numpy(b["token_entropy"])
    w = turn_token_weights(np.full(tok.shape[0], tok.shape[1]), b["episode"])
    weights = torch.from_numpy(w).unsqueeze(1).expand_as(tok)
    l_h, l_s = epo_terms(tok.reshape(-1), weights.reshape(-1), reference)
    return np.array([float(l_h), float(l_s)])


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trajectories", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    b = make_batch(args.trajectories, args.steps, args.group_size, args.tokens)
    traj_adv = gigpo_advantages(b["rewards"], b["episode"], b["group"], b["anchors"],
                                undiscounted=b["penalty"]).episode
    adv = gigpo_vec(b)
    reference = float(b["token_entropy"].mean()) * 0.8
    cases = {
        "gigpo": (lambda: gigpo_vec(b), lambda: gigpo_loop(b)),
        "salt": (lambda: salt_vec(b, traj_adv), lambda: salt_loop(b, traj_adv)),
        "empg": (lambda: empg_vec(b, adv), lambda: empg_loop(b, adv)),
        "epo": (lambda: epo_vec(b, reference), lambda: epo_loop(b, reference)),
    }
    n = b["episode"].size
    print(f"{args.trajectories} trajectories x {args.steps} steps = {n} steps "
          f"(groups of {args.group_size}; EPO: {args.tokens} tokens per step)")
    print(f"{'module':8s} {'vectorised ms':>14s} {'loop ms':>10s} {'ratio':>8s}")
    ratios, times = [], []
    for name, (vec, loop) in cases.items():
        t_vec, out_vec = timed(vec, args.repeat)
        t_loop, out_loop = timed(loop, max(1, args.repeat // 5))
        np.testing.assert_allclose(out_vec, out_loop, rtol=1e-9, atol=1e-9,
                                   err_msg=f"{name}: vectorised and loop outputs differ")
        ratios.append(t_loop / t_vec)
        times.append(t_vec * 1e3)
        print(f"{name:8s} {t_vec * 1e3:14.2f} {t_loop * 1e3:10.2f} {t_loop / t_vec:7.1f}x")
    print(f"bench_credit: min_ratio={min(ratios):.1f} max_ms={max(times):.2f}")


if __name__ == "__main__":
    main()
