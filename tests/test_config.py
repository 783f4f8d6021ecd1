from pathlib import Path

import pytest

import agentgym

from agentgym.config import Config, config_from_dict, load_config
from agentgym.errors import ConfigError


def test_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("trainer:\n  lr: 1.0e-5\nenv:\n  kwargs: {family: cooking}\n")
    cfg = load_config(path, ["rollout.group_size=8", "model.lora.r=4"])
    assert isinstance(cfg, Config)
    assert cfg.trainer.lr == 1e-5 and cfg.rollout.group_size == 8
    assert cfg.env.kwargs == {"family": "cooking"}
    assert cfg.model.lora.r == 4 and cfg.model.lora.alpha == 16


def test_misspelt_key_names_full_path_and_closest():
    with pytest.raises(ConfigError, match=r"unknown config key 'trainer.lerning_rate'"):
        config_from_dict({"trainer": {"lerning_rate": 1}})
    with pytest.raises(ConfigError, match=r"Did you mean 'algorithm.loss.clip_high'"):
        config_from_dict({"algorithm": {"loss": {"clip_hihg": 0.3}}})
    with pytest.raises(ConfigError, match=r"Did you mean 'rollout'"):
        config_from_dict({"rolout": {}})


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"trainer.lr"):
        config_from_dict({"trainer": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"rollout.group_size"):
        load_config(None, ["rollout.group_size=many"])


def test_bad_choice_lists_options():
    with pytest.raises(ConfigError, match=r"algorithm.advantage.episode: 'ppo' is not one of grpo, rloo"):
        config_from_dict({"algorithm": {"advantage": {"episode": "ppo"}}})


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("recipe", sorted(Path("configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_validates_and_names_its_command(recipe):
    cfg = load_config(str(recipe))
    assert agentgym.env_info(cfg.env.id)            # a registered environment
    header = [line for line in recipe.read_text().splitlines() if line.startswith("#")]
    assert any(f"agentgym train {recipe.as_posix()}" in line for line in header)
