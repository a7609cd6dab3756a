"""Causal recourse: structural causal models (SCMs) and recourse through minimal interventions.

An :class:`SCM` gives, per variable, a structural equation ``x_i = f_i(parents) + u_i``
with additive noise ``u_i``. For one person, abduction fixes ``u_i = x_i - f_i(parents)``;
an action intervenes on some variables and every other variable is recomputed from its
parents in topological order (Karimi, Schölkopf & Valera 2021, "Algorithmic recourse: from
counterfactual explanations to interventions").

Equations are text, parsed with :mod:`ast` into a sum of terms (nothing is ever ``eval``-ed):

- ``c * x``: linear in a parent that can change;
- ``c * relu(a*x + b)``, ``max(...)``, ``min(...)``, ``abs(...)`` of expressions linear in one
  parent, and ``table(x, [[x0, y0], [x1, y1], ...])`` (linear interpolation, constant beyond
  the end points): piecewise linear in one parent, encoded exactly with segment binaries;
- ``c * g * x`` with ``g`` a 0/1 variable that cannot change: linear once ``g`` is known;
- any other expression (``sigmoid(0.1 * age)``, ``age ** 2``, ``log(age)``...) only in
  variables that cannot change (immutable ones, and not-actionable ones whose causes cannot
  change): constant for a person, so it cancels in ``x'_i - x_i`` and costs nothing in the MILP.

In the MILP the schema's feature columns hold the *actions* (costs and actionability apply to
them) and this module adds columns for the *resulting* world, which the model sees.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .schema import dump_json

from encoders import MILP, LinExpr, NumericInput

FORMAT = "mipcf.scm/1"
INTERVENTIONS = ("hard", "additive")
NORMS = ("l1", "l2", "linf")
_DUAL = {"l1": np.inf, "l2": 2, "linf": 1}
INF = float("inf")
SPLIT_GAP = 1e-6  # relative distance kept between a recomputed model input and a split point


class SCMError(ValueError):
    """The SCM is invalid, or does not fit the schema; the message names the variable."""


# ---- safe evaluation of equation text ------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def _relu(z):
    return np.maximum(np.asarray(z, dtype=float), 0.0)


def _table(x, points):
    pts = np.asarray(points, dtype=float)
    return np.interp(np.asarray(x, dtype=float), pts[:, 0], pts[:, 1])


_FUNCS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sigmoid": _sigmoid, "relu": _relu,
          "abs": np.abs, "max": np.maximum, "min": np.minimum, "table": _table, "tanh": np.tanh}
_PWL_FUNCS = ("relu", "abs", "max", "min")


def _names(node: ast.AST) -> list[str]:
    out: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id not in _FUNCS and n.id not in out:
            out.append(n.id)
    return out


def _check_node(node: ast.AST, where: str) -> None:
    """Only arithmetic, numbers, variable names and the whitelisted functions."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            if not isinstance(n.func, ast.Name) or n.func.id not in _FUNCS or n.keywords:
                raise SCMError(f"{where}: unsupported function call {ast.unparse(n)!r}; "
                               f"allowed: {sorted(_FUNCS)}")
        elif isinstance(n, ast.Constant):
            if not isinstance(n.value, (int, float)) or isinstance(n.value, bool):
                raise SCMError(f"{where}: unsupported constant {n.value!r}")
        elif not isinstance(n, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.List,
                                ast.Tuple, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub,
                                ast.UAdd)):
            raise SCMError(f"{where}: unsupported syntax {type(n).__name__} in {ast.unparse(n)!r}")


def _eval(node: ast.AST, env: Mapping[str, Any]):
    """Evaluate a checked expression with numpy (vectorised over arrays in ``env``)."""
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env), _eval(node.right, env)
        op = type(node.op)
        return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b, ast.Pow: lambda: a ** b}[op]()
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Call):
        return _FUNCS[node.func.id](*[_eval(a, env) for a in node.args])
    raise SCMError(f"cannot evaluate {ast.unparse(node)!r}")  # pragma: no cover - _check_node stops it


def _linear_form(node: ast.AST) -> tuple[dict[str, float], float] | None:
    """``({name: coef}, const)`` when the expression is affine, else None."""
    if isinstance(node, ast.Constant):
        return {}, float(node.value)
    if isinstance(node, ast.Name):
        return ({node.id: 1.0}, 0.0) if node.id not in _FUNCS else None
    if isinstance(node, ast.UnaryOp):
        inner = _linear_form(node.operand)
        if inner is None:
            return None
        s = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return {k: s * v for k, v in inner[0].items()}, s * inner[1]
    if isinstance(node, ast.BinOp):
        a, b = _linear_form(node.left), _linear_form(node.right)
        if a is None or b is None:
            return None
        if isinstance(node.op, (ast.Add, ast.Sub)):
            s = 1.0 if isinstance(node.op, ast.Add) else -1.0
            coefs = dict(a[0])
            for k, v in b[0].items():
                coefs[k] = coefs.get(k, 0.0) + s * v
            return coefs, a[1] + s * b[1]
        if isinstance(node.op, ast.Mult):
            if not a[0]:
                return {k: a[1] * v for k, v in b[0].items()}, a[1] * b[1]
            if not b[0]:
                return {k: b[1] * v for k, v in a[0].items()}, a[1] * b[1]
            return None
        if isinstance(node.op, ast.Div) and not b[0] and b[1] != 0:
            return {k: v / b[1] for k, v in a[0].items()}, a[1] / b[1]
    return None


