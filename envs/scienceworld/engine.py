"""One JVM running the ScienceWorld simulator (the jar inside the ``scienceworld`` wheel),
driven over py4j.

We start the JVM ourselves instead of through ``scienceworld.ScienceWorldEnv`` to choose
its options (``JVM_OPTIONS``: deterministic identity hashes, the serial collector) and
to own its lifetime:

- it is started with py4j's ``--die-on-broken-pipe``: the JVM exits when its stdin pipe
  closes, which the kernel does when the Python process that started it dies, however
  it dies (SIGKILL included);
- ``close()`` closes that pipe itself and waits for the JVM to exit (killing it after
  ``STOP_TIMEOUT_S``), so a closed environment leaves no Java process behind.

The calls below are ``scienceworld.runtime.pythonapi.PythonInterface``'s, the same the
package's wrapper makes; scores are the engine's (0-1, -1 on failure).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from agentgym.errors import AgentGymError

# The simulator keeps objects in hash sets keyed by identity, so with the JVM's usual
# identity hashes the names it gives objects ("orange seed in cup" or "living thing in
# cup"), the order of ambiguity choices and its gold paths change from run to run. A
# constant identity hash makes each set's order a function of its insertions only: the
# same episode and the same actions give the same text in every JVM, at no measurable
# cost (the sets are small). The serial collector: ~235 MB resident instead of ~570 MB,
# same speed.
JVM_OPTIONS = ("-XX:+UseSerialGC", "-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2")
STOP_TIMEOUT_S = 10.0
JAVA_HINT = ("ScienceWorld needs a Java runtime (Java 8 or newer) and none was found: "
             "install one with `sudo apt-get install -y default-jre-headless` "
             "(Debian/Ubuntu), or put `java` on PATH or set JAVA_HOME")


class ScienceWorldSetupError(AgentGymError):
    """Java or the scienceworld package is missing."""


class EngineError(RuntimeError):
    """The simulator failed or its JVM is gone: the episode ends, the environment recovers
    at the next reset."""


def find_java() -> str:
    """``$JAVA_HOME/bin/java`` when that exists, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        raise ScienceWorldSetupError(JAVA_HINT)
    return java


def _package_paths() -> tuple[str, str]:
    try:
        from scienceworld.constants import BASEPATH, JAR_PATH
    except ImportError:
        raise ScienceWorldSetupError(
            "ScienceWorld needs the scienceworld package: pip install -e '.[scienceworld]'") from None
    return JAR_PATH, BASEPATH


class Engine:
    """A started simulator. Not thread-safe: one environment drives one engine."""

    def __init__(self, java: str | None = None):
        from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

        java = java or find_java()
        jar, cwd = _package_paths()
        try:
            port, self.process = launch_gateway(
                classpath=jar, die_on_exit=True, cwd=cwd, return_proc=True, java_path=java,
                javaopts=list(JVM_OPTIONS))
        except (OSError, ValueError) as e:  # no such binary, or a JVM that printed no port
            raise ScienceWorldSetupError(f"{JAVA_HINT} ({java} would not start: {e})") from None
        # no py4j memory management: its finalizers run gateway calls from the garbage
        # collector at arbitrary moments (CPython 3.11 can then fail compiling code with
        # "AST constructor recursion depth mismatch"); the only Java objects we get back
        # are a few lists per task (splits, gold actions), so the JVM keeps little garbage
        self._gateway = JavaGateway(
            gateway_parameters=GatewayParameters(port=port, auto_field=True,
                                                 enable_memory_management=False),
            java_process=self.process)
        self.pid = self.process.pid
        self.server = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # ----------------------------------------------------------------- the simulator

    def _call(self, method: str, *args):
        from py4j.protocol import Py4JError

        if self.process is None:
            raise EngineError("the ScienceWorld engine is closed")
        try:
            return getattr(self.server, method)(*args)
        except Py4JError as e:
            code = self.process.poll()
            state = f"the JVM exited with code {code}" if code is not None else f"{e}"
            raise EngineError(f"the ScienceWorld simulator stopped answering ({state}); "
                              "the next reset starts a new one") from None

    def max_variations(self, task: str) -> int:
        return int(self._call("getTaskMaxVariations", task))

    def splits(self, task: str) -> dict[str, list[int]]:
        """The official train/dev/test variations of ``task`` (the engine's 50/25/25 %)."""
        self.load(task, 0, "")
        return {split: list(self._call(f"getVariations{split.title()}"))
                for split in ("train", "dev", "test")}

    def load(self, task: str, variation: int, simplifications: str, gold: bool = False) -> None:
        """Load a fresh episode of ``task``/``variation``; with ``gold``, also plan the
        gold action sequence (seconds: the engine plays the task through once)."""
        error = self._call("load", task, int(variation), simplifications, bool(gold))
        if error:
            raise EngineError(f"ScienceWorld could not load {task} variation {variation}: "
                              f"{error}")

    def gold_actions(self) -> list[str]:
        return list(self._call("getGoldActionSequence"))

    def step(self, action: str) -> tuple[str, float, bool]:
        """(observation, score in [-1, 1], completed) after ``action``."""
        observation = self._call("step", action)
        return observation, float(self._call("getScore")), bool(self._call("getCompleted"))

    def look(self) -> str:
        return self._call("freeActionLook")

    def inventory(self) -> str:
        return self._call("freeActionInventory")

    def task_description(self) -> str:
        return self._call("getTaskDescription")

    def valid_actions(self) -> list[tuple[str, int]]:
        """The engine's valid actions in this state as (text, template id) pairs."""
        data = json.loads(self._call("getValidActionObjectCombinationsJSON"))
        return [(a["action"], int(a["template_id"])) for a in data["validActions"]]

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Stop the JVM and wait until it has exited (idempotent)."""
        process = self.process
        if process is None:
            return
        self.process = None
        try:
            self._gateway.close()
        except Exception:  # noqa: BLE001 - the JVM may already be gone
            pass
        try:
            process.stdin.close()  # py4j's --die-on-broken-pipe: the JVM exits on EOF
        except OSError:
            pass
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
