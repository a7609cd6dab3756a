"""The recourse MILP for one (model, schema, cost): compiled once, re-solved per person.

Everything a person changes enters as column bounds (actionability, factual values fixed
by immutability) or row bounds (the factual in the cost rows, the desired class and its
margin in the decision rows); the matrix and the objective never change. That is what lets
one loaded solver instance serve every individual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

import encoders
from encoders import MILP, DiscreteInput, Encoding, LinExpr, NumericInput

from .costs import CostSpec
from .schema import Feature, Schema, SchemaError, _key

INF = float("inf")


@dataclass
class FeatureVars:
    """The MILP columns and rows that represent one feature."""

    feature: Feature
    var: int | None = None                 # numeric value column
    levels: np.ndarray | None = None       # one binary per level (categorical / ordinal)
    pos: np.ndarray | None = None          # the numeric value row (numeric) or position row (ordinal)
    level_rows: np.ndarray | None = None   # categorical: d + b_l >= [l == factual]
    plus: int | None = None
    minus: int | None = None
    dist: int | None = None                # categorical change indicator (continuous in [0, 1])
    changed: int | None = None             # l0 indicator


@dataclass
class Query:
    """Per-person bounds for the compiled problem."""

    lb: np.ndarray
    ub: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    values: dict[str, Any]
    desired: int


@dataclass
class CompiledProblem:
    schema: Schema
    cost: CostSpec
    milp: MILP
    encoding: Encoding
    fvars: list[FeatureVars]
    c: np.ndarray
    decision_rows: np.ndarray  # (n_classes, n_classes - 1) row ids: class c beats the others
    decision_const: np.ndarray  # constants moved out of those rows' expressions
    causal: Any = None          # mipcf.causal block when an SCM is given (see compile_problem)
    extra: dict = field(default_factory=dict)

    # ---- per query -------------------------------------------------------------------
    def query(self, values: Mapping[str, Any], desired: int, margin_factor: float = 1.0) -> Query:
        """Bounds for the person with per-feature ``values`` who should get class ``desired``."""
        lb, ub = self.milp.lb.copy(), self.milp.ub.copy()
        row_lo, row_hi = self.milp.row_bounds()
        row_lo, row_hi = row_lo.copy(), row_hi.copy()
        for fv in self.fvars:
            _bound_feature(fv, values[fv.feature.name], lb, ub, row_lo, row_hi)
        if self.causal is not None:
            self.causal.bound(values, lb, ub, row_lo, row_hi)
        row_lo[self.decision_rows.ravel()] = -INF
        row_lo[self.decision_rows[desired]] = self.encoding.margin * margin_factor - self.decision_const[desired]
        return Query(lb, ub, row_lo, row_hi, dict(values), desired)

    def decode(self, x: np.ndarray, q: Query) -> dict[str, Any]:
        """Per-feature values of a solver point, snapped onto the sides of splits it chose."""
        lo_snap, hi_snap = {}, {}
        for cut in self.encoding.cuts:
            if x[cut.right] > 0.5:
                lo_snap[cut.var] = max(lo_snap.get(cut.var, -INF), cut.right_min)
            else:
                hi_snap[cut.var] = min(hi_snap.get(cut.var, INF), cut.left_max)
        out = {}
        for fv in self.fvars:
            f = fv.feature
            if f.is_numeric:
                v = float(x[fv.var])
                if f.type != "real":
                    v = float(np.round(v))
                lo = max(lo_snap.get(fv.var, -INF), q.lb[fv.var])
                hi = min(hi_snap.get(fv.var, INF), q.ub[fv.var])
                v = min(max(v, lo), hi)
                x0 = float(q.values[f.name])
                # a solver tolerance must not turn "unchanged" into a tiny change
                if lo <= x0 <= hi and abs(v - x0) <= 1e-6 * max(1.0, abs(x0)):
                    v = x0
                out[f.name] = v
            else:
                out[f.name] = f.levels[int(np.argmax(x[fv.levels]))]
        return out


def compile_problem(model: object, schema: Schema, cost: CostSpec, encoder_options: dict | None = None,
                    scm: Any = None) -> CompiledProblem:
    """Build the MILP: feature columns, cost structure, then the model's encoding.

    With an SCM, the feature columns hold the *actions* (what the person sets; costs and
    actionability apply to them) and :func:`mipcf.causal.encode_scm` adds the columns of the
    *resulting* counterfactual, which are what the model sees.
    """
    milp = MILP()
    fvars, inputs = [], {}
    with milp.block("features"):
        for f in schema.features:
            fv, feature_inputs = _feature_block(milp, f)
            fvars.append(fv)
            inputs.update(feature_inputs)
    causal = None
    if scm is not None:
        from .causal import encode_scm
        with milp.block("scm"):
            causal = encode_scm(milp, schema, fvars, inputs, scm)
        inputs = causal.inputs
    encoding = encoders.encode_model(milp, model, inputs, schema.columns, name="model", **(encoder_options or {}))
    with milp.block("decision"):
        decision_rows, decision_const = _decision_rows(milp, encoding)
    with milp.block("cost"):
        c = _cost_block(milp, fvars, cost)
    return CompiledProblem(schema, cost, milp, encoding, fvars, c, decision_rows, decision_const, causal)


# ---- feature columns ------------------------------------------------------------------

def _feature_block(milp: MILP, f: Feature) -> tuple[FeatureVars, dict[str, Any]]:
    if f.is_numeric:
        integer = f.type != "real"
        x = milp.add_var(f.lower, f.upper, integer, name=f.name)
        p = milp.add_var(0.0, f.upper - f.lower, False, name=f"{f.name}.up")
        n = milp.add_var(0.0, f.upper - f.lower, False, name=f"{f.name}.down")
        row = milp.add_eq(LinExpr([x, p, n], [1.0, -1.0, 1.0]), 0.0, name=f"{f.name}.delta")
        inp = NumericInput(x, f.lower, f.upper, integer, name=f.name)
        return FeatureVars(f, var=x, pos=np.array([row]), plus=p, minus=n), {f.name: inp}
    k = len(f.levels)
    b = milp.add_binaries(k, name=f.name)
    milp.add_eq(LinExpr(b, np.ones(k)), 1.0, name=f"{f.name}.one")
    fv = FeatureVars(f, levels=b)
    if f.type == "ordinal":
        fv.plus = milp.add_var(0.0, k - 1.0, name=f"{f.name}.up")
        fv.minus = milp.add_var(0.0, k - 1.0, name=f"{f.name}.down")
        fv.pos = np.array([milp.add_eq(LinExpr(np.r_[b, fv.plus, fv.minus], np.r_[np.arange(k), -1.0, 1.0]),
                                       0.0, name=f"{f.name}.delta")])
    else:
        fv.dist = milp.add_var(0.0, 1.0, name=f"{f.name}.changed")
        fv.level_rows = milp.add_exprs([LinExpr([fv.dist, bl], [1.0, 1.0]) for bl in b], -INF, INF,
                                       name=f"{f.name}.level")
    if f.columns is not None:
        inputs = {f.columns[lv]: NumericInput(int(bl), 0.0, 1.0, True, name=f.columns[lv])
                  for lv, bl in zip(f.levels, b)}
    else:
        try:
            values = np.array([float(v) for v in f.levels])
        except (TypeError, ValueError):
            values = None
        inputs = {f.name: DiscreteInput(values, [LinExpr.var(int(bl)) for bl in b], name=f.name)} \
            if values is not None else {f.name: _TextLevels(f)}
    return fv, inputs


class _TextLevels:
    """Placeholder for a column of text levels: only a pipeline step can feed it to a model."""

    def __init__(self, feature: Feature) -> None:
        self.feature = feature

    @property
    def expr(self) -> LinExpr:
        raise encoders.UnsupportedModelError(
            f"column {self.feature.name!r} holds text levels; the model needs numbers — wrap it in a "
            "Pipeline with a OneHotEncoder/OrdinalEncoder, or one-hot encode the column in the data")


def _bound_feature(fv: FeatureVars, value: Any, lb, ub, row_lo, row_hi) -> None:
    f = fv.feature
    fixed = f.actionability in ("immutable", "not_actionable")
    if f.is_numeric:
        v = float(value)
        row_lo[fv.pos] = row_hi[fv.pos] = v
        if fixed:
            lb[fv.var] = ub[fv.var] = v
        elif f.actionability == "increase_only":
            lb[fv.var] = max(lb[fv.var], v)
        elif f.actionability == "decrease_only":
            ub[fv.var] = min(ub[fv.var], v)
        return
    i = f.level_index(value)
    k = len(f.levels)
    if f.type == "ordinal":
        row_lo[fv.pos] = row_hi[fv.pos] = float(i)
    else:
        row_lo[fv.level_rows] = -INF
        row_lo[fv.level_rows[i]] = 1.0
    if fixed:
        lb[fv.levels[i]] = 1.0
    elif f.actionability == "increase_only":
        ub[fv.levels[:i]] = 0.0
    elif f.actionability == "decrease_only":
        ub[fv.levels[i + 1:k]] = 0.0


# ---- decision and cost ----------------------------------------------------------------

def _decision_rows(milp: MILP, enc: Encoding) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``score_c - score_j`` for every ordered pair; a query switches on one class's rows."""
    k = len(enc.scores)
    rows, consts = [], []
    for c in range(k):
        exprs = [enc.scores[c] - enc.scores[j] for j in range(k) if j != c]
        rows.append(milp.add_exprs(exprs, -INF, INF, name=f"decision.class{c}"))
        consts.append([e.const for e in exprs])
    return np.array(rows), np.array(consts)


