"""The ALFWorld text engine: the stock textworld PDDL environment, and a faster one.

``stock_engine()`` is what ALFWorld itself plays: textworld's ``PddlEnv`` with
alfworld's ``AlfredDemangler`` (object ids -> "apple 1"). It is slow for two reasons:

- every step re-derives each admissible command (and the feedback) through the
  context-sensitive grammar, and every derivation re-parses its template string with
  the tatsu parser and re-parses each rule condition; ~90 % of a step;
- every reset converts the PDDL problem to SAS twice (plain and optimised for the
  planner), and gym-style play loads the game (two more conversions) before it.

``FastPddlEnv`` keeps the engine's semantics and output: the same PddlState (fast
downward applies the operators), the same grammar rules and the same derivation order,
but parsed templates and queries are cached per process, conversions are cached per
problem, the planner's conversion is made only when a plan is asked for, and contexts
are shared instead of deep-copied (derivation never mutates them). Equality with the
stock engine is tested on recorded action sequences (tests/test_alfworld_engine.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import re
import tempfile
import threading
from collections import Counter
from pathlib import Path

# tatsu parsers are not thread-safe and fast downward's translator mutates module
# globals (options, sys.argv): parsing and converting take this lock.
ENGINE_LOCK = threading.RLock()

_TASK_RULE = re.compile(r'("rhs": "Your task is to: )((?:[^"\\]|\\.)*)(")')
_PLACEHOLDER_TASK = "UNKNOWN GOAL."


# ----------------------------------------------------------------------------- stock

def stock_engine(request_infos=None):
    """textworld's PddlEnv wrapped in alfworld's AlfredDemangler (the reference)."""
    import textworld
    from textworld.envs.pddl import PddlEnv

    saved = os.environ.get("ALFWORLD_DATA")
    try:  # importing alfworld overwrites $ALFWORLD_DATA with its default
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    finally:
        if saved is None:
            os.environ.pop("ALFWORLD_DATA", None)
        else:
            os.environ["ALFWORLD_DATA"] = saved
    infos = request_infos or textworld.EnvInfos(won=True, admissible_commands=True)
    return AlfredDemangler(PddlEnv(infos))


# ------------------------------------------------------------------------ name demangling

def demangled_names(ids: list[str]) -> dict[str, str]:
    """ALFWorld's display names: ``Cabinet_bar__plus_00...`` -> ``cabinet 3``.

    Instances of a class are numbered 1..n; in sorted id order the first id gets n
    (this is how alfworld's Demangler assigns numbers, and the names must match it).
    """
    ids = sorted(ids)
    counts: Counter = Counter()
    base: dict[str, str | None] = {}
    for i in ids:
        head, sep, _ = i.split("_bar_", 1)[0], "_bar_" in i, None
        if sep:
            name = head + ("basin" if "basin" in i else "")
            counts[name] += 1
            base[i] = name
        else:
            base[i] = None
    left = {name: list(range(1, n + 1)) for name, n in counts.items()}
    names = {}
    for i in ids:
        name = base[i]
        if name is None:
            text = i
            for a, b in (("_bar_", "|"), ("_minus_", "-"), ("_plus_", "+"), ("_dot_", "."),
                         ("_comma_", ",")):
                text = text.replace(a, b)
            names[i] = f"{text} "
        else:
            names[i] = f"{name} {left[name].pop()}"
    return names


# ------------------------------------------------------------------- cached parsing

@functools.lru_cache(maxsize=4096)
def _symbols(text: str) -> tuple:
    """The grammar's parse of a symbol string (templates: never mutated)."""
    from textworld.envs.pddl.textgen import _parse_and_convert

    with ENGINE_LOCK:
        return tuple(_parse_and_convert(text, rule_name="symbols"))


@functools.lru_cache(maxsize=4096)
def _query(expr: str):
    from textworld.logic import Rule

    with ENGINE_LOCK:
        return Rule.parse_conjunctive_query(expr)


@functools.lru_cache(maxsize=8)
def _logic_for_template(domain: str, grammar_template: str):
    from textworld.envs.pddl import logic as pddl_logic

    with ENGINE_LOCK:
        return pddl_logic.GameLogic(domain=domain, grammar=grammar_template)


def game_logic(domain: str, grammar: str):
    """(GameLogic, task-rule override) for a game's grammar.

    ALFWorld grammars differ only in the task sentence, so the grammar is parsed once
    with the placeholder and the sentence's rule is parsed on its own.
    """
    matches = list(_TASK_RULE.finditer(grammar))
    if len(matches) != 1:
        return _logic_for_template(domain, grammar), None
    m = matches[0]
    template = grammar[:m.start(2)] + _PLACEHOLDER_TASK + grammar[m.end(2):]
    rhs = json.loads('"Your task is to: ' + m.group(2) + '"')
    return _logic_for_template(domain, template), rhs


@functools.lru_cache(maxsize=64)
def _convert(domain: str, problem: str, optimize: bool):
    import fast_downward

    with ENGINE_LOCK:
        return fast_downward.pddl2sas(domain, problem, optimize=optimize)


SAS_CACHE_FORMAT = 1


def convert(domain: str, problem: str, optimize: bool, disk_dir: str | None = None):
    """PDDL -> (task, SAS text), cached in memory and, with ``disk_dir``, on disk.

    The translation is the slowest part of starting a game (seconds for a big kitchen);
    a pickled translation loads in milliseconds, in any process.
    """
    if disk_dir is None:
        return _convert(domain, problem, optimize)
    import fast_downward

    key = hashlib.sha1(json.dumps([SAS_CACHE_FORMAT, fast_downward.__file__, domain, problem,
                                   optimize]).encode()).hexdigest()
    return _convert_on_disk(key, domain, problem, optimize, str(disk_dir))


@functools.lru_cache(maxsize=64)
def _convert_on_disk(key: str, domain: str, problem: str, optimize: bool, directory: str):
    path = Path(directory) / key[:2] / f"{key}.pkl"
    if path.is_file():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception:  # noqa: BLE001 - a damaged entry is made again
            pass
    result = _convert(domain, problem, optimize)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return result


# --------------------------------------------------------------------------- grammar

class FastGrammar:
    """Derives text exactly like textworld's ContextSensitiveGrammar, with cached parses."""

    def __init__(self, rules: dict, task_rhs: str | None):
        from textworld.envs.pddl import textgen

        self._tg = textgen
        self._rules = dict(rules)
        if task_rhs is not None:
            self._rules["task"] = [textgen.ProductionRule(lhs="task", rhs=list(_symbols(task_rhs)))]
        self._eval_globals = vars(textgen)

    def derive(self, start: str, context: dict) -> str:
        out: list[str] = []
        for symbol in _symbols(start):
            self._derive(symbol, context, out)
        return "".join(out)

    def _derive(self, symbol, context: dict, out: list[str]) -> None:
        tg = self._tg
        kind = type(symbol)
        if kind is tg.TerminalSymbol:
            out.append(str(symbol.symbol))
        elif kind is tg.NonterminalSymbol:
            for s in self._choose(str(symbol), context).rhs:
                self._derive(s, context, out)
        elif kind is tg.EvalSymbol:
            out.append(str(self._eval(symbol, context)))
        elif kind is tg.ConditionalSymbol:
            for ctx in self._contexts(symbol, context):
                self._derive(symbol.expression, ctx, out)
        elif kind is tg.ListSymbol:
            self._derive_list(symbol, context, out)
        else:
            raise NotImplementedError(f"unknown symbol: {kind}")

    def _derive_list(self, symbol, context: dict, out: list[str]) -> None:
        tg = self._tg
        inner = symbol.symbol
        if type(inner) is tg.ConditionalSymbol:
            items = [(inner.expression, ctx) for ctx in self._contexts(inner, context)]
        else:  # an EvalSymbol gives one terminal
            items = [(tg.TerminalSymbol(self._eval(inner, context)), context)]
        if not items:
            self._derive(tg.NonterminalSymbol("list_empty"), context, out)
            return
        last = len(items) - 1
        for i, (s, ctx) in enumerate(items):
            if i == last and i > 0:
                self._derive(tg.NonterminalSymbol("list_last_separator"), context, out)
            elif i > 0:
                self._derive(tg.NonterminalSymbol("list_separator"), context, out)
            self._derive(s, ctx, out)

    def _eval(self, symbol, context: dict):
        scope = {"self": symbol, "context": context}
        scope.update(context["variables"])
        return eval(symbol.expression, self._eval_globals, scope)

    def _contexts(self, symbol, context: dict) -> list[dict]:
        if not symbol.given:
            return [context]
        rule = _query(symbol.given)
        found = []
        infos = context["entity_infos"]
        for mapping in context["state"].all_assignments(rule, context["mapping"]):
            variables = dict(context["variables"])
            variables.update({ph.name: infos[var.name] for ph, var in mapping.items()})
            merged = dict(context["mapping"])
            merged.update(mapping)
            found.append(dict(context, variables=variables, mapping=merged))
        return found

    def _choose(self, name: str, context: dict):
        rules = self._rules.get(name)
        if not rules:
            raise self._tg.CSGUnknownSymbolError(name)
        for rule in rules:
            if not rule.condition:
                return rule
            found = context["state"].all_assignments(_query(rule.condition), context["mapping"])
            if next(iter(found), None) is not None:
                return rule
        raise IndexError(f"no applicable production rule for #{name}#")


# ---------------------------------------------------------------------------- engine

class FastPddlEnv:
    """Plays one ALFWorld game (the dict of a ``game.tw-pddl`` file) like the stock engine.

    ``reset()`` and ``step(command)`` return a dict-like textworld ``GameState`` with
    ``feedback``, ``admissible_commands``, ``won``, ``_facts`` and, when asked for,
    ``policy_commands`` (the planner's plan from the current state).
    """

    def __init__(self, policy_commands: bool = False, sas_cache_dir: str | None = None):
        import fast_downward

        self.policy_commands = policy_commands
        self.sas_cache_dir = sas_cache_dir
        with ENGINE_LOCK:
            self.downward_lib = fast_downward.load_lib()
        self.state = None
        self._game_key: str | None = None
        self._replan_loaded = False

    def load(self, game: dict) -> None:
        key = hashlib.sha1(json.dumps([game["pddl_domain"], game["grammar"],
                                       game["pddl_problem"]]).encode()).hexdigest()
        if key == self._game_key:
            return
        self._game = game
        self._domain, self._problem = game["pddl_domain"], game["pddl_problem"]
        logic, task_rhs = game_logic(self._domain, game["grammar"])
        self._logic = logic
        self._grammar = FastGrammar(logic.grammar._rules, task_rhs)
        self._pddl_state = self._new_state()
        self._entity_infos = self._make_entity_infos()
        self._game_key = key

    def _new_state(self):
        task, sas = convert(self._domain, self._problem, False, self.sas_cache_dir)
        with ENGINE_LOCK:  # the cached logic's type hierarchy is shared between games
            state = _cached_state(self.downward_lib, self._problem, self._logic, task, sas)
        self._replan_loaded = False
        return state

    def _make_entity_infos(self):
        from textworld.generator.game import EntityInfo

        infos = {v.name: EntityInfo(v.name, v.type)
                 for fact in self._pddl_state.facts for v in fact.arguments}
        names = demangled_names(list(infos))
        for info in infos.values():
            info.name = names[info.id]
            info.definite = "the"
            info.indefinite = "a"
        return infos

    def _ensure_replan(self) -> None:
        if not self._replan_loaded:
            _, sas_replan = convert(self._domain, self._problem, True, self.sas_cache_dir)
            self.downward_lib.load_sas_replan(sas_replan.encode("utf-8"))
            self._replan_loaded = True

    def _context(self, variables: dict, mapping: dict, facts: list) -> dict:
        return {"state": self._pddl_state, "facts": facts, "variables": variables,
                "mapping": mapping, "entity_infos": self._entity_infos}

    def reset(self):
        from textworld.core import GameState

        if self.state is not None:  # a fresh state (the first one comes with load)
            self._pddl_state = self._new_state()
        self._stale = True
        self._last_action = None
        self.state = GameState()
        facts = list(self._pddl_state.facts)
        self.state.feedback = self._grammar.derive("#intro#", self._context({}, {}, facts))
        self.state.raw = self.state.feedback
        self._gather(facts)
        return self.state

    def step(self, command: str):
        from textworld.core import GameState

        command = command.strip()
        prev = self.state
        self.state = GameState()
        self.state.last_command = command
        self._last_action = None
        try:
            idx = prev["_valid_commands"].index(command)
        except ValueError:
            self.state.feedback = "Nothing happens."
        else:
            action = prev["_valid_actions"][idx]
            self._last_action = action
            self._pddl_state.apply(action)
            facts = list(self._pddl_state.facts)
            variables = {ph.name: self._entity_infos[var.name] for ph, var in action.mapping.items()}
            self.state.feedback = self._grammar.derive(
                action.feedback_rule, self._context(variables, action.mapping, facts))
        self.state.raw = self.state.feedback
        self._gather(list(self._pddl_state.facts))
        self.state["score"] = 1 if self.state["won"] else 0
        self.state["done"] = self.state["won"] or self.state["lost"]
        return self.state, self.state["score"], self.state["done"]

    def _gather(self, facts: list) -> None:
        st = self.state
        st["won"] = self._pddl_state.check_goal()
        st["lost"] = False
        st["_facts"] = facts
        st["_last_action"] = self._last_action
        actions = list(self._pddl_state.all_applicable_actions())
        st["_valid_actions"] = actions
        mapping_names = {k: info.name for k, info in self._entity_infos.items()}
        commands = []
        for action in actions:
            variables = {ph.name: self._entity_infos[var.name] for ph, var in action.mapping.items()}
            action.command_template = self._grammar.derive(
                action.command_template, self._context(variables, action.mapping, facts))
            commands.append(action.format_command(mapping_names))
        st["_valid_commands"] = commands
        st["admissible_commands"] = sorted(set(commands))
        if self.policy_commands:
            st["policy_commands"] = self.plan()

    def names(self) -> dict[str, str]:
        """PDDL id -> display name ("apple 1") of every entity of the loaded game."""
        return {k: info.name for k, info in self._entity_infos.items()}

    def plan(self) -> list[str]:
        """Fast Downward's commands from the current state (empty if it finds none)."""
        self._ensure_replan()
        return self._pddl_state.replan(self._entity_infos)

    def close(self) -> None:
        # The library copy stays loaded: unloading it while textworld objects still
        # point into it crashes the interpreter at exit.
        self.downward_lib = None
        self._pddl_state = None
        self.state = None


def _cached_state(downward_lib, pddl_problem, logic, task, sas):
    """textworld's PddlState built from an already converted task (see module doc)."""
    from textworld.envs.pddl import logic as pddl_logic

    state = pddl_logic.PddlState.__new__(pddl_logic.PddlState)
    _init_state(state, downward_lib, pddl_problem, logic, task, sas)
    return state


def _init_state(self, downward_lib, pddl_problem, logic, task, sas) -> None:
    """PddlState.__init__ without the two PDDL->SAS conversions."""
    from collections import Counter as _Counter
    from collections import defaultdict

    import fast_downward
    import textworld.logic
    from textworld.envs.pddl.logic import Atom
    from textworld.logic import Proposition, Variable

    self._facts = defaultdict(set)
    self._vars_by_name = {}
    self._vars_by_type = defaultdict(set)
    self._var_counts = _Counter()
    self._logic = logic
    self.downward_lib = downward_lib
    self.pddl_problem = pddl_problem
    self.task, self.sas = task, sas
    self._actions = {a.name: a for a in task.actions}
    for type_ in task.types:
        try:
            logic.types.add(textworld.logic.Type(type_.name, type_.supertype_names))
        except ValueError:
            pass
    downward_lib.load_sas(sas.encode("utf-8"))
    self.name2type = {o.name: o.type_name for o in task.objects}

    def to_prop(atom):
        if isinstance(atom, fast_downward.translate.pddl.conditions.Atom):
            if atom.predicate == "=":
                return None
            return Proposition(atom.predicate, [Variable(a, self.name2type[a]) for a in atom.args])
        if isinstance(atom, fast_downward.translate.pddl.f_expression.Assign):
            if atom.fluent.symbol == "total-cost":
                return None
            name = f"{atom.expression.value}"
            if str.isdigit(name):
                return None
            return Proposition(name, [Variable(a, self.name2type[a]) for a in atom.fluent.args])
        return None

    self.add_facts([p for p in map(to_prop, task.init) if p is not None])
    size = downward_lib.get_state_size()
    atoms = (Atom * size)()
    downward_lib.get_state(atoms)
    facts = [atom.get_fact(self.name2type) for atom in atoms]
    self.add_facts([f for f in facts if not f.is_negation])
