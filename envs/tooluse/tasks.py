"""Task sources for tool use: reasoning-gym generators and the generated search corpus.

A ``Task`` carries its question, reference answer, verifier (``score``: 1.0 is
correct) and a minimal plan of tool calls (the scripted agent's solution).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from agentgym.envs.tooluse.corpus import build_corpus
from agentgym.errors import ConfigError

#: reasoning-gym datasets used by default: arithmetic, algorithmic and logic tasks
DEFAULT_DATASETS = ("basic_arithmetic", "gcd", "number_sorting", "letter_counting",
                    "syllogism")
#: first generator seed of each split (disjoint ranges: no task is in both)
SPLIT_SEED = {"train": 0, "eval": 1_000_003}
ANSWER_METRICS = ("em", "f1")


@dataclass
class Task:
    task_id: str
    task_type: str                          # "reasoning/<dataset>" or "search/<n>-hop"
    question: str
    answer: str                             # reference answer ("" when there is none)
    plan: list[tuple[str, str]]             # minimal (tool, content) calls before answering
    score: Callable[[str], float]           # verifier: 1.0 means correct


def normalize_text(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_text(prediction) == normalize_text(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_text(prediction).split(), normalize_text(reference).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _reasoning_dataset(name: str, difficulty: int | None, seed: int, size: int):
    from reasoning_gym.factory import DATASETS, create_curriculum, create_dataset, has_curriculum

    if name not in DATASETS:
        raise ConfigError(f"unknown reasoning-gym dataset {name!r}; some that exist: "
                          f"{', '.join(sorted(DATASETS)[:40])}, ...")
    if difficulty is None:
        return create_dataset(name, seed=seed, size=size)
    if difficulty < 0:
        raise ConfigError(f"difficulty must be >= 0 (a reasoning-gym curriculum level), got {difficulty}")
    if not has_curriculum(name):
        raise ConfigError(f"reasoning-gym dataset {name!r} has no difficulty levels; use difficulty=null")
    curriculum = create_curriculum(name)
    curriculum.set_global_level(difficulty)   # levels past an attribute's last one use its last
    config = curriculum.generate_configuration({"seed": seed, "size": size})
    return DATASETS[name][0](config=config)


def reasoning_tasks(datasets: tuple[str, ...] | list[str], difficulty: int | None, split: str,
                    count: int) -> list[Task]:
    """``count`` tasks, the datasets interleaved (task i comes from datasets[i % n]).

    Cached: every environment of a pool shares one task list (generation takes seconds).
    """
    return list(_reasoning_tasks(tuple(datasets), difficulty, split, count))


@lru_cache(maxsize=16)
def _reasoning_tasks(datasets: tuple[str, ...], difficulty: int | None, split: str,
                     count: int) -> tuple[Task, ...]:
    names = list(datasets)
    if not names:
        raise ConfigError("datasets must name at least one reasoning-gym dataset")
    per = -(-count // len(names))
    generated = {n: _reasoning_dataset(n, difficulty, SPLIT_SEED[split] + k, per)
                 for k, n in enumerate(names)}
    tasks = []
    for i in range(count):
        name = names[i % len(names)]
        ds = generated[name]
        entry = ds[i // len(names)]
        tasks.append(Task(
            task_id=f"{name}:{split}:{i // len(names)}" + (f":L{difficulty}" if difficulty is not None else ""),
            task_type=f"reasoning/{name}", question=entry["question"],
            # some datasets accept many answers and give none: no scripted solution then
            answer="" if entry["answer"] is None else str(entry["answer"]),
            plan=[], score=(lambda answer, ds=ds, entry=entry: float(ds.score_answer(answer, entry)))))
    return tuple(tasks)


def search_tasks(corpus_seed: int, split: str, count: int, metric: str = "em") -> list[Task]:
    """Multi-hop questions over the generated corpus; every fifth question is eval."""
    if metric not in ANSWER_METRICS:
        raise ConfigError(f"answer_metric must be one of {', '.join(ANSWER_METRICS)}, not {metric!r}")
    corpus = build_corpus(corpus_seed)
    pool = [q for i, q in enumerate(corpus.questions) if (i % 5 == 0) == (split == "eval")]
    if count > len(pool):
        raise ConfigError(f"the corpus (seed {corpus_seed}) has {len(pool)} {split} search "
                          f"questions; ask for at most that many")
    scorer = exact_match if metric == "em" else token_f1
    return [Task(task_id=f"search:{corpus_seed}:{q.qid}", task_type=f"search/{q.hops}-hop",
                 question=q.question, answer=q.answer,
                 plan=[("search", s) for s in q.searches],
                 score=(lambda answer, ref=q.answer: scorer(answer, ref)))
            for q in pool[:count]]
