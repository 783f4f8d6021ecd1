"""TextWorld environments generated and played from parallel threads (the env pool)."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

import agentgym

pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")


def test_parallel_threads_generate_load_and_play(tmp_path):
    kwargs = dict(family="custom", world_size=1, nb_objects=2, quest_length=1, num_games=4,
                  cache_dir=str(tmp_path))

    def play(i):
        env = agentgym.make("agentgym/TextWorld-v0", max_episode_steps=4, **kwargs)
        rng = random.Random(i)
        try:
            for seed in (i, i + 1):  # a fresh game each, some generated concurrently
                obs, info = env.reset(seed=seed)
                done = False
                while not done:
                    obs, _, terminated, truncated, info = env.step(rng.choice(info["admissible_actions"] or ["look"]))
                    done = terminated or truncated
            return info["task_id"]
        finally:
            env.close()

    with ThreadPoolExecutor(4) as pool:
        task_ids = list(pool.map(play, range(4)))
    assert len(task_ids) == 4
