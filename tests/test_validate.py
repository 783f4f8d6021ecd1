"""``agentgym validate`` fails, in one line, on everything ``agentgym train`` would reject,
and ``train`` stops at the same line before it loads anything."""

import shutil
import sys
from pathlib import Path

import pytest

from agentgym.cli import main
from agentgym.config import Range, load_config

QUICKSTART = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"

# (override, what the one line must say)
BATTERY = [
    ("env.id=agentgym/TextWorld-v9", "Did you mean 'agentgym/TextWorld-v0'"),
    ("env.kwargs.famly=custom", "env.kwargs.famly: agentgym/TextWorld-v0 does not take option "
                                "'famly'. Did you mean 'family'?"),
    ("env.eval_kwargs.splt=eval", "env.eval_kwargs.splt"),
    ("env.import=[no_such_module_xyz]", "env.import: importing 'no_such_module_xyz' failed"),
    ("model.name=no-such-model", "model.name: 'no-such-model' is neither a built-in model"),
    ("rollout.temperature=0", "rollout.temperature must be > 0, got 0"),
    ("rollout.group_size=0", "rollout.group_size must be >= 1, got 0"),
    ("rollout.tasks_per_iteration=0", "rollout.tasks_per_iteration must be >= 1, got 0"),
    ("trainer.micro_batch=0", "trainer.micro_batch must be >= 1, got 0"),
    ("trainer.checkpoint_every=0", "trainer.checkpoint_every must be >= 1, got 0"),
    ("trainer.lr=-1e-5", "trainer.lr must be >= 0, got -1e-05"),
    ("trainer.iterations=-1", "trainer.iterations must be >= 0, got -1"),
    ("rollout.top_p=1.5", "rollout.top_p must be in (0, 1], got 1.5"),
    ("algorithm.loss.dual_clip=0.5", "algorithm.loss.dual_clip must be > 1, got 0.5"),
    ("rollout.backend=openai", "rollout.backend: training needs hf"),
    ("trainer.lrr=1", "unknown config key 'trainer.lrr'. Did you mean 'trainer.lr'?"),
]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("override, message", BATTERY)
def test_validate_and_train_fail_with_the_same_line(override, message, tmp_path, capsys):
    assert main(["validate", str(QUICKSTART), override]) == 2
    line = _one_error_line(capsys)
    assert message in line
    run_dir = tmp_path / "run"
    assert main(["train", str(QUICKSTART), override, f"logging.run_dir={run_dir}"]) == 2
    assert _one_error_line(capsys) == line
    assert not run_dir.exists()  # stopped before the run started


@pytest.mark.parametrize("text, message", [
    ("- a\n- b\n", "must be a mapping of sections (env:, model:, rollout:, ...), not a list"),
    ("5\n", "not a number"),
    ("just words\n", "not a string"),
    ("env: {id: [\n", "is not valid YAML"),
    ("env: 5\n", "env must be a mapping of keys (id, kwargs"),
    ("model: {lora: 3}\n", "model.lora must be a mapping of keys (r, alpha"),
    ("trainer: [1, 2]\n", "trainer must be a mapping"),
    ("env: {kwargs: [1]}\n", "env.kwargs"),
    ("rollout: {group_size: many}\n", "rollout.group_size"),
    ("\x00\xff", "bad.yaml"),
])
def test_no_yaml_shape_gives_a_traceback(text, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(text, encoding="latin-1")
    assert main(["validate", "bad.yaml"]) == 2
    assert message in _one_error_line(capsys)


def test_an_empty_file_is_the_defaults(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    assert main(["validate", str(tmp_path / "empty.yaml")]) == 0
    assert "is valid" in capsys.readouterr().out


def test_lora_without_peft_names_the_install_command(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "peft", None)  # as if it were not installed
    assert main(["validate", str(QUICKSTART)]) == 2
    line = _one_error_line(capsys)
    assert "model.lora (LoRA) needs the peft package: pip install" in line and "[lora]" in line


def test_missing_env_dependency_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "miniwob", None)
    assert main(["validate", str(QUICKSTART), "env.id=agentgym/MiniWoB-v0", "env.kwargs={}",
                 "env.eval_kwargs={}"]) == 2
    line = _one_error_line(capsys)
    assert "agentgym/MiniWoB-v0 needs the miniwob package" in line and "[miniwob]" in line
    assert main(["check", "agentgym/MiniWoB-v0"]) == 2
    assert "needs the miniwob package" in _one_error_line(capsys)
    from agentgym.registry import make

    with pytest.raises(Exception, match="needs the miniwob package"):
        make("agentgym/MiniWoB-v0")


def test_every_declared_range_is_checked():
    """A new key declared with ``bounded(...)`` is checked without any other code."""
    import dataclasses

    from agentgym.config import Config

    def ranged(node, path=""):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value):
                yield from ranged(value, f"{path}{f.name}.")
            elif "range" in f.metadata:
                yield f"{path}{f.name}", f.metadata["range"]

    found = dict(ranged(Config()))
    assert len(found) >= 30
    for key, bounds in found.items():
        assert isinstance(bounds, Range)
        bad = (bounds.low - 1) if bounds.low is not None else bounds.high + 1
        with pytest.raises(Exception, match=key.replace(".", r"\.") + " must be"):
            load_config(None, [f"{key}={bad}"])


