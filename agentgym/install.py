"""Install hints: the right command to add an optional dependency, for how agentgym
was installed here.

A source checkout installed with ``pip install -e .`` gets ``pip install -e '.[extra]'``
(with the checkout's path when the current directory is elsewhere). Any other install
gets the extra's own requirements (``pip install 'peft>=0.12'``): ``pip install
'agentgym[extra]'`` would fetch an unrelated PyPI project of the same name in an
environment without the editable install.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from agentgym.errors import AgentGymError

# System programs and the Debian packages that provide them.
PROGRAM_PACKAGES = {
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "unshare": "util-linux",
    "java": "default-jre-headless",
}


class MissingDependencyError(AgentGymError, ImportError):
    """An optional package or program is not installed; the message says how to add it."""


@functools.lru_cache(maxsize=1)
def editable_source() -> Path | None:
    """The checkout agentgym is installed from in editable mode, else None."""
    for dist in metadata.distributions(name="agentgym"):
        text = dist.read_text("direct_url.json")
        if not text:
            continue
        try:
            info = json.loads(text)
        except ValueError:
            continue
        if info.get("dir_info", {}).get("editable") and info.get("url", "").startswith("file:"):
            return Path(unquote(urlparse(info["url"]).path))
    return None


def _extra_requirements(extra: str) -> list[str]:
    """The requirements the installed agentgym declares for ``extra``."""
    for dist in metadata.distributions(name="agentgym"):
        found = []
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", marker):
                found.append(spec.strip().replace(" ", ""))
        if found:
            return found
    return []


def install_command(extra: str, packages: list[str] | None = None) -> str:
    """The pip command that installs agentgym's ``extra`` here."""
    source = editable_source()
    if source is not None:
        try:
            same = Path.cwd().resolve() == source.resolve()
        except OSError:
            same = False
        return "pip install -e " + shlex.quote(f"{'.' if same else source}[{extra}]")
    packages = packages or _extra_requirements(extra) or [extra]
    return "pip install " + " ".join(shlex.quote(p) for p in packages)


def program_command(programs: list[str]) -> str:
    names = [p.split("|")[0] for p in programs]
    packages = dict.fromkeys(PROGRAM_PACKAGES.get(p, p) for p in names)
    return "sudo apt-get install -y " + " ".join(packages)


def missing_modules(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def missing_programs(programs) -> list[str]:
    """The programs not on PATH (``"a|b"``: neither a nor b is), by their first name."""
    return [p.split("|")[0] for p in programs
            if not any(shutil.which(alt) for alt in p.split("|"))]


def require(module: str, extra: str, purpose: str) -> None:
    """Raise a one-line :class:`MissingDependencyError` unless ``module`` is importable."""
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"{purpose} needs the {module} package: {install_command(extra)}")


def needs_message(purpose: str, modules=(), extra: str | None = None, programs=()) -> str | None:
    """One line saying what ``purpose`` lacks here and how to install it, or None."""
    parts = []
    lacking = missing_modules(modules)
    if lacking:
        parts.append(f"the {', '.join(lacking)} package{'s' if len(lacking) > 1 else ''} "
                     f"({install_command(extra or lacking[0], None if extra else lacking)})")
    absent = missing_programs(programs)
    if absent:
        parts.append(f"{', '.join(absent)} ({program_command(absent)})")
    if not parts:
        return None
    return f"{purpose} needs " + " and ".join(parts)

