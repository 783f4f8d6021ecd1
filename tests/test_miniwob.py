"""MiniWoB++: the action syntax, task suites, rendering and the solver (fast, no browser)."""

import pytest

from agentgym.envs.miniwob import actions, solver, tasks
from agentgym.envs.miniwob.actions import Action, ParseError, parse

pytest.importorskip("miniwob")


@pytest.mark.parametrize("text, expected", [
    ("click(4)", Action("click", (4,))),
    ("  click( 12 ) ", Action("click", (12,))),
    ('type(5, "Bob")', Action("type", (5, "Bob"))),
    ("type(5, 'it''s')", None),
    ('type(5, "say \\"hi\\", ok")', Action("type", (5, 'say "hi", ok'))),
    ('type("hello")', Action("type", ("hello",))),
    ('press("Enter")', Action("press", ("<Enter>",))),
    ('press("C-a")', Action("press", ("C-a",))),
    ('press("S-<Tab>")', Action("press", ("S-<Tab>",))),
    ("click_xy(10, 20.5)", Action("click_xy", (10.0, 20.5))),
    ("drag(1, 2, 3, 4)", Action("drag", (1.0, 2.0, 3.0, 4.0))),
    ('scroll(5, 6, "down")', Action("scroll", (5.0, 6.0, "down"))),
    ("noop()", Action("noop", ())),
])
def test_parse(text, expected):
    if expected is None:
        with pytest.raises(ParseError):
            parse(text)
    else:
        assert parse(text) == expected


@pytest.mark.parametrize("text", [
    "click", "click()", "click(a)", 'click("4")', "click(4, 5)", "jump(3)", "click(4) click(5)",
    'type(4, "x"', 'press("Fn13")', 'scroll(1, 2, "left")', "type(4, unquoted)",
    "click(1.5)", 'type(1, "' + "x" * 600 + '")', "",
])
def test_malformed_actions_raise_parse_error(text):
    with pytest.raises(ParseError):
        parse(text)


def test_actions_print_back_in_the_syntax():
    for text in ['type(3, "a \\"quoted\\" \\\\ word")', "click_xy(1.5, 2)", "noop()"]:
        assert parse(str(parse(text))) == parse(text)


def test_all_tasks_and_suites():
    names = tasks.all_tasks()
    assert len(names) == 128 and "click-test" in names and "flight.Alaska" in names
    assert tasks.resolve("suite:simple") == ["click-test", "click-button", "enter-text"]
    assert tasks.resolve("click-test, miniwob/enter-text-v1") == ["click-test", "enter-text"]
    clicks = tasks.resolve("click-*")
    assert clicks and all(n.startswith("click-") for n in clicks)
    assert tasks.resolve(["click-test", "click-test"]) == ["click-test"]
    for bad, hint in [("clik-test", "unknown MiniWoB task"), ("zzz-*", "matches no"),
                      ("suite:nope", "unknown MiniWoB suite"), ("", "no MiniWoB task")]:
        with pytest.raises(tasks.MiniWoBTaskError, match=hint):
            tasks.resolve(bad)
    assert set(tasks.SUITES["easy"]) <= set(names)


def test_render_and_solver_on_a_dom():
    from miniwob.dom import DOMElement

    from agentgym.envs.miniwob.render import clickable_refs, render

    def el(ref, tag, text=None, left=0, top=0, w=10, h=10, **kw):
        d = dict(ref=ref, tag=tag, left=left, top=top, width=w, height=h, children=[], **kw)
        return d if text is None else dict(d, text=text)  # containers have no text key

    form = el(3, "div", id="form", w=150, h=60)
    form["children"] = [el(4, "input_text", "", value="", id="tt"),
                        el(5, "button", "Submit", left=2, top=85, w=95, h=31),
                        el(6, "span", "hidden", w=0, h=0)]
    root = DOMElement(dict(el(1, "body", w=500, h=300), children=[form]))
    text = render('Enter "Bob O\'Neil" into the text field and press Submit.', root)
    assert text.splitlines()[0].startswith("Instruction: Enter")
    assert '[5] button "Submit" @ 2,85 95×31' in text and "hidden" not in text
    assert clickable_refs(root) == [4, 5]
    assert solver.plan("enter-text", text) == ['type(4, "Bob O\'Neil")', "click(5)"]
    assert solver.plan("click-test", text) == ["click(5)"]
    assert solver.plan("click-button", text) is None   # no 'Click on the ... button'
    assert solver.plan("use-slider", text) is None


def test_key_names():
    assert actions.normalize_key("tab") == "<Tab>"
    assert actions.normalize_key("<Enter>") == "<Enter>"
    assert actions.normalize_key("C-S-x") == "C-S-x"


def test_guard_kills_and_reaps_everything_under_it_on_sigterm():
    """The chromedriver guard, with a stand-in for chromedriver that starts a child in
    its process group and one that escapes it with setsid (as Chromium's crashpad does)."""
    import os
    import select
    import signal
    import subprocess
    import sys

    from agentgym.envs.miniwob.browser import GUARD

    fake_driver = ("import os, subprocess, sys, time\n"
                   "a = subprocess.Popen(['sleep', '300'])\n"
                   "b = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                   "print(os.getpid(), a.pid, b.pid, flush=True)\n"
                   "time.sleep(300)\n")
    guard = subprocess.Popen([sys.executable, GUARD, str(os.getpid()), sys.executable, "-c",
                              fake_driver], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in guard.stdout.readline().split()]
    fds = [os.pidfd_open(p) for p in pids]
    try:
        guard.send_signal(signal.SIGTERM)
        assert guard.wait(timeout=30) == 0
        for fd in fds:  # each pidfd turns readable when its process has exited
            ready, _, _ = select.select([fd], [], [], 10)
            assert ready
    finally:
        for fd in fds:
            os.close(fd)
    for pid in pids:  # reaped by the guard, not left as zombies
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state != "Z", pid