# ---- equations -----------------------------------------------------------------------

@dataclass
class Term:
    """One additive term ``coef * atom`` of an equation.

    ``kind`` is ``"linear"`` (atom = the parent), ``"pwl"`` (piecewise linear in one parent
    with the given ``kinks``), ``"product"`` (a product of two parents; allowed when one of
    them is a 0/1 variable that cannot change) or ``"fixed"`` (anything else: every variable
    in it must be unable to change).
    """

    kind: str
    coef: float
    names: tuple[str, ...]
    node: ast.AST | None = None
    kinks: tuple[float, ...] = ()

    def value(self, env: Mapping[str, Any]):
        if self.kind == "linear":
            return self.coef * env[self.names[0]]
        if self.kind == "product":
            return self.coef * env[self.names[0]] * env[self.names[1]]
        return self.coef * _eval(self.node, env)


@dataclass
class Equation:
    """``x = intercept + sum(terms) + u``, parsed from ``text`` (see the module docstring)."""

    text: str
    intercept: float
    terms: list[Term]

    @property
    def parents(self) -> list[str]:
        out: list[str] = []
        for t in self.terms:
            out.extend(n for n in t.names if n not in out)
        return out

    def value(self, env: Mapping[str, Any]):
        total = self.intercept
        for t in self.terms:
            total = total + t.value(env)
        return total

    @classmethod
    def parse(cls, text: str | float | int, variable: str = "?") -> "Equation":
        where = f"equation of {variable!r}"
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(float(text))
        if not isinstance(text, str) or not text.strip():
            raise SCMError(f"{where}: expected a non-empty expression string, got {text!r}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise SCMError(f"{where}: cannot parse {text!r} ({exc.msg})") from exc
        _check_node(tree, where)
        intercept, terms = 0.0, []
        for sign, node in _summands(tree.body, 1.0):
            const, atom = _split_coef(node)
            const *= sign
            if atom is None:
                intercept += const
                continue
            lf = _linear_form(atom)
            if lf is not None:  # e.g. 0.5 * (x + y - 3): plain linear terms
                intercept += const * lf[1]
                terms.extend(Term("linear", const * k, (n,)) for n, k in lf[0].items() if k != 0.0)
                continue
            terms.append(_classify(atom, const, where))
        return cls(text.strip(), intercept, terms)


def _summands(node: ast.AST, sign: float) -> Iterable[tuple[float, ast.AST]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        yield from _summands(node.left, sign)
        yield from _summands(node.right, sign if isinstance(node.op, ast.Add) else -sign)
    elif isinstance(node, ast.UnaryOp):
        yield from _summands(node.operand, -sign if isinstance(node.op, ast.USub) else sign)
    else:
        yield sign, node


def _split_coef(node: ast.AST) -> tuple[float, ast.AST | None]:
    """A summand as ``constant * atom`` (atom None for a pure constant)."""
    factors: list[ast.AST] = []

    def walk(n: ast.AST, out: list) -> bool:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
            return walk(n.left, out) and walk(n.right, out)
        out.append(n)
        return True

    walk(node, factors)
    const, rest = 1.0, []
    for f in factors:
        lf = _linear_form(f)
        if lf is not None and not lf[0]:
            const *= lf[1]
        else:
            rest.append(f)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # x / c
        lf = _linear_form(node.right)
        if lf is not None and not lf[0] and lf[1] != 0:
            c, atom = _split_coef(node.left)
            return c / lf[1], atom
        return 1.0, node
    if not rest:
        return const, None
    if len(rest) == 1:
        return const, rest[0]
    atom = rest[0]
    for f in rest[1:]:
        atom = ast.BinOp(atom, ast.Mult(), f)
    return const, atom


def _classify(atom: ast.AST, coef: float, where: str) -> Term:
    names = tuple(_names(atom))
    if (isinstance(atom, ast.BinOp) and isinstance(atom.op, ast.Mult) and isinstance(atom.left, ast.Name)
            and isinstance(atom.right, ast.Name) and atom.left.id != atom.right.id):
        return Term("product", coef, (atom.left.id, atom.right.id))
    if isinstance(atom, ast.Call) and len(names) == 1:
        kinks = _kinks(atom)
        if kinks is not None:
            return Term("pwl", coef, names, atom, kinks)
    return Term("fixed", coef, names, atom)


def _kinks(call: ast.Call) -> tuple[float, ...] | None:
    """Breakpoints of a piecewise-linear call in one variable, or None if it is not one."""
    fn, args = call.func.id, call.args
    if fn == "table":
        if len(args) != 2 or not isinstance(args[0], ast.Name):
            return None
        try:
            pts = np.asarray(_eval(args[1], {}), dtype=float)
        except (KeyError, ValueError, TypeError):
            return None
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 2 or np.any(np.diff(pts[:, 0]) <= 0):
            raise SCMError(f"{ast.unparse(call)}: table points must be [[x, y], ...] with increasing x")
        return tuple(float(v) for v in pts[:, 0])
    if fn not in _PWL_FUNCS:
        return None
    forms = [_linear_form(a) for a in args]
    if any(f is None for f in forms) or len(args) != (1 if fn in ("relu", "abs") else 2):
        return None
    if len(forms) == 1:
        forms.append(({}, 0.0))
    (ca, ka), (cb, kb) = forms
    (name,) = set(ca) | set(cb)
    slope = ca.get(name, 0.0) - cb.get(name, 0.0)
    if slope == 0:
        return ()
    return (float((kb - ka) / slope),)


# ---- the SCM -------------------------------------------------------------------------

class SCM:
    """A structural causal model with additive noise over named variables.

    Parameters
    ----------
    equations : ``{variable: "expression in its parents"}``; variables without an equation
        are roots (``x = u``).
    variables : all variable names; when given, every name used in an equation must be one
        of them (otherwise the names used are added as roots).
    """

    def __init__(self, equations: Mapping[str, str | Equation] | None = None,
                 variables: Sequence[str] | None = None) -> None:
        equations = dict(equations or {})
        self.equations: dict[str, Equation] = {
            v: e if isinstance(e, Equation) else Equation.parse(e, v) for v, e in equations.items()}
        names = list(variables) if variables is not None else list(self.equations)
        for v, eq in self.equations.items():
            for p in eq.parents:
                if p not in names:
                    if variables is not None:
                        raise SCMError(f"equation of {v!r} uses unknown variable {p!r}; "
                                       f"known variables: {names}")
                    names.append(p)
            if v in eq.parents:
                raise SCMError(f"equation of {v!r} uses {v!r} itself (cycle {v} -> {v})")
        for v in self.equations:
            if v not in names:
                names.append(v)
        self.variables = names
        self.order = self._topological_order()
        if variables is None:  # no declared order: causes before effects
            self.variables = list(self.order)

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def linear(cls, coefficients: Mapping[str, Mapping[str, float]],
               intercepts: Mapping[str, float] | None = None,
               variables: Sequence[str] | None = None) -> "SCM":
        """``SCM.linear({"savings": {"salary": 0.3}})``: ``x_child = b + sum(coef * parent) + u``."""
        intercepts = dict(intercepts or {})
        unknown = sorted(set(intercepts) - set(coefficients))
        if unknown:
            raise SCMError(f"intercepts given for {unknown}, which have no equation")
        eqs = {}
        for child, parents in coefficients.items():
            parts = [repr(float(intercepts.get(child, 0.0)))]
            for p, c in parents.items():
                if not isinstance(p, str) or not p.isidentifier():
                    raise SCMError(f"equation of {child!r}: parent name {p!r} is not an identifier")
                parts.append(f"{float(c)!r} * {p}")
            eqs[child] = " + ".join(parts)
        return cls(eqs, variables)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SCM":
        if "scm" in d and "variables" not in d:
            d = d["scm"]
        if d.get("format", FORMAT) != FORMAT:
            raise SCMError(f"unsupported SCM format {d.get('format')!r}; expected {FORMAT!r}")
        if not isinstance(d.get("variables"), Mapping):
            raise SCMError("an SCM needs 'variables': {name: equation or null}")
        eqs = {}
        for v, spec in d["variables"].items():
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"equation", "parents"}
                if unknown:
                    raise SCMError(f"variable {v!r}: unknown keys {sorted(unknown)}")
                eq = spec.get("equation")
                if eq is not None:
                    eqs[v] = Equation.parse(eq, v)
                    declared = spec.get("parents")
                    if declared is not None and set(declared) != set(eqs[v].parents):
                        raise SCMError(f"variable {v!r}: declared parents {sorted(declared)} differ from "
                                       f"the parents in its equation {sorted(eqs[v].parents)}")
            elif spec is not None:
                eqs[v] = Equation.parse(spec, v)
        return cls(eqs, list(d["variables"]))

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> "SCM":
        """Read an SCM from a JSON file or string (a file may also hold ``{"scm": ...}``)."""
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text()
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise SCMError(f"invalid SCM JSON: {exc}") from exc

    def to_dict(self) -> dict:
        return {"format": FORMAT, "variables": {
            v: ({"parents": self.parents(v), "equation": self.equations[v].text} if v in self.equations else None)
            for v in self.variables}}

    def to_json(self, path: str | Path | None = None) -> str:
        return dump_json(self.to_dict(), path)

    def __repr__(self) -> str:
        eqs = "; ".join(f"{v} := {e.text} + u" for v, e in self.equations.items())
        return f"SCM({eqs or 'no equations'})"

    # ---- graph ------------------------------------------------------------------------
    def parents(self, v: str) -> list[str]:
        return self.equations[v].parents if v in self.equations else []

    def _topological_order(self) -> list[str]:
        state: dict[str, int] = {}
        order: list[str] = []
        for start in self.variables:
            if state.get(start):
                continue
            stack: list[tuple[str, Iterable[str]]] = [(start, iter(self.parents(start)))]
            path = [start]
            state[start] = 1
            while stack:
                v, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[v] = 2
                    order.append(v)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    # path runs child -> parent; report it in causal direction
                    raise SCMError("the causal graph has a cycle: " + " -> ".join(reversed(cycle)))
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(self.parents(nxt))))
        return order

    def descendants(self, v: str) -> set[str]:
        out: set[str] = set()
        for w in self.order:
            if any(p == v or p in out for p in self.parents(w)):
                out.add(w)
        return out

    # ---- per person -------------------------------------------------------------------
    def _f(self, v: str, env: Mapping[str, Any]):
        return self.equations[v].value(env) if v in self.equations else 0.0

    def abduct(self, values: Mapping[str, float]) -> dict[str, float]:
        """Noise ``u_i = x_i - f_i(parents)`` of one person (``x_i`` for roots)."""
        env = _numeric_env(values, self.variables)
        return {v: float(env[v] - self._f(v, env)) for v in self.variables}

    def propagate(self, values: Mapping[str, float], do: Mapping[str, float] | None = None,
                  shift: Mapping[str, float] | None = None) -> dict[str, float]:
        """The counterfactual world of one person: hard ``do`` (set) and additive ``shift``.

        Every variable not set by ``do`` is recomputed from its (new) parents plus its own
        abducted noise plus its shift.
        """
        do, shift = dict(do or {}), dict(shift or {})
        unknown = sorted((set(do) | set(shift)) - set(self.variables))
        if unknown:
            raise SCMError(f"interventions on unknown variables {unknown}")
        u = self.abduct(values)
        world: dict[str, float] = {}
        for v in self.order:
            if v in do:
                world[v] = float(do[v])
            else:
                world[v] = float(self._f(v, world) + u[v] + shift.get(v, 0.0))
        return world

    def generate(self, noise: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """Sample the model from given noise arrays (one per variable): ``x = f(parents) + u``."""
        missing = [v for v in self.variables if v not in noise]
        if missing:
            raise SCMError(f"no noise given for {missing}")
        out: dict[str, np.ndarray] = {}
        for v in self.order:
            out[v] = np.asarray(self._f(v, out), dtype=float) + np.asarray(noise[v], dtype=float)
        return pd.DataFrame({v: out[v] for v in self.variables})

    # ---- against a schema -------------------------------------------------------------
    def fixed_variables(self, schema) -> set[str]:
        """Variables that cannot change: immutable, or not actionable with unchangeable causes."""
        fixed: set[str] = set()
        for v in self.order:
            f = _feature(schema, v)
            if f.actionability == "immutable" or (
                    f.actionability == "not_actionable" and all(p in fixed for p in self.parents(v))):
                fixed.add(v)
        return fixed

    def validate(self, schema) -> None:
        """Raise :class:`SCMError` if the SCM does not fit ``schema`` (names the variable)."""
        for v in self.variables:
            _feature(schema, v)
        fixed = self.fixed_variables(schema)
        for v in self.order:
            if v not in self.equations:
                continue
            f = _feature(schema, v)
            eq = self.equations[v]
            moving = [p for p in eq.parents if p not in fixed]
            if f.actionability == "immutable" and moving:
                raise SCMError(f"variable {v!r} is immutable but its equation depends on {moving}, which "
                               "can change; an immutable variable must be a root or depend only on "
                               "variables that cannot change")
            if not f.is_numeric:
                raise SCMError(f"variable {v!r} is {f.type}; only numeric variables can have an equation "
                               "(a categorical or ordinal variable can only be a root)")
            for p in eq.parents:
                if not _feature(schema, p).is_numeric:
                    raise SCMError(f"equation of {v!r} uses {p!r}, which is "
                                   f"{_feature(schema, p).type}; equations take numeric variables only")
            for t in eq.terms:
                free = [n for n in t.names if n not in fixed]
                if not free:
                    continue
                if t.kind == "fixed":
                    raise SCMError(f"equation of {v!r}: non-linear expression {ast.unparse(t.node)!r} in "
                                   f"{free}, which can change; use linear, relu/max/min/abs or table terms "
                                   "in one variable, or a product with a fixed 0/1 variable")
                if t.kind == "product":
                    other = [n for n in t.names if n in fixed]
                    if len(free) != 1 or not other or not _is_binary(_feature(schema, other[0])):
                        raise SCMError(f"equation of {v!r}: non-linear product {' * '.join(t.names)}; a "
                                       "product needs one factor that is a 0/1 variable that cannot change")


def _feature(schema, v: str):
    try:
        return schema[v]
    except KeyError:
        raise SCMError(f"SCM variable {v!r} is not a feature of the schema "
                       f"(features: {schema.names})") from None


def _is_binary(f) -> bool:
    return f.is_numeric and f.lower >= 0.0 and f.upper <= 1.0 and f.type in ("binary", "integer")


def _numeric_env(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, float]:
    env = {}
    for v in names:
        if v not in values:
            raise SCMError(f"no value given for SCM variable {v!r}")
        try:
            env[v] = float(values[v])
        except (TypeError, ValueError):
            env[v] = values[v]  # a non-numeric root: never used in an equation (validate checks)
    return env


# ---- the MILP block ------------------------------------------------------------------

@dataclass
class _Child:
    """A variable that responds to causes that can change: its result column and rows."""

    name: str
    action: int                      # the feature column (the intervention value)
    result: int                      # the resulting value the model sees
    terms: list[Term]                # the terms in changing parents (fixed ones cancel)
    fixed_action: bool               # not actionable: it may move only through its causes
    delta: int | None = None         # hard: 1 when intervened
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class CausalBlock:
    """What :func:`encode_scm` adds: the resulting world and the per-person hooks."""

    scm: SCM
    schema: Any
    intervention: str
    inputs: dict
    children: list[_Child]
    result_cols: dict[str, int]      # numeric variable -> column of its resulting value
    fixed: set[str]
    robust: dict | None = None
    milp: MILP | None = None
    _weights: dict = field(default_factory=dict)  # desired class -> per-row input weights

    # ---- per person ------------------------------------------------------------------
    def _terms_at(self, child: _Child, env: Mapping[str, float]) -> float:
        return float(sum(t.value(env) for t in child.terms))

    def bound(self, values: Mapping[str, Any], lb: np.ndarray, ub: np.ndarray, row_lo: np.ndarray,
              row_hi: np.ndarray) -> None:
        """Abduction: the person's noise enters the structural rows as right-hand sides."""
        env = _numeric_env(values, self.scm.variables)
        for ch in self.children:
            x0 = float(env[ch.name])
            f0 = self._terms_at(ch, env)
            if self.intervention == "additive":  # r - F(parents') - a = -F(parents)
                row_lo[ch.rows[0]] = row_hi[ch.rows[0]] = -f0
                continue
            k = x0 - f0  # the noise plus the terms in parents that cannot change
            eq_hi, eq_lo, act_hi, act_lo = ch.rows
            row_hi[eq_hi], row_lo[eq_lo] = k, k
            row_hi[act_hi], row_lo[act_lo] = x0, x0
            if ch.fixed_action:
                ub[ch.delta] = 0.0

    def attach(self, encoding) -> None:
        """Called once the model is encoded: split gaps for recomputed inputs; robust margins."""
        self._split_gaps(encoding)
        if self.robust is None:
            return
        self.total_effects(None)  # a non-linear SCM fails here, naming the term, not per person
        to_var = {c: v for v, c in self.result_cols.items()}
        input_cols = {int(i) for inp in self.inputs.values() for i in inp.expr.idx}
        for c in range(len(encoding.scores)):
            rows = []
            for j in range(len(encoding.scores)):
                if j == c:
                    continue
                e = (encoding.scores[c] - encoding.scores[j]).merged()
                if any(int(i) not in input_cols for i in e.idx):
                    raise SCMError("robust recourse needs a model whose scores are linear in its inputs "
                                   f"(a linear classifier); the {encoding.name!r} encoding is not")
                rows.append({to_var[int(i)]: float(w) for i, w in zip(e.idx, e.coef) if int(i) in to_var})
            self._weights[c] = rows

    def _split_gaps(self, encoding) -> None:
        """Keep recomputed values a little away from the model's split points.

        The world is computed from the interventions by the SCM itself, so a recomputed value
        can differ from the solver's by the solver's feasibility tolerance; right at a split
        that would send it to the other side. A gap of ``SPLIT_GAP`` (relative) rules that out
        and can raise the optimum only by that much.
        """
        milp = self.milp
        integral = milp.is_integer()  # integer results are rounded exactly: no gap needed
        recomputed = {ch.result for ch in self.children if not integral[ch.result]}
        cuts = [c for c in encoding.cuts if c.var in recomputed]
        if not cuts:
            return
        for c in cuts:
            lo_r, hi_r = float(milp.lb[c.var]), float(milp.ub[c.var])
            g = SPLIT_GAP * max(1.0, abs(c.left_max))
            m_right = c.right_min + g - lo_r  # right (y = 1): r >= right_min + g
            milp.add_ge(LinExpr([c.var, c.right], [1.0, -m_right]), lo_r, name="scm.split_gap_right")
            m_left = hi_r - (c.left_max - g)  # left (y = 0): r <= left_max - g
            milp.add_le(LinExpr([c.var, c.right], [1.0, -m_left]), c.left_max - g, name="scm.split_gap_left")

    def total_effects(self, values: Mapping[str, Any] | None) -> tuple[np.ndarray, list[str]]:
        """``J`` with ``J[i, j] = d x_i / d u_j`` for this person, and the variable order.

        Only the variables the perturbation reaches (the perturbed ones and their descendants)
        need linear equations; a product with a fixed 0/1 variable is linear for a person.
        ``values=None`` checks the structure only (products then count with weight 1).
        """
        names = [v for v in self.scm.variables if v in self.result_cols]
        pos = {v: i for i, v in enumerate(names)}
        n = len(names)
        B = np.zeros((n, n))
        env = None if values is None else _numeric_env(values, self.scm.variables)
        reached = set(self._perturbed)
        for p in self._perturbed:
            reached |= self.scm.descendants(p)
        for v in names:
            if v not in self.scm.equations:
                continue
            for t in self.scm.equations[v].terms:
                hit = [p for p in t.names if p in reached]
                if not hit:
                    continue  # constant under the perturbation
                if t.kind == "linear":
                    B[pos[v], pos[hit[0]]] += t.coef
                elif t.kind == "product" and len(hit) == 1 and all(p in self.fixed for p in t.names
                                                                    if p != hit[0]):
                    other = next(p for p in t.names if p != hit[0])
                    B[pos[v], pos[hit[0]]] += t.coef * (1.0 if env is None else float(env[other]))
                else:
                    term = ast.unparse(t.node) if t.node is not None else " * ".join(t.names)
                    raise SCMError(f"robust recourse needs a linear SCM where the perturbation reaches; "
                                   f"the equation of {v!r} has the non-linear term {term} in {hit}")
        return np.linalg.inv(np.eye(n) - B), names

    @property
    def _perturbed(self) -> list[str]:
        feats = self.robust.get("features")
        if feats is None:  # default: every variable that can change (immutable ones are known)
            return [v for v in self.scm.variables if v in self.result_cols and v not in self.fixed]
        return list(feats)

    def robust_margins(self, values: Mapping[str, Any], desired: int) -> np.ndarray:
        """Per decision row: ``epsilon * ||J_P^T w||_*`` (the worst case over the ball)."""
        J, names = self.total_effects(values)
        cols = [names.index(p) for p in self._perturbed]
        eps, norm = float(self.robust["epsilon"]), self.robust.get("norm", "l2")
        out = []
        for w in self._weights[desired]:
            wv = np.array([w.get(v, 0.0) for v in names])
            out.append(eps * float(np.linalg.norm(J[:, cols].T @ wv, ord=_DUAL[norm])))
        return np.array(out)

    def bound_decision(self, values: Mapping[str, Any], desired: int, row_lo: np.ndarray,
                       decision_rows: np.ndarray) -> None:
        if self.robust is not None:
            row_lo[decision_rows[desired]] += self.robust_margins(values, desired)

    # ---- reading a solution ------------------------------------------------------------
    def _actions(self, x: np.ndarray, q, action: Mapping[str, Any]) -> dict[str, float]:
        """The interventions of a solver point: variable -> set value (hard) or shift (additive)."""
        values = q.values
        delta = {ch.name: ch.delta for ch in self.children}
        out: dict[str, float] = {}
        for v in self.scm.variables:
            if v in self.fixed or not _feature(self.schema, v).is_numeric:
                continue
            a, x0 = float(action[v]), float(values[v])
            if self.intervention == "additive":
                if a != x0:
                    out[v] = a - x0
            elif v in delta and x[delta[v]] > 0.5:
                out[v] = a
            elif v not in delta and a != x0:
                out[v] = a
        if self.intervention == "hard":  # drop "hold at the factual" interventions that change nothing
            env = _numeric_env(values, self.scm.variables)
            for v in [v for v, a in out.items() if a == float(env[v])]:
                rest = {k: a for k, a in out.items() if k != v}
                if _same(self.scm.propagate(env, rest), self.scm.propagate(env, out)):
                    out = rest
        return out

    def _world(self, values: Mapping[str, Any], acts: Mapping[str, float]) -> dict[str, float]:
        env = _numeric_env(values, self.scm.variables)
        if self.intervention == "additive":
            return self.scm.propagate(env, shift=acts)
        return self.scm.propagate(env, do=acts)

    def decode(self, x: np.ndarray, q, action: Mapping[str, Any]) -> dict[str, Any]:
        """The resulting world, computed from the interventions by the SCM itself."""
        world = self._world(q.values, self._actions(x, q, action))
        out = dict(action)
        for v, val in world.items():
            f = _feature(self.schema, v)
            if not f.is_numeric:
                continue
            x0 = float(q.values[v])
            if abs(val - x0) <= 1e-9 * max(1.0, abs(x0)):
                val = x0  # floating noise of the propagation is not a change
            if f.type != "real" and abs(val - round(val)) <= 1e-6:
                val = float(round(val))
            tol = 1e-9 * max(1.0, abs(f.lower), abs(f.upper))
            if f.lower - tol <= val < f.lower or f.upper < val <= f.upper + tol:
                val = min(max(val, f.lower), f.upper)  # propagation noise at a bound
            out[v] = val
        return out

    def interventions(self, x: np.ndarray, q, action: Mapping[str, Any]) -> pd.DataFrame:
        """One row per intervened variable: feature, before, after (the value it is set or shifted to)."""
        acts = self._actions(x, q, action)
        rows = [(v, q.values[v], (float(q.values[v]) + a) if self.intervention == "additive" else a)
                for v, a in acts.items()]
        for f in self.schema.features:  # categorical and ordinal roots: set to another level
            if not f.is_numeric and f.level_index(action[f.name]) != f.level_index(q.values[f.name]):
                rows.append((f.name, q.values[f.name], action[f.name]))
        order = {n: i for i, n in enumerate(self.schema.names)}
        rows.sort(key=lambda r: order[r[0]])
        return pd.DataFrame(rows, columns=["feature", "before", "after"])


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(a[k])) for k in a)


