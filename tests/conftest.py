import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never write to the user's cache: every test of the session (and every process
    it starts) uses one temporary ``AGENTGYM_CACHE``. A SmolLM2 conversion the user has
    already made is linked in and only read, so the tests do not pay the ~25 s
    conversion again; without one, the first test that needs it converts it once into
    the session's cache."""
    from agentgym.policy import models

    converted = models.model_cache_dir(models.SMOLLM2)  # the user's, before the switch
    reuse = models.is_cached(models.SMOLLM2)
    cache = tmp_path_factory.mktemp("agentgym-cache")
    if reuse:
        (cache / "models").mkdir()
        (cache / "models" / models.SMOLLM2).symlink_to(converted, target_is_directory=True)
    os.environ["AGENTGYM_CACHE"] = str(cache)
    yield
