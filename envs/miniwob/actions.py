"""The text action syntax of ``agentgym/MiniWoB-v0`` and its parser (pure, no browser).

One action per step, written like a function call; arguments are integers or quoted
strings (``"..."`` or ``'...'`` with ``\\"``, ``\\'`` and ``\\\\`` escapes)::

    click(ref)                 click the element with that ref (from the observation)
    type(ref, "text")          click the element, then type the text
    type("text")               type into whatever has the focus
    press("key")               a key or combination: "Enter", "Tab", "C-a", "S-<Tab>", "x"
    click_xy(x, y)             click at page coordinates (the positions in the observation)
    dblclick_xy(x, y)          double-click there
    drag(x1, y1, x2, y2)       press at (x1, y1), move to (x2, y2), release
    scroll(x, y, "up"|"down")  turn the mouse wheel over (x, y)
    noop()                     do nothing (let animations run)

Anything else is a ``ParseError``; the environment turns it into an invalid step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPECIAL_KEYS = ("Backspace", "Tab", "Enter", "Escape", "Space", "PageUp", "PageDown",
                "End", "Home", "ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown",
                "Insert", "Delete")
MODIFIERS = ("C-", "S-", "A-", "M-")
MAX_TYPED_CHARS = 500

# name -> argument kinds: "i" integer, "n" number, "s" string
SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "click": (("i",),),
    "type": (("i", "s"), ("s",)),
    "press": (("s",),),
    "click_xy": (("n", "n"),),
    "dblclick_xy": (("n", "n"),),
    "drag": (("n", "n", "n", "n"),),
    "scroll": (("n", "n", "s"),),
    "noop": ((),),
}
SYNTAX_HELP = ('click(ref), type(ref, "text"), type("text"), press("Enter"), '
               'click_xy(x, y), dblclick_xy(x, y), drag(x1, y1, x2, y2), '
               'scroll(x, y, "down"), noop()')

_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*;?\s*$", re.DOTALL)
_TOKEN = re.compile(r"""\s*(?:(-?\d+(?:\.\d+)?)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*(,|$)""",
                    re.DOTALL)


class ParseError(ValueError):
    """The text is not an action in the syntax; the message says why."""


@dataclass(frozen=True)
class Action:
    name: str
    args: tuple

    def __str__(self) -> str:
        return f"{self.name}({', '.join(_show(a) for a in self.args)})"


def _show(arg) -> str:
    if isinstance(arg, str):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{arg:g}" if isinstance(arg, float) else str(arg)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _split_args(text: str) -> list:
    args: list = []
    pos = 0
    if not text.strip():
        return args
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ParseError(f"cannot read the arguments {text.strip()!r}: use integers "
                             f"and quoted strings separated by commas")
        number, dq, sq, sep = m.groups()
        if number is not None:
            args.append(float(number) if "." in number else int(number))
        else:
            args.append(_unescape(dq if dq is not None else sq))
        pos = m.end()
        if sep == "" and pos < len(text):
            raise ParseError(f"unexpected text after the arguments in {text.strip()!r}")
    return args


def normalize_key(key: str) -> str:
    """A key name in the syntax -> the key string miniwob's ``execute_press_key`` takes."""
    mods = ""
    rest = key
    while rest[:2] in MODIFIERS and len(rest) > 2:
        mods, rest = mods + rest[:2], rest[2:]
    bare = rest.strip("<>") if len(rest) > 1 else rest
    if len(bare) == 1:
        return mods + bare
    for name in SPECIAL_KEYS:
        if bare.lower() == name.lower():
            return f"{mods}<{name}>"
    raise ParseError(f"unknown key {key!r}: use one character or one of "
                     f"{', '.join(SPECIAL_KEYS)}, optionally with C-, S-, A-, M-")


def parse(text: str) -> Action:
    """Read one action; raises ``ParseError`` with the reason when it is not one."""
    m = _CALL.match(text)
    if not m:
        raise ParseError(f"not an action call; expected one of: {SYNTAX_HELP}")
    name, raw = m.group(1), m.group(2)
    if name not in SIGNATURES:
        raise ParseError(f"unknown action {name!r}; actions: {SYNTAX_HELP}")
    args = _split_args(raw)
    for kinds in SIGNATURES[name]:
        if len(kinds) == len(args) and all(_fits(k, a) for k, a in zip(kinds, args)):
            break
    else:
        raise ParseError(f"wrong arguments for {name}: {SYNTAX_HELP}")
    if name == "press":
        args = [normalize_key(args[0])]
    if name == "scroll" and args[2] not in ("up", "down"):
        raise ParseError('scroll direction must be "up" or "down"')
    if name == "type" and len(args[-1]) > MAX_TYPED_CHARS:
        raise ParseError(f"typed text longer than {MAX_TYPED_CHARS} characters")
    return Action(name, tuple(float(a) if k == "n" else a
                              for k, a in zip(_kinds_for(name, len(args)), args)))


def _kinds_for(name: str, n: int) -> tuple[str, ...]:
    return next(k for k in SIGNATURES[name] if len(k) == n)


def _fits(kind: str, arg) -> bool:
    if kind == "i":
        return isinstance(arg, int)
    if kind == "n":
        return isinstance(arg, (int, float))
    return isinstance(arg, str)