def encode_scm(milp: MILP, schema, fvars, inputs: Mapping[str, Any], scm: SCM,
               intervention: str = "hard", robust: Mapping[str, Any] | None = None) -> CausalBlock:
    """Add the resulting-world columns and the structural rows; return the model's inputs.

    Hard interventions: per responding variable ``i`` a binary ``delta_i``; ``delta_i = 1``
    sets the result to the action (the parents are cut), ``delta_i = 0`` makes the result
    follow ``f_i(parents') + u_i`` and holds the action at the factual value. Additive
    interventions: ``result_i = f_i(parents') + u_i + (action_i - x_i)``. Results stay
    within the schema's bounds (and integral for integer features).
    """
    if not isinstance(scm, SCM):
        raise TypeError(f"scm must be a mipcf.SCM, got {type(scm).__name__}")
    if intervention not in INTERVENTIONS:
        raise ValueError(f"intervention {intervention!r} is not one of {INTERVENTIONS}")
    robust = _check_robust(robust, intervention, scm, schema)
    scm.validate(schema)
    # every numeric feature takes part; those the SCM does not mention are roots
    names = [f.name for f in schema.features if f.is_numeric]
    scm = SCM(scm.equations, [v for v in scm.variables if v in names] + [v for v in names if v not in scm.variables])
    fixed = scm.fixed_variables(schema)
    by_name = {fv.feature.name: fv for fv in fvars}
    out_inputs = dict(inputs)
    result_cols: dict[str, int] = {}
    children: list[_Child] = []
    for v in scm.order:
        fv = by_name[v]
        f = fv.feature
        terms = [t for t in scm.equations[v].terms if any(p not in fixed for p in t.names)] \
            if v in scm.equations else []
        if not terms or v in fixed:
            result_cols[v] = fv.var  # it moves only by its own action: the action is the result
            continue
        integer = f.type != "real"
        r = milp.add_var(f.lower, f.upper, integer, name=f"{v}.result")
        F = LinExpr.sum(_term_expr(milp, t, result_cols, fixed, f"{v}.term{k}") for k, t in enumerate(terms))
        a = fv.var
        ch = _Child(v, a, r, terms, f.actionability in ("not_actionable", "immutable"))
        if intervention == "additive":
            ch.rows = np.array([milp.add_constraint(LinExpr.var(r) - F - LinExpr.var(a), -INF, INF,
                                                    name=f"{v}.structural")])
        else:
            d = milp.add_binaries(1, name=f"{v}.intervened")[0]
            ch.delta = int(d)
            span = f.upper - f.lower
            rf_lo, rf_hi = (LinExpr.var(r) - F).bounds(milp.lb, milp.ub)
            m_eq = max(rf_hi - rf_lo, 1.0)  # |r - F - k| over the box, k of any factual in the box
            base = LinExpr.var(r) - F
            ch.rows = np.array([
                milp.add_constraint(base - LinExpr.var(ch.delta, m_eq), -INF, INF, name=f"{v}.eq_hi"),
                milp.add_constraint(base + LinExpr.var(ch.delta, m_eq), -INF, INF, name=f"{v}.eq_lo"),
                milp.add_constraint(LinExpr.var(a) - LinExpr.var(ch.delta, span), -INF, INF, name=f"{v}.hold_hi"),
                milp.add_constraint(LinExpr.var(a) + LinExpr.var(ch.delta, span), -INF, INF, name=f"{v}.hold_lo"),
            ])
            # delta = 1: the result is the action (both within the feature's bounds)
            milp.add_constraint(LinExpr([r, a, ch.delta], [1.0, -1.0, span]), -INF, span, name=f"{v}.set_hi")
            milp.add_constraint(LinExpr([r, a, ch.delta], [1.0, -1.0, -span]), -span, INF, name=f"{v}.set_lo")
        children.append(ch)
        result_cols[v] = r
        out_inputs[v] = NumericInput(r, f.lower, f.upper, integer, name=v)
    return CausalBlock(scm, schema, intervention, out_inputs, children, result_cols, fixed, robust, milp)


