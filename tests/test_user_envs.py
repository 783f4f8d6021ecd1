"""Your own environment, trained from YAML: a package outside the repository, installed by
pip, found through ``env.import``, through the ``agentgym.envs`` entry point and as a
``module:Env-v0`` id; the Python API and its ``__main__`` guard check; a broken plugin.

The package is written into a temporary directory and installed there with
``pip install --target`` (a real distribution with its metadata and entry points); the
runs happen in fresh interpreters that see it on PYTHONPATH, so the test venv itself
is left as it was.
"""

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.toy_envs import GuessEnv

# the package's environment: the tests' own GuessEnv, copied out of the repository
ENV_CODE = "import gymnasium\nfrom agentgym import TextSpace\n\n\n" + inspect.getsource(GuessEnv)

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1"

[project.entry-points."agentgym.envs"]
{entry}

[tool.setuptools]
packages = ["{package}"]
'''

TRAIN_KEYS = textwrap.dedent('''
    model: {name: tiny-smollm2}
    rollout: {tasks_per_iteration: 2, group_size: 2, max_new_tokens: 6, think: false,
              history_length: 0, env_workers: 1}
    trainer: {iterations: 1, lr: 1.0e-4, micro_batch: 8}
''')


def _pip_install(source: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory holding the installed ``guessplug`` distribution."""
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    (src / "guessplug").mkdir(parents=True)
    (src / "guessplug" / "__init__.py").write_text("")
    (src / "guessplug" / "game.py").write_text(ENV_CODE)
    # registered on import of agentgym, through the entry point
    (src / "guessplug" / "envs.py").write_text(
        "import agentgym\nfrom guessplug.game import GuessEnv\n"
        "agentgym.register('guessplug/Guess-v0', entry_point=GuessEnv, max_episode_steps=3)\n")
    # registered only when imported (env.import, module:Env-v0); by import path, so that
    # worker processes can build it
    (src / "guessplug" / "more.py").write_text(
        "import agentgym\n"
        "agentgym.register('guessplug/More-v0', entry_point='guessplug.game:GuessEnv', "
        "kwargs={'high': 2}, max_episode_steps=3)\n")
    (src / "pyproject.toml").write_text(PYPROJECT.format(
        name="guessplug", entry="guess = \"guessplug.envs\"", package="guessplug"))
    target = root / "site"
    _pip_install(src, target)
    return target


def _run(site, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python ARGS`` with ``site`` (a directory, or a list of them) on the path."""
    sites = [str(p) for p in (site if isinstance(site, list) else [site])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*sites, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _config(tmp_path: Path, env: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(env + TRAIN_KEYS + f"logging: {{run_dir: {tmp_path / 'run'}}}\n")
    return path


@pytest.mark.slow  # fresh interpreters that train (the second with worker processes)
def test_an_installed_package_registers_its_env_through_the_entry_point(site, tmp_path):
    listed = _run(site, ["-m", "agentgym.cli", "envs"], tmp_path)
    assert listed.returncode == 0 and "guessplug/Guess-v0" in listed.stdout
    config = _config(tmp_path, "env: {id: guessplug/Guess-v0}\n")
    out = _run(site, ["-m", "agentgym.cli", "train", str(config)], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "iter 1/1" in out.stdout
    assert (tmp_path / "run" / "checkpoints" / "iter_000001" / "model").is_dir()


@pytest.mark.slow  # fresh interpreters that train (the second with worker processes)
def test_env_import_trains_in_worker_processes_and_replay_verifies(site, tmp_path):
    """``env.import`` from YAML, through ``agentgym.train`` in a script (with the guard),
    environments in worker processes (which must import the module too)."""
    config = _config(tmp_path, "env: {id: guessplug/More-v0, import: [guessplug.more]}\n")
    script = tmp_path / "train_mine.py"
    script.write_text(textwrap.dedent(f'''
        import agentgym

        if __name__ == "__main__":
            run = agentgym.train({str(config)!r}, ["rollout.env_pool=process"])
            print("trained", run)
    '''))
    out = _run(site, [str(script)], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "trained" in out.stdout
    verify = _run(site, ["-m", "agentgym.cli", "replay", str(tmp_path / "run"), "--verify",
                         "--sample", "2"], tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_module_colon_id_and_a_missing_guard(site, tmp_path):
    config = _config(tmp_path, "env: {id: 'guessplug.more:guessplug/More-v0'}\n")
    valid = _run(site, ["-m", "agentgym.cli", "validate", str(config)], tmp_path)
    assert valid.returncode == 0, valid.stderr
    script = tmp_path / "unguarded.py"
    script.write_text(f"import agentgym\nagentgym.train({str(config)!r}, ['rollout.env_pool=process'])\n")
    out = _run(site, [str(script)], tmp_path)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "unguarded.py, line 2" in last and 'if __name__ == "__main__":' in last
    assert "worker process failed to start" not in out.stderr


def test_a_broken_plugin_costs_one_warning_line(site, tmp_path):
    src = tmp_path / "src"
    (src / "brokenplug").mkdir(parents=True)
    (src / "brokenplug" / "__init__.py").write_text("raise RuntimeError('oops')\n")
    (src / "pyproject.toml").write_text(PYPROJECT.format(
        name="brokenplug", entry="broken = \"brokenplug\"", package="brokenplug"))
    broken = tmp_path / "site"
    _pip_install(src, broken)
    out = _run([broken, site],
               ["-c", "import agentgym; print(len(agentgym.registered_envs()))"], tmp_path)
    assert out.returncode == 0, out.stderr
    warning, = out.stderr.strip().splitlines()
    assert "'broken'" in warning and "RuntimeError: oops" in warning
    assert int(out.stdout) >= 6  # the built-ins and the working plugin are still there


def test_train_from_python_with_a_dict_and_overrides(tmp_path):
    import agentgym
    from agentgym.errors import ConfigError

    assert agentgym.Trainer.__name__ == "Trainer"
    with pytest.raises(ConfigError, match="rollout.group_size must be >= 1"):
        agentgym.train({"env": {"id": "agentgym/TextWorld-v0"}}, ["rollout.group_size=0"])
