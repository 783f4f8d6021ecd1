"""What every environment family with generated games needs: an atomic write, a
cross-process file lock, and the game a reset picks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if missing), across threads and processes."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def pick_game(seed, options: dict, num_games: int, np_random, error: type[Exception], family: str) -> int:
    """The game index a reset plays: ``options["game_index"]``, else ``seed % num_games``,
    else a draw from the environment's ``np_random``."""
    unknown = sorted(set(options) - {"game_index"})
    if unknown:
        raise error(f"unknown reset option(s) {', '.join(unknown)}; {family} accepts game_index")
    index = options.get("game_index")
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_games:
            raise error(f"game_index must be an integer in [0, {num_games}), got {index!r}")
        return index
    if seed is not None:
        return int(seed) % num_games
    return int(np_random.integers(num_games))
