"""The ``if __name__ == "__main__":`` requirement of worker processes, detected up front.

Environment worker processes start with ``spawn``, which imports the user's script
again in every worker. A script that calls ``agentgym.train`` at its top level, outside
the guard, would train again inside each worker: multiprocessing stops that, and the
pool only sees "worker process failed to start". This module finds the calling line
in the script and says what to change before any worker is started.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from agentgym.errors import AgentGymError


def check_main_guard(reason: str) -> None:
    """Raise when the running script's top level reached here outside the guard.

    ``reason`` names what starts worker processes (for the message).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not Path(path).is_file():  # interactive, -c, notebooks: nothing re-imported
        return
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            if not _guarded(Path(path), frame.f_lineno):
                raise AgentGymError(
                    f"{path}, line {frame.f_lineno}: training starts at the top level of the "
                    f"script, and {reason} start by importing the script again; put the call "
                    "under `if __name__ == \"__main__\":` (or set rollout.env_pool=thread)")
            return
        frame = frame.f_back


def _guarded(path: Path, lineno: int) -> bool:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return True  # cannot tell: do not stop a run on a guess
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) \
                and node.body[0].lineno <= lineno <= (node.body[-1].end_lineno or lineno):
            return True
    return False


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]