def _cost_block(milp: MILP, fvars: list[FeatureVars], cost: CostSpec) -> np.ndarray:
    """Objective vector over all columns (adds l0 indicators and the linf epigraph as needed)."""
    terms: list[LinExpr] = []  # per-feature weighted change d_j
    for fv in fvars:
        f, w = fv.feature, cost.weights[fv.feature.name]
        if f.type == "categorical":
            terms.append(LinExpr.var(fv.dist, w))
        else:
            unit = 1.0 / (len(f.levels) - 1) if f.type == "ordinal" and len(f.levels) > 1 else 1.0
            terms.append(LinExpr([fv.plus, fv.minus], [w * unit, w * unit]))
    obj = LinExpr()
    if cost.l1:
        obj = obj + LinExpr.sum(terms) * cost.l1
    if cost.linf:
        t = milp.add_var(0.0, INF, name="linf")
        milp.add_exprs([LinExpr.var(t) - d for d in terms], 0.0, INF, name="linf.epigraph")
        obj = obj + LinExpr.var(t, cost.linf)
    if cost.l0:
        for fv in fvars:
            fv.changed = milp.add_var(0.0, 1.0, True, name=f"{fv.feature.name}.l0")
            f = fv.feature
            if f.type == "categorical":
                milp.add_ge(LinExpr([fv.changed, fv.dist], [1.0, -1.0]), 0.0, name=f"{f.name}.l0")
            else:
                big = (f.upper - f.lower) if f.is_numeric else len(f.levels) - 1.0
                milp.add_le(LinExpr([fv.plus, fv.minus, fv.changed], [1.0, 1.0, -max(big, 1.0)]), 0.0,
                            name=f"{f.name}.l0")
        obj = obj + LinExpr([fv.changed for fv in fvars], np.full(len(fvars), cost.l0))
    c = np.zeros(milp.n_vars)
    e = (obj * (1.0 / cost.divisor)).merged()
    c[e.idx] = e.coef
    return c


def factual_values(schema: Schema, row) -> dict[str, Any]:
    values = schema.row_values(row)
    for f in schema.features:
        if not f.is_numeric:
            f.level_index(values[f.name])
    return values


__all__ = ["CompiledProblem", "compile_problem", "Query", "FeatureVars", "factual_values", "SchemaError", "_key"]
