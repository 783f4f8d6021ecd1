"""A run directory opened for reading: its store, config, metrics and tokenizer.

Everything the viewer, the terminal views, verification and export read goes through
:class:`Run`; nothing here writes to the run directory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

from agentgym.errors import AgentGymError
from agentgym.metrics import merge_iterations, read_metrics
from agentgym.store import DB_NAME, EpisodeStore


class Run:
    """``RUN_DIR`` with ``episodes.db`` (and, when the trainer wrote them, ``config.yaml``,
    ``metrics.jsonl`` and ``checkpoints/``). ``tokenizer=False`` never loads one."""

    def __init__(self, run_dir: str | Path, *, tokenizer: bool = True):
        path = Path(run_dir)
        db = path if path.is_file() else path / DB_NAME  # a bare store: `eval --store X.db`
        if not path.exists():
            raise AgentGymError(f"no run directory {run_dir}: give the logging.run_dir of a "
                                "training run (it holds episodes.db)")
        self.dir = db.parent.resolve()
        self.name = self.dir.name if db.name == DB_NAME else db.stem
        self.store = EpisodeStore(db, readonly=True)
        self.config = self._read_config()
        self._want_tokenizer = tokenizer
        self._tokenizer: Any = None
        self._tokenizer_loaded = False
        self._tokenizer_lock = threading.Lock()

    def _read_config(self) -> dict[str, Any]:
        path = self.dir / "config.yaml"
        if not path.is_file():
            return {}
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise AgentGymError(f"{path} is not valid YAML ({exc})") from exc
        return config if isinstance(config, dict) else {}

    def config_text(self) -> str:
        path = self.dir / "config.yaml"
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def metrics(self) -> list[dict[str, Any]]:
        """One merged record per iteration (see :func:`agentgym.metrics.merge_iterations`)."""
        return merge_iterations(read_metrics(self.dir))

    def env_spec(self, env_id: str, split: str) -> tuple[dict[str, Any], int | None]:
        """The environment kwargs and step limit the run used for ``split`` (none when the
        run's config is for another environment, or there is no config)."""
        env = self.config.get("env") or {}
        if env.get("id") != env_id:
            return {}, None
        kwargs = dict(env.get("kwargs") or {})
        if split == "eval":
            kwargs.update(env.get("eval_kwargs") or {})
        return kwargs, env.get("max_episode_steps")

    def locate(self, relative: str) -> Path:
        """The file ``relative`` names inside the run directory. Raises PermissionError for
        anything that leads outside it (absolute paths, ``..``, symlinks pointing out) and
        FileNotFoundError for a file that is not there."""
        if "\x00" in relative or Path(relative).is_absolute():
            raise PermissionError(f"{relative!r} is not a path inside the run directory")
        target = (self.dir / relative).resolve()
        if not target.is_relative_to(self.dir):
            raise PermissionError(f"{relative!r} leads outside the run directory")
        if not target.is_file():
            raise FileNotFoundError(f"no file {relative!r} in the run directory")
        return target

    @property
    def tokenizer(self) -> Any:
        """The run's tokenizer (saved with its checkpoints, else by model name), or None
        when it cannot be loaded here: views then show token ids instead of text."""
        with self._tokenizer_lock:
            if not self._tokenizer_loaded:
                self._tokenizer_loaded = True
                self._tokenizer = self._load_tokenizer() if self._want_tokenizer else None
            return self._tokenizer

    def _load_tokenizer(self) -> Any:
        saved = sorted(self.dir.glob("checkpoints/*/model/tokenizer_config.json"))
        name = (self.config.get("model") or {}).get("name")
        if not saved and not name:
            return None
        try:  # transformers is imported only when there is a tokenizer to load
            if saved:
                from transformers import AutoTokenizer

                return AutoTokenizer.from_pretrained(saved[-1].parent)
            from agentgym.policy.models import load_tokenizer

            return load_tokenizer(name)
        except Exception:  # noqa: BLE001 - a missing tokenizer only degrades the heatmap
            return None

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def token_pieces(tokenizer: Any, ids: list[int], context: int = 6) -> list[str]:
    """The text each token adds. Each token is decoded after a few tokens of context and
    the context's own text is cut off (linear in the length, and right for tokenizers
    that drop a leading space); a character split over several byte-level tokens comes
    out whole, on the token that completes it."""
    if tokenizer is None:
        return [f"[{i}]" for i in ids]
    pieces: list[str] = []
    emitted = 0  # tokens whose text is out
    for n in range(len(ids)):
        start = max(0, emitted - context)
        before = tokenizer.decode(ids[start:emitted], skip_special_tokens=False)
        after = tokenizer.decode(ids[start:n + 1], skip_special_tokens=False)
        if after.endswith("\ufffd") and n + 1 < len(ids):
            pieces.append("")  # an incomplete UTF-8 sequence: a later token finishes it
            continue
        pieces.append(after[len(before):] if after.startswith(before) else after)
        emitted = n + 1
    return pieces
