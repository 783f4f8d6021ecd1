"""ScienceWorld without a JVM: task specs, the admissible-action selection, argument checks,
the message when Java is missing, registration and recipes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import agentgym

pytest.importorskip("scienceworld")

from agentgym.envs.scienceworld import actions, tasks  # noqa: E402

ROOT = Path(__file__).parents[1]


def test_the_30_task_types_come_from_the_package_in_the_paper_order():
    names = tasks.all_tasks()
    assert len(names) == 30 == len(set(names))
    assert names[:4] == ("boil", "melt", "freeze", "change-the-state-of-matter-of")
    assert names[-1] == "mendelian-genetics-unknown-plant"


@pytest.mark.parametrize("spec, expected", [
    ("boil", ["boil"]),
    ("1-2", ["melt"]),                                      # the paper's id
    ("task-1-boil", ["boil"]),                              # the package's long form
    ("task-4-find-plant", ["find-plant"]),
    ("Matter Changes of State (Freezing)", ["freeze"]),     # the paper's title
    ("find-*", ["find-living-thing", "find-non-living-thing", "find-plant", "find-animal"]),
    (" boil , melt,boil ", ["boil", "melt"]),
    (["melt", "suite:electricity"], ["melt", "power-component",
                                     "power-component-renewable-vs-nonrenewable-energy",
                                     "test-conductivity", "test-conductivity-of-unknown-substances"]),
    ("suite:short", list(tasks.SUITES["short"])),
])
def test_task_specs(spec, expected):
    assert tasks.resolve(spec) == expected


def test_suites_cover_every_task_once_by_topic_and_name_only_real_tasks():
    named = tasks.suites()
    assert named["all"] == tasks.all_tasks()
    topics = [name for name in named if name not in ("all", *tasks.SUITES)]
    assert sorted(t for topic in topics for t in named[topic]) == sorted(tasks.all_tasks())
    assert all(set(members) <= set(tasks.all_tasks()) for members in named.values())
    assert set(tasks.SUITES["short"]) <= set(tasks.SUITES["easy"])


@pytest.mark.parametrize("spec, message", [
    ("boill", "unknown ScienceWorld task 'boill'. Did you mean"),
    ("suite:nope", "unknown ScienceWorld suite 'suite:nope'; suites: suite:all"),
    ("zz-*", "pattern 'zz-*' matches no ScienceWorld task"),
    (" , ", "no ScienceWorld task given"),
])
def test_bad_task_specs_say_what_exists(spec, message):
    with pytest.raises(tasks.ScienceWorldTaskError, match="^" + message.replace("(", r"\(")
                       .replace("*", r"\*")):
        tasks.resolve(spec)


def test_admissible_selection_keeps_small_templates_whole_and_shares_the_rest():
    valid = ([(f"connect {a} to {b}", 16) for a in "abcd" for b in "abcd" if a != b]  # 12
             + [("go to kitchen", 2), ("look around", 3), ("reset task", 12)]
             + [(f"pick up {x}", 21) for x in "zyx"])                               # 3
    # 17 listable (reset task is refused): round 1 takes one of each template (4),
    # round 2 the second of connect and pick up, ... until 8 are chosen
    assert actions.select(valid, 8) == ["connect a to b", "connect a to c", "connect a to d",
                                        "go to kitchen", "look around", "pick up x",
                                        "pick up y", "pick up z"]
    everything = actions.select(valid, None)
    assert len(everything) == 17 and everything == sorted(everything)
    assert "reset task" not in everything
    assert actions.select(valid, 100) == everything
    assert actions.select(list(reversed(valid)), 8) == actions.select(valid, 8)  # order-free


def test_admissible_selection_counts_a_text_once_and_lists_number_choices():
    valid = [("look around", 3), ("look around", 7), ("0", 100), ("1", 101)]
    assert actions.select(valid, 2) == ["0", "look around"]  # one per template first
    assert actions.select(valid, 3) == ["0", "1", "look around"]


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "validation2"}, "split must be one of train, dev, test"),
    ({"simplifications": "easy,flying"}, "unknown ScienceWorld simplification"),
    ({"max_actions": 0}, "max_actions must be a positive integer or null"),
    ({"max_variations": True}, "max_variations must be a positive integer"),
    ({"task": "boill"}, "unknown ScienceWorld task"),
])
def test_bad_arguments_fail_at_make_with_one_clear_message(kwargs, message):
    with pytest.raises(agentgym.ConfigError, match=message):
        agentgym.make("agentgym/ScienceWorld-v0", **kwargs)


def test_missing_java_is_one_line_that_says_what_to_install(tmp_path):
    # a PATH with this Python's scripts but no java, and no JAVA_HOME
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)
    out = subprocess.run([sys.executable, "-m", "agentgym.cli", "check",
                          "agentgym/ScienceWorld-v0", "task=boil"],
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode != 0
    text = " ".join((out.stdout + out.stderr).split())
    assert "ScienceWorld needs a Java runtime" in text
    assert "apt-get install -y default-jre-headless" in text and "JAVA_HOME" in text
    assert "Traceback" not in text


def test_a_java_home_without_java_falls_back_to_path(tmp_path, monkeypatch):
    from agentgym.envs.scienceworld.engine import ScienceWorldSetupError, find_java

    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScienceWorldSetupError, match="default-jre-headless"):
        find_java()
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_java() == str(fake)


def test_registered_with_a_prompt_template_and_processes():
    from agentgym.envpool import EnvMaker
    from agentgym.prompting import template_for

    info = agentgym.env_info("agentgym/ScienceWorld-v0")
    assert info.max_episode_steps == 100 and info.kwargs == {"task": "suite:all", "split": "train"}
    assert "focus on" in template_for("agentgym/ScienceWorld-v0").system
    assert EnvMaker.of("agentgym/ScienceWorld-v0").preferred_backend() == "process"


@pytest.mark.parametrize("recipe", ["scienceworld_grpo", "scienceworld_epo"])
def test_recipes_validate(recipe):
    from agentgym.config import load_config

    cfg = load_config(str(ROOT / "configs" / f"{recipe}.yaml"), [])
    assert cfg.env.id == "agentgym/ScienceWorld-v0"
    assert tasks.resolve(cfg.env.kwargs["task"])
    assert (cfg.algorithm.loss.entropy == "epo") == recipe.endswith("epo")
