"""Chain rollouts match, id for id, the fixture recorded before the engine was rewritten."""

import json

import pytest

from agentgym.policy import make_policy
from tests.golden_chain import CASES, FIXTURE, play


@pytest.fixture(scope="module")
def policy():
    return make_policy("tiny-smollm2", seed=0)


@pytest.fixture(scope="module")
def golden():
    return json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_chain_rollouts_match_the_golden_fixture(policy, golden, case):
    got = play(case, policy)
    want = golden[case]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w, f"{case}: episode {w['episode_id']} differs from the golden fixture"
