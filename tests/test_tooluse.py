"""agentgym/ToolUse-v0: task sources, tools, budget, verifiers, contract, prompts."""

import pytest

import agentgym
from agentgym.algos.otc import count_tool_calls
from agentgym.checker import check_env
from agentgym.envs.tooluse.corpus import build_corpus
from agentgym.envs.tooluse.env import ToolUseEnv
from agentgym.envs.tooluse.sandbox import SandboxUnavailable, isolation_mode
from agentgym.envs.tooluse.search import index_for
from agentgym.envs.tooluse.tasks import exact_match, token_f1
from agentgym.errors import ConfigError
from agentgym.prompting import parse_action, template_for

try:
    isolation_mode()
    HAVE_SANDBOX = True
except SandboxUnavailable:  # pragma: no cover - depends on the machine
    HAVE_SANDBOX = False
needs_sandbox = pytest.mark.skipif(not HAVE_SANDBOX, reason="no sandbox on this machine")


def _play(env, actions):
    out = None
    for a in actions:
        out = env.step(a)
    return out


@pytest.mark.parametrize("source", ["search", "reasoning", "mixed"])
def test_walkthrough_solves_tasks_with_the_fewest_calls(source):
    env = ToolUseEnv(source=source, num_tasks=12)
    for seed in range(12):
        env.reset(seed=seed)
        plan = env.walkthrough()
        obs, reward, terminated, truncated, info = _play(env, plan)
        assert terminated and not truncated and info["won"] and reward == 1.0, (seed, plan, obs)
        assert info["tool_calls"] == len(plan) - 1 == count_tool_calls(plan)
        hops = env.task.task_type.removeprefix("search/").removesuffix("-hop")
        assert info["tool_calls"] == (int(hops) if env.task.task_type.startswith("search") else 0)
    env.close()


def test_search_returns_passages_and_counts_calls():
    env = ToolUseEnv(source="search", num_tasks=5, top_k=2)
    env.reset(seed=0)
    first = env.task.plan[0][1]
    obs, reward, terminated, truncated, info = env.step(f"<search>{first}</search>")
    assert obs.startswith("Result of search:\n[1] " + first)
    assert reward == 0.0 and not terminated and info["action_valid"]
    obs, _, _, _, info = env.step("<search>who was born in the city of</search>")
    assert "[2]" in obs and "[3]" not in obs     # top_k passages
    assert info["tool_calls"] == info["tool_calls_search"] == 2 and info["tool_calls_python"] == 0
    obs, *_ = env.step("<search>zzqx unknownword</search>")
    assert "No passages match" in obs


def test_wrong_answer_ends_the_episode_without_reward():
    env = ToolUseEnv(source="search", num_tasks=3)
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step("<answer>Atlantis</answer>")
    assert terminated and reward == 0.0 and not info["won"] and info["answer_score"] == 0.0


def test_budget_ends_the_episode():
    env = ToolUseEnv(source="search", num_tasks=3, max_tool_calls=1)
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<search>one</search>")
    assert "No tool calls left" in obs and info["tool_calls"] == 1
    obs, reward, terminated, truncated, info = env.step("<search>two</search>")
    assert truncated and not terminated and not info["action_valid"] and info["tool_calls"] == 1
    # an answer is still allowed after the last call
    env.reset(seed=0)
    _play(env, env.walkthrough()[:1])
    env.max_tool_calls = 1
    obs, reward, terminated, truncated, info = env.step("<answer>x</answer>")
    assert terminated


def test_invalid_replies_change_nothing():
    env = ToolUseEnv(source="search", num_tasks=3)
    _, start = env.reset(seed=0)
    for reply in ("just text", "<search>unclosed", "<answer></answer>", "<python>print(1)</python>"):
        env.tools = ("search",)
        obs, reward, terminated, truncated, info = env.step(reply)
        assert not info["action_valid"] and not terminated and info["tool_calls"] == 0, reply
        assert info["anchor"] == start["anchor"] and "Invalid reply" in obs
    assert "not closed" in env.step("<search>unclosed")[4]["invalid_reason"]
    assert "not available" in env.step("<python>1</python>")[4]["invalid_reason"]


def test_first_block_wins_and_think_is_ignored():
    env = ToolUseEnv(source="search", num_tasks=3)
    env.reset(seed=0)
    reply = "<think>I could <answer>guess</answer></think>\n<search>Foo</search> <answer>bar</answer>"
    assert env.parse(reply)[:2] == ("search", "Foo")