def _term_expr(milp: MILP, t: Term, cols: Mapping[str, int], fixed: set[str], name: str) -> LinExpr:
    """The term as a linear expression over MILP columns (adding columns where it needs them)."""
    if t.kind == "linear":
        return LinExpr.var(cols[t.names[0]], t.coef)
    if t.kind == "product":  # coef * g * p, g a fixed 0/1 column: exact McCormick rows
        g = next(p for p in t.names if p in fixed)
        p = next(n for n in t.names if n != g)
        gc, pc = cols[g], cols[p]
        lo, hi = float(milp.lb[pc]), float(milp.ub[pc])
        w = milp.add_var(min(lo, 0.0), max(hi, 0.0), name=f"{name}.product")
        milp.add_le(LinExpr([w, gc], [1.0, -hi]), 0.0, name=f"{name}.mc1")            # w <= hi g
        milp.add_ge(LinExpr([w, gc], [1.0, -lo]), 0.0, name=f"{name}.mc2")            # w >= lo g
        milp.add_le(LinExpr([w, pc, gc], [1.0, -1.0, -lo]), -lo, name=f"{name}.mc3")  # w <= p - lo (1 - g)
        milp.add_ge(LinExpr([w, pc, gc], [1.0, -1.0, -hi]), -hi, name=f"{name}.mc4")  # w >= p - hi (1 - g)
        return LinExpr.var(w, t.coef)
    # piecewise linear in one column: exact on its breakpoints over the column's bounds
    (p,) = t.names
    pc = cols[p]
    lo, hi = float(milp.lb[pc]), float(milp.ub[pc])
    xs = np.array(sorted({lo, hi} | {k for k in t.kinks if lo < k < hi}))
    ys = np.asarray(t.value({p: xs}), dtype=float) * np.ones(xs.size)
    if xs.size == 1:
        return LinExpr.constant(float(ys[0]))
    if xs.size == 2:
        slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
        return LinExpr.var(pc, slope) + (ys[0] - slope * xs[0])
    n = xs.size
    lam = milp.add_vars(n, 0.0, 1.0, name=f"{name}.lambda")
    seg = milp.add_binaries(n - 1, name=f"{name}.segment")
    milp.add_eq(LinExpr(lam, np.ones(n)), 1.0, name=f"{name}.convex")
    milp.add_eq(LinExpr(seg, np.ones(n - 1)), 1.0, name=f"{name}.one_segment")
    milp.add_eq(LinExpr(np.r_[pc, lam], np.r_[1.0, -xs]), 0.0, name=f"{name}.point")
    for k in range(n):  # lambda_k > 0 only at the ends of the chosen segment
        near = [s for s in (k - 1, k) if 0 <= s < n - 1]
        milp.add_le(LinExpr(np.r_[lam[k], seg[near]], np.r_[1.0, -np.ones(len(near))]), 0.0, name=f"{name}.sos2")
    return LinExpr(lam, ys)