def test_editable_and_wheel_installs_get_different_hints(monkeypatch, tmp_path):
    from agentgym import install

    source = install.editable_source()
    assert source is not None  # the test venv has the checkout installed with -e
    monkeypatch.chdir(source)
    assert install.install_command("lora") == "pip install -e '.[lora]'"
    monkeypatch.chdir(tmp_path)
    assert install.install_command("lora") == f"pip install -e '{source}[lora]'"
    monkeypatch.setattr(install, "editable_source", lambda: None)
    # not `pip install agentgym[...]`: that name on PyPI is another project
    assert install.install_command("lora") == "pip install 'peft>=0.12'"
    assert install.install_command("alfworld") == "pip install 'alfworld>=0.4.2'"


def test_envs_says_what_can_run_here(capsys, monkeypatch):
    import agentgym
    from agentgym.install import install_command
    from agentgym.registry import _registered

    agentgym.register("test/Needs-v0", entry_point="tests.toy_envs:GuessEnv",
                      requires=("no_such_module_xyz",), extra="miniwob", programs=("no-such-prog",))
    try:
        monkeypatch.setenv("COLUMNS", "250")
        assert main(["envs"]) == 0
        out = capsys.readouterr().out
        info = agentgym.env_info("test/Needs-v0")
    finally:
        _registered.pop("test/Needs-v0")
        agentgym.registry.gymnasium.registry.pop("test/Needs-v0")
    row = next(line for line in out.splitlines() if "test/Needs-v0" in line)
    assert "no: needs the no_such_module_xyz package" in row
    assert info.missing() == ("test/Needs-v0 needs the no_such_module_xyz package (pip install "
                              f"{install_command('miniwob').removeprefix('pip install ')}) and "
                              "no-such-prog (sudo apt-get install -y no-such-prog)")
    text_row = next(line for line in out.splitlines() if "agentgym/TextWorld-v0" in line)
    assert "yes" in text_row


def test_checker_rows_keep_brackets():
    from rich.console import Console

    from agentgym.checker import CheckReport, CheckResult

    report = CheckReport("x/Y-v0")
    report.results.append(CheckResult("reset", False, "needs: pip install -e '.[alfworld]'"))
    console = Console(record=True, width=200)
    report.render(console)
    assert "pip install -e '.[alfworld]'" in console.export_text()


@pytest.mark.skipif(shutil.which("agentgym") is None, reason="console script not on PATH")
def test_version():
    import subprocess

    import agentgym

    out = subprocess.run(["agentgym", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"agentgym {agentgym.__version__}"


def test_tests_use_a_session_cache_not_the_users(tmp_path_factory):
    from agentgym.policy import models

    assert models.cache_root().is_relative_to(tmp_path_factory.getbasetemp())


def test_every_subcommand_has_an_example_and_shows_its_defaults(capsys):
    from agentgym.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert len(commands) >= 12
    for name, sub in commands.items():
        text = sub.format_help()
        assert "example:\n  agentgym " + name in text, name
    assert "(default: 5)" in commands["check"].format_help()
    assert "(default: 0)" in commands["check"].format_help()