def test_configurable_tags():
    env = ToolUseEnv(source="search", num_tasks=3, tags={"search": "lookup", "answer": "final"})
    obs, _ = env.reset(seed=0)
    assert "<lookup>query</lookup>" in obs and "<final>" in obs
    plan = env.walkthrough()
    assert plan[0].startswith("<lookup>") and plan[-1].startswith("<final>")
    assert _play(env, plan)[4]["won"]
    with pytest.raises(ConfigError, match="distinct tag names"):
        ToolUseEnv(source="search", num_tasks=3, tags={"search": "answer"})


@pytest.mark.parametrize("kwargs, match", [
    ({"source": "web"}, "source must be"), ({"tools": ["shell"]}, "unknown tools"),
    ({"split": "test"}, "split must be"), ({"datasets": ["no_such_task"], "source": "reasoning"}, "unknown reasoning-gym"),
    ({"source": "search", "num_tasks": 10_000}, "at most"), ({"sandbox": {"cpu": 3}}, "bad sandbox option"),
    ({"source": "search", "answer_metric": "bleu"}, "answer_metric")])
def test_bad_options_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ToolUseEnv(**{"num_tasks": 4, **kwargs})


def test_reasoning_tasks_by_name_and_difficulty():
    easy = ToolUseEnv(source="reasoning", datasets=["basic_arithmetic"], difficulty=0, num_tasks=5)
    hard = ToolUseEnv(source="reasoning", datasets=["basic_arithmetic"], difficulty=3, num_tasks=5)
    assert all(t.task_type == "reasoning/basic_arithmetic" for t in easy.tasks)
    longest = max(len(t.question) for t in hard.tasks)
    assert longest > max(len(t.question) for t in easy.tasks)
    eval_env = ToolUseEnv(source="reasoning", datasets=["basic_arithmetic"], split="eval", num_tasks=5)
    assert {t.question for t in eval_env.tasks} != {t.question for t in easy.tasks}


def test_search_splits_are_disjoint_and_need_search():
    train = {t.question for t in ToolUseEnv(source="search", num_tasks=50).tasks}
    held = {t.question for t in ToolUseEnv(source="search", split="eval", num_tasks=20).tasks}
    assert not train & held
    corpus = build_corpus(0)
    for q in corpus.questions[:30]:
        assert q.answer not in q.question        # the answer is only in the documents
        assert index_for(0).search(q.searches[0], 1)[0][0].title == q.searches[0]


def test_text_verifiers():
    assert exact_match("The  Zorvania!", "zorvania") == 1.0
    assert exact_match("Zorvania City", "Zorvania") == 0.0
    assert token_f1("Zorvania City", "Zorvania") == pytest.approx(2 / 3)
    env = ToolUseEnv(source="search", num_tasks=5, answer_metric="f1")
    env.reset(seed=0)
    reward = env.step(f"<answer>{env.task.answer} Town</answer>")[1]
    assert 0 < reward < 1


@needs_sandbox
def test_python_tool_in_the_environment():
    env = ToolUseEnv(source="reasoning", datasets=["basic_arithmetic"], num_tasks=3,
                     sandbox={"wall_s": 2.0, "cpu_s": 1})
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<python>\n```python\nx = 6 * 7\nprint(x)\n```\n</python>")
    assert "42" in obs and info["tool_calls_python"] == 1 and not info["tool_error"]
    obs, _, _, _, info = env.step("<python>x + 1</python>")
    assert "43" in obs
    obs, _, _, _, info = env.step("<python>open('/etc/passwd').read()</python>")
    assert "Tool error" in obs and info["tool_error"] and info["tool_errors"] == 1
    env.reset(seed=0)                            # a new episode gets a fresh interpreter
    assert "NameError" in env.step("<python>x</python>")[0]
    env.close()
    env.close()


def test_contract_with_the_scripted_agent():
    env = agentgym.make("agentgym/ToolUse-v0", source="search", num_tasks=6)
    report = check_env(env, env_id="agentgym/ToolUse-v0", agent="scripted", episodes=3)
    assert report.ok, [(r.name, r.detail) for r in report.failures]
    assert report.wins == 3


def test_prompt_template_takes_the_whole_reply_as_the_action():
    template = template_for("agentgym/ToolUse-v0")
    assert template.raw_action and "</python>" in template.stop
    reply = "<think>add</think>\n<python>\nfor i in range(2):\n    print(i)\n</python>"
    parsed = parse_action(reply, raw=template.raw_action)
    assert parsed.action == reply and parsed.think == "add"   # indentation kept
    assert parse_action("  ", raw=True).action is None
    assert parse_action("<action>go  north</action>").action == "go north"