def _check_robust(robust: Mapping[str, Any] | None, intervention: str, scm: SCM, schema) -> dict | None:
    if robust is None:
        return None
    if not isinstance(robust, Mapping) or "epsilon" not in robust:
        raise ValueError("robust must be a dict like {'epsilon': 100, 'norm': 'l2'}")
    unknown = set(robust) - {"epsilon", "norm", "features"}
    if unknown:
        raise ValueError(f"robust has unknown keys {sorted(unknown)}; use epsilon, norm, features")
    eps = float(robust["epsilon"])
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"robust epsilon must be finite and >= 0, got {robust['epsilon']!r}")
    norm = robust.get("norm", "l2")
    if norm not in NORMS:
        raise ValueError(f"robust norm {norm!r} is not one of {NORMS}")
    if intervention != "additive":
        raise ValueError("robust recourse needs additive interventions (intervention='additive'): "
                         "only then does the action's effect not depend on the uncertain factual")
    feats = robust.get("features")
    if feats is not None:
        for v in feats:
            if v not in scm.variables and v not in schema.names:
                raise SCMError(f"robust features: unknown variable {v!r}")
            if not _feature(schema, v).is_numeric:
                raise SCMError(f"robust features: {v!r} is not numeric")
        feats = list(feats)
    return {"epsilon": eps, "norm": norm, "features": feats}


__all__ = ["SCM", "SCMError", "Equation", "Term", "CausalBlock", "encode_scm", "INTERVENTIONS"]
