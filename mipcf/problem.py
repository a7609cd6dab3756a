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
from encoders import MILP, CategoryInput, DiscreteInput, Encoding, LinExpr, NumericInput

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
    c: np.ndarray | None = None  # per-person objective (interval costs), None: the compiled one
    offset: float = 0.0

    def copy(self) -> "Query":
        return Query(self.lb.copy(), self.ub.copy(), self.row_lo.copy(), self.row_hi.copy(), self.values,
                     self.desired, self.c, self.offset)


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
    interval_l1: list = field(default_factory=list)  # (FeatureVars, weight) costed on split binaries
    split_rows: list = field(default_factory=list)   # _SplitRows: l0 / linf cuts on split binaries
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
        if self.encoding.tighten is not None:
            self.encoding.tighten(lb, ub)
        row_lo[self.decision_rows.ravel()] = -INF
        margins = np.full(len(self.encoding.scores) - 1, self.encoding.margin * margin_factor)
        if self.encoding.exact_ties and margin_factor == 1.0:
            margins[desired:] = 0.0  # rows against later classes: a tie already goes our way
        row_lo[self.decision_rows[desired]] = margins - self.decision_const[desired]
        if self.causal is not None:  # robust recourse: a wider margin for the worst case
            self.causal.bound_decision(values, desired, row_lo, self.decision_rows)
        if "probability" in self.extra:  # Recourse(min_probability=p)
            self.extra["probability"].bound(desired, margin_factor, row_lo)
        for sr in self.split_rows:
            sr.bound(float(values[sr.fv.feature.name]), row_lo)
        q = Query(lb, ub, row_lo, row_hi, dict(values), desired)
        if self.interval_l1:
            q.c, q.offset = self.c.copy(), 0.0
            for fv, weight in self.interval_l1:
                q.offset += _interval_cost(q.c, self.encoding.levels[fv.var], float(values[fv.feature.name]), weight)
        if self.extra.get("tables"):  # table costs: per-person objective and linf rows
            if q.c is None:
                q.c, q.offset = self.c.copy(), 0.0
            for tb in self.extra["tables"]:
                tb.bound(float(values[tb.fv.feature.name]), q)
        for lk in self.extra.get("links", ()):
            lk.bound(values, q, self.milp)
        if "min_changes" in self.extra:
            self.extra["min_changes"].bound(values, q)
        return q

    def fix_point(self, q: Query, point: Mapping[str, Any]) -> None:
        """Fix ``q``'s feature columns at ``point`` (per-feature values), in place: the MILP
        then holds that point or nothing (a value it cannot represent leaves it empty)."""
        for fv in self.fvars:
            f, v = fv.feature, point[fv.feature.name]
            if f.is_numeric:
                q.lb[fv.var] = q.ub[fv.var] = float(v)
            else:
                q.ub[fv.levels] = 0.0
                i = fv.levels[f.level_index(v)]
                q.lb[i] = q.ub[i] = 1.0

    @property
    def free_points(self) -> bool:
        """A plausibility block needs the solver's point itself, not only its split intervals."""
        pl = self.extra.get("plausibility")
        return pl is not None and pl.needs_points

    def decode(self, x: np.ndarray, q: Query) -> dict[str, Any]:
        """Per-feature values of a solver point, snapped onto the sides of splits it chose."""
        lo_snap, hi_snap = {}, {}
        for cut in self.encoding.cuts:
            if x[cut.right] > 0.5:
                lo_snap[cut.var] = max(lo_snap.get(cut.var, -INF), cut.right_min)
            else:
                hi_snap[cut.var] = min(hi_snap.get(cut.var, INF), cut.left_max)
        out = {}
        mc = self.extra.get("min_changes")
        for fv in self.fvars:
            f = fv.feature
            if f.is_numeric:
                v = float(x[fv.var])
                if f.type != "real":
                    v = float(np.round(v))
                lo = max(lo_snap.get(fv.var, -INF), q.lb[fv.var])
                hi = min(hi_snap.get(fv.var, INF), q.ub[fv.var])
                x0 = float(q.values[f.name])
                if fv.var in self.encoding.levels and not self.free_points and self.causal is None \
                        and mc is None:  # min_changes: a move inside the factual's interval must survive
                    v = x0  # the model sees only the interval: its point nearest the factual is best
                elif abs(v - x0) <= 1e-6 * max(1.0, abs(x0)):
                    v = x0  # a solver tolerance must not turn "unchanged" into a tiny change
                elif mc is not None and f.name in mc.steps:
                    v = mc.snap(f.name, v, x0)
                out[f.name] = min(max(v, lo), hi)
                if f.name in self.cost.tables:  # a table feature sits on its grid (or stays)
                    out[f.name] = self.cost.tables[f.name].snap(float(x[fv.var]), x0)
                elif self.schema.links and any(f.name in (lk.source, lk.target) for lk in self.schema.links):
                    v = float(x[fv.var]) if f.type == "real" else float(np.round(x[fv.var]))
                    v = x0 if abs(v - x0) <= 1e-6 * max(1.0, abs(x0)) else v
                    out[f.name] = min(max(v, lo), hi)  # linked values are exact, not interval edges
            else:
                out[f.name] = f.levels[int(np.argmax(x[fv.levels]))]
        return out


def compile_problem(model: object, schema: Schema, cost: CostSpec, encoder_options: dict | None = None,
                    scm: Any = None, changes: bool = False, max_changes: int | None = None,
                    plausibility: Any = None, causal_options: dict | None = None,
                    min_probability: float | None = None, min_changes: int | None = None,
                    min_change_steps: Mapping[str, float] | None = None) -> CompiledProblem:
    """Build the MILP: feature columns, cost structure, then the model's encoding.

    ``changes`` adds a binary change indicator per feature (``FeatureVars.changed``; 0 forces
    the feature to its factual value) even when the cost has no l0 term: diversity cuts and
    ``max_changes`` (one row: at most that many features change) are written on them.

    ``min_changes`` adds a binary ``moved`` per actionable feature that forces a real change
    (a level / unit, or ``min_change_steps[name]`` for a real feature; see
    :func:`resolve_min_change_steps`) and one row: at least that many are 1. Split-only
    columns then keep their l1 cost on the value columns (not on split binaries), so a move
    inside the factual's split interval is priced and decoded as it is.

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
            causal = encode_scm(milp, schema, fvars, inputs, scm, **(causal_options or {}))
        inputs = causal.inputs
    if plausibility is not None:  # e.g. reserve its split levels so the model's thermometers carry them
        plausibility.prepare(milp, inputs)
    encoding = encoders.encode_model(milp, model, inputs, schema.columns, name="model", **(encoder_options or {}))
    if causal is not None:
        causal.attach(encoding)
    with milp.block("decision"):
        decision_rows, decision_const = _decision_rows(milp, encoding)
    extra = {}
    if min_probability is not None:  # the desired class must also get probability >= p
        with milp.block("decision"):
            extra["probability"] = _probability_rows(milp, encoding, float(min_probability))
    if plausibility is not None:  # mipcf.plausibility: data-manifold rows over the same inputs
        with milp.block("plausibility"):
            plausibility.encode(milp, inputs, fvars, encoding)
        extra["plausibility"] = plausibility
    free_points = plausibility is not None and plausibility.needs_points
    interval = [] if causal is not None or free_points or min_changes \
        else _interval_features(fvars, encoding, cost)
    linked = {n for lk in schema.links for n in (lk.source, lk.target)}
    interval = [(fv, w) for fv, w in interval if fv.feature.name not in linked]  # linked: exact values
    with milp.block("cost"):
        c = _cost_block(milp, fvars, cost, skip_l1={id(fv) for fv, _ in interval},
                        indicators=changes or max_changes is not None or bool(schema.links))
        if max_changes is not None:
            milp.add_le(LinExpr([fv.changed for fv in fvars], np.ones(len(fvars))), float(max_changes),
                        name="max_changes")
        split_rows = [] if causal is not None else _split_rows(milp, fvars, encoding, cost)
        if cost.tables:
            extra["tables"] = _table_rows(milp, fvars, cost)
            c = np.r_[c, np.zeros(milp.n_vars - c.size)]  # the grid columns cost per person
        if schema.links:
            extra["links"] = _link_rows(milp, fvars, schema.links)
            c = np.r_[c, np.zeros(milp.n_vars - c.size)]
        if min_changes:
            steps = resolve_min_change_steps(schema, None) if min_change_steps is None else dict(min_change_steps)
            extra["min_changes"] = _min_change_rows(milp, fvars, int(min_changes), steps)
            c = np.r_[c, np.zeros(milp.n_vars - c.size)]
    return CompiledProblem(schema, cost, milp, encoding, fvars, c, decision_rows, decision_const, causal,
                           interval, split_rows, extra=extra)


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
        indicators = [LinExpr.var(int(bl)) for bl in b]
        # text levels: only a pipeline step (OneHotEncoder / OrdinalEncoder) can feed them to a model
        inputs = {f.name: DiscreteInput(values, indicators, name=f.name) if values is not None
                  else CategoryInput(list(f.levels), indicators, name=f.name)}
    return fv, inputs


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


@dataclass
class _ProbabilityRows:
    """One row per class: ``P(class c) >= p`` as ``expr_c >= rhs_c``; a query switches on one.

    Where the expression is a sum of leaf constants (forest averages) a tie with ``p`` is a
    tie in the model and is allowed (up to round-off); elsewhere the row keeps the
    encoding's margin, widened with the decision margin on retries.
    """

    rows: np.ndarray
    lo: np.ndarray   # rhs minus the expressions' constants
    exact: bool
    margin: float

    def bound(self, desired: int, margin_factor: float, row_lo: np.ndarray) -> None:
        slack = -1e-9 if self.exact and margin_factor == 1.0 else self.margin * margin_factor
        row_lo[self.rows] = -INF
        row_lo[self.rows[desired]] = self.lo[desired] + slack


def _probability_rows(milp: MILP, enc: Encoding, p: float) -> _ProbabilityRows:
    if enc.probability_row is None:
        raise encoders.UnsupportedModelError(
            f"min_probability needs class probabilities; this model ({enc.name}) has no predict_proba "
            "that mipcf can encode (supported: trees and forests, binary boosting, binary logistic models)")
    pairs = [enc.probability_row(c, p) for c in range(len(enc.classes))]
    rows = milp.add_exprs([e for e, _ in pairs], -INF, INF, name="probability")
    lo = np.array([rhs - e.const for e, rhs in pairs])
    return _ProbabilityRows(np.asarray(rows), lo, enc.probability_exact, enc.margin)


def _interval_features(fvars: list[FeatureVars], enc: Encoding, cost: CostSpec) -> list:
    """Numeric features whose l1 cost can be written on the model's split binaries.

    A column the model only sees through splits is worth moving only to the edge of another
    split interval, so its l1 cost is a linear function of the thermometer binaries. That
    function depends on the factual, so it lives in the per-person objective.
    """
    if not cost.l1:
        return []
    return [(fv, cost.weights[fv.feature.name] * cost.l1 / cost.divisor) for fv in fvars
            if fv.feature.is_numeric and fv.var in enc.levels and fv.feature.name not in cost.tables]


@dataclass
class _SplitRows:
    """Valid rows tying a feature's l0 indicator / the linf epigraph to its split binaries.

    For each level ``i``: "right of level i" rows ``A - M_i y_i >= r_i`` and "left of level
    i" rows ``A + M'_i y_i >= l_i``; a person switches on the rows of the side their
    factual is not on (the other rows get ``-inf``), with right-hand sides from the factual.
    """

    fv: FeatureVars
    right: np.ndarray        # level bounds (L_i, R_i) ascending
    left: np.ndarray
    rows: dict               # kind -> (right-row ids, left-row ids)
    big: dict                # kind -> (M_i, M'_i) used in those rows
    weight: float

    def bound(self, x0: float, row_lo: np.ndarray) -> None:
        k0 = int(np.searchsorted(self.right, x0, side="right"))
        for kind, (r_rows, l_rows) in self.rows.items():
            m_r, m_l = self.big[kind]
            row_lo[r_rows] = -INF
            row_lo[l_rows] = -INF
            if kind == "l0":  # changed >= y_i (right of x0), changed >= 1 - y_i (left)
                row_lo[r_rows[k0:]] = 0.0
                row_lo[l_rows[:k0]] = 1.0
            else:             # t >= w (R_i - x0) y_i, t >= w (x0 - L_i) (1 - y_i)
                row_lo[r_rows[k0:]] = self.weight * (self.right[k0:] - x0) - m_r[k0:]
                row_lo[l_rows[:k0]] = self.weight * (x0 - self.left[:k0])


def _split_rows(milp: MILP, fvars: list[FeatureVars], enc: Encoding, cost: CostSpec) -> list[_SplitRows]:
    out = []
    t = int(np.nonzero(np.array(milp.col_names) == "linf")[0][0]) if cost.linf else None
    for fv in fvars:
        if not (fv.feature.is_numeric and fv.var in enc.levels) or not (cost.l0 or cost.linf):
            continue
        left, right, ys = enc.levels[fv.var]
        f, w = fv.feature, cost.weights[fv.feature.name]
        rows, big = {}, {}
        n = ys.size
        pairs = [("l0", fv.changed, np.ones(n), np.ones(n))] if cost.l0 else []
        if cost.linf and f.name not in cost.tables:  # a table's linf rows live in its own block
            pairs.append(("linf", t, w * np.maximum(right - f.lower, 0.0), w * np.maximum(f.upper - left, 0.0)))
        for kind, a, m_r, m_l in pairs:
            r_rows = milp.add_rows(np.repeat(np.arange(n), 2), np.c_[np.full(n, a), ys].ravel(),
                                   np.c_[np.ones(n), -m_r].ravel(), -INF, INF, n_rows=n, name=f"{f.name}.{kind}.right")
            l_rows = milp.add_rows(np.repeat(np.arange(n), 2), np.c_[np.full(n, a), ys].ravel(),
                                   np.c_[np.ones(n), m_l].ravel(), -INF, INF, n_rows=n, name=f"{f.name}.{kind}.left")
            rows[kind], big[kind] = (r_rows, l_rows), (m_r, m_l)
        out.append(_SplitRows(fv, right, left, rows, big, w))
    return out


@dataclass
class _TableRows:
    """A table-cost feature: ``stay`` or exactly one grid value ``z_i``, and its cost rows.

    ``x - sum_i g_i z_i`` is 0 unless ``stay`` (big-M on the column bounds); ``stay`` forces
    the factual through the delta row's ``plus + minus``. The l1 cost of ``z_i`` is a
    per-person objective coefficient; linf rows ``t - T z_i >= d_i - T`` get ``d_i`` per person.
    """

    fv: FeatureVars
    table: Any
    stay: int
    z: np.ndarray
    l1: float
    linf_rows: np.ndarray | None

    def bound(self, x0: float, q: "Query") -> None:
        d = self.table.costs(x0)
        q.c[self.z] += self.l1 * d
        if self.linf_rows is not None:
            q.row_lo[self.linf_rows] = d - self.table.max_cost
        g = self.table.grid
        q.ub[self.z[(g < q.lb[self.fv.var]) | (g > q.ub[self.fv.var])]] = 0.0  # actionability, bounds


def _table_rows(milp: MILP, fvars: list[FeatureVars], cost: CostSpec) -> list[_TableRows]:
    t = int(np.nonzero(np.array(milp.col_names) == "linf")[0][0]) if cost.linf else None
    out = []
    for fv in fvars:
        f = fv.feature
        if f.name not in cost.tables:
            continue
        tb = cost.tables[f.name]
        g = np.asarray(tb.grid, dtype=float)
        n = g.size
        stay = milp.add_var(0.0, 1.0, True, name=f"{f.name}.stay")
        z = milp.add_binaries(n, name=f"{f.name}.grid")
        milp.add_eq(LinExpr(np.r_[stay, z], np.ones(n + 1)), 1.0, name=f"{f.name}.grid.one")
        big = max(abs(f.lower), abs(f.upper), float(np.abs(g).max(initial=0.0)), 1.0)
        milp.add_le(LinExpr(np.r_[fv.var, z, stay], np.r_[1.0, -g, -big]), 0.0, name=f"{f.name}.grid.le")
        milp.add_ge(LinExpr(np.r_[fv.var, z, stay], np.r_[1.0, -g, big]), 0.0, name=f"{f.name}.grid.ge")
        span = max(f.upper - f.lower, 1.0)
        milp.add_le(LinExpr([fv.plus, fv.minus, stay], [1.0, 1.0, span]), span, name=f"{f.name}.grid.stay")
        rows = None
        if t is not None:
            T = tb.max_cost
            rows = milp.add_rows(np.repeat(np.arange(n), 2), np.c_[np.full(n, t), z].ravel(),
                                 np.c_[np.ones(n), np.full(n, -T)].ravel(), -INF, INF, n_rows=n,
                                 name=f"{f.name}.grid.linf")
        out.append(_TableRows(fv, tb, stay, z, cost.l1 / cost.divisor, rows))
    return out


@dataclass
class _LinkRows:
    """Rows of one schema link (see :class:`mipcf.schema.Link`).

    ``implies``: ``changed_source <= moved_target`` with ``moved_target = 1`` forcing a real
    change: numeric / ordinal targets get a direction binary (only one of ``plus``, ``minus``
    non-zero) and ``plus + minus >= step * moved``; categorical targets get
    ``moved + b_factual <= 1`` (switched on for the person's level). ``moves_with``: one row
    ``x_t - factor * x_s = x0_t - factor * x0_s``.
    """

    link: Any
    source: FeatureVars
    target: FeatureVars
    rows: np.ndarray

    def bound(self, values: Mapping[str, Any], q: "Query", milp: MILP) -> None:
        t = self.target.feature
        if self.link.kind == "moves_with":
            rhs = float(values[t.name]) - self.link.factor * float(values[self.source.feature.name])
            q.row_lo[self.rows] = q.row_hi[self.rows] = rhs
            if t.actionability == "not_actionable":  # it moves, but only through the link
                q.lb[self.target.var], q.ub[self.target.var] = milp.lb[self.target.var], milp.ub[self.target.var]
        elif t.type == "categorical":
            q.row_hi[self.rows] = INF
            q.row_hi[self.rows[t.level_index(values[t.name])]] = 1.0


def _link_rows(milp: MILP, fvars: list[FeatureVars], links) -> list[_LinkRows]:
    by_name = {fv.feature.name: fv for fv in fvars}
    out = []
    for lk in links:
        s, t = by_name[lk.source], by_name[lk.target]
        name = f"link.{lk.source}.{lk.target}"
        if lk.kind == "moves_with":
            rows = np.array([milp.add_eq(LinExpr([t.var, s.var], [1.0, -lk.factor]), 0.0, name=name)])
            out.append(_LinkRows(lk, s, t, rows))
            continue
        moved = milp.add_var(0.0, 1.0, True, name=f"{name}.moved")
        milp.add_le(LinExpr([s.changed, moved], [1.0, -1.0]), 0.0, name=name)
        f = t.feature
        if f.type == "categorical":
            rows = milp.add_exprs([LinExpr([moved, int(b)], [1.0, 1.0]) for b in t.levels], -INF, INF,
                                  name=f"{name}.level")
        else:
            big = (f.upper - f.lower) if f.is_numeric else len(f.levels) - 1.0
            step = lk.min_change if f.type == "real" else 1.0
            up = milp.add_var(0.0, 1.0, True, name=f"{name}.up")
            rows = np.array([
                milp.add_le(LinExpr([t.plus, up], [1.0, -big]), 0.0, name=f"{name}.plus"),
                milp.add_le(LinExpr([t.minus, up], [1.0, big]), big, name=f"{name}.minus"),
                milp.add_ge(LinExpr([t.plus, t.minus, moved], [1.0, 1.0, -step]), 0.0, name=f"{name}.step")])
        out.append(_LinkRows(lk, s, t, rows))
    return out


#: default smallest change that counts for a real feature under ``min_changes``, as a share of its range
MIN_CHANGE_SHARE = 1e-3


def resolve_min_change_steps(schema: Schema, spec: float | Mapping[str, float] | None) -> dict[str, float]:
    """Per real feature, the smallest move (in the feature's own units) that counts as a change.

    ``None``: ``MIN_CHANGE_SHARE * (upper - lower)``; a number: that step for every real
    feature; a mapping: steps for the named real features (the others keep the default).
    Integer, binary, ordinal and categorical features change by one unit / level.
    """
    steps = {f.name: MIN_CHANGE_SHARE * (f.upper - f.lower) for f in schema.features if f.type == "real"}
    if spec is None:
        given = {}
    elif isinstance(spec, Mapping):
        given = dict(spec)
    else:
        given = {n: spec for n in steps}
    by_name = {f.name: f for f in schema.features}
    for name, step in given.items():
        if name not in by_name:
            raise SchemaError(f"min_change_step: {name!r} is not a feature of the schema")
        f = by_name[name]
        if f.type != "real":
            raise SchemaError(f"min_change_step: feature {name!r} is {f.type}; it changes by one "
                              "unit or level, a step applies to real features only")
        try:
            step = float(step)
        except (TypeError, ValueError):
            raise SchemaError(f"min_change_step for {name!r} is not a number: {step!r}") from None
        # below the solver's tolerances a "change" could be round-off
        floor = 1e-6 * max(1.0, abs(f.lower), abs(f.upper))
        if not np.isfinite(step) or step < floor:
            raise SchemaError(f"min_change_step for {name!r} must be a finite number >= {floor:g}, got {step!r}")
        steps[name] = step
    return steps


@dataclass
class _MinChangeRows:
    """``Recourse(min_changes=m)``: per actionable feature a binary ``moved`` forcing a real change.

    Numeric / ordinal: a direction binary (only one of ``plus``, ``minus`` non-zero) and
    ``plus + minus >= step * moved``; categorical: ``moved + b_factual <= 1`` (switched on
    for the person's level). One row ``sum(moved) >= m``. Immutable and not-actionable
    features get no ``moved``: they never count.
    """

    m: int
    moved: dict                # feature name -> moved column
    level_rows: dict           # categorical feature name -> one row per level
    steps: dict                # real feature name -> smallest move that counts
    features: list

    def bound(self, values: Mapping[str, Any], q: "Query") -> None:
        for f in self.features:
            if f.name in self.level_rows:
                rows = self.level_rows[f.name]
                q.row_hi[rows] = INF
                q.row_hi[rows[f.level_index(values[f.name])]] = 1.0

    def snap(self, name: str, v: float, x0: float) -> float:
        """A real move the solver made short of its step only by a tolerance becomes the step."""
        step = self.steps[name]
        d = abs(v - x0)
        if d < step and d >= step - 1e-6 * max(1.0, abs(x0)):
            return x0 + step if v > x0 else x0 - step
        return v

    def count(self, values: Mapping[str, Any], point: Mapping[str, Any]) -> int:
        """How many features of ``point`` count as changed from ``values``."""
        n = 0
        for f in self.features:
            a, b = values[f.name], point[f.name]
            if f.type == "real":
                n += abs(float(b) - float(a)) >= self.steps[f.name] * (1 - 1e-9)
            elif f.is_numeric:
                n += float(a) != float(b)
            else:
                n += _key(a) != _key(b)
        return int(n)

    def met(self, values: Mapping[str, Any], point: Mapping[str, Any]) -> bool:
        return self.count(values, point) >= self.m


def _min_change_rows(milp: MILP, fvars: list[FeatureVars], m: int, steps: Mapping[str, float]) -> _MinChangeRows:
    moved, level_rows, feats = {}, {}, []
    for fv in fvars:
        f = fv.feature
        if f.actionability in ("immutable", "not_actionable"):
            continue
        feats.append(f)
        name = f"min_changes.{f.name}"
        mv = milp.add_var(0.0, 1.0, True, name=f"{name}.moved")
        moved[f.name] = mv
        if f.type == "categorical":
            level_rows[f.name] = np.asarray(
                milp.add_exprs([LinExpr([mv, int(b)], [1.0, 1.0]) for b in fv.levels], -INF, INF, name=f"{name}.level"))
            continue
        big = (f.upper - f.lower) if f.is_numeric else len(f.levels) - 1.0
        step = steps[f.name] if f.type == "real" else 1.0
        up = milp.add_var(0.0, 1.0, True, name=f"{name}.up")
        milp.add_le(LinExpr([fv.plus, up], [1.0, -big]), 0.0, name=f"{name}.plus")
        milp.add_le(LinExpr([fv.minus, up], [1.0, big]), big, name=f"{name}.minus")
        milp.add_ge(LinExpr([fv.plus, fv.minus, mv], [1.0, 1.0, -step]), 0.0, name=f"{name}.step")
    milp.add_ge(LinExpr(list(moved.values()), np.ones(len(moved))), float(m), name="min_changes")
    return _MinChangeRows(m, moved, level_rows, {n: s for n, s in steps.items() if n in moved}, feats)


def _interval_cost(c: np.ndarray, levels: tuple, x0: float, weight: float) -> float:
    """Add ``weight * |x' - x0|`` over split intervals to ``c``; returns the constant part.

    With ``y_i`` = "right of level i", levels ``(L_i, R_i)`` ascending and ``x0`` right of the
    first ``k0`` levels: moving right costs ``R_k - x0`` = a telescoping sum over ``y_{k0+1..k}``,
    moving left costs ``x0 - L_{k+1}`` = a sum over ``(1 - y_i)`` for ``i <= k0``.
    """
    left, right, ys = levels
    k0 = int(np.searchsorted(right, x0, side="right"))
    up = np.diff(np.r_[x0, right[k0:]])
    down = np.diff(np.r_[left[:k0], x0])
    c[ys[k0:]] += weight * up
    c[ys[:k0]] -= weight * down
    return float(weight * down.sum())


def _cost_block(milp: MILP, fvars: list[FeatureVars], cost: CostSpec, skip_l1: set = frozenset(),
                indicators: bool = False) -> np.ndarray:
    """Objective vector over all columns (adds l0 indicators and the linf epigraph as needed).

    The change indicators are created for an l0 cost or when ``indicators`` is set; only
    an l0 cost puts them in the objective.
    """
    terms: list[LinExpr] = []  # per-feature weighted change d_j
    l1_terms: list[LinExpr] = []
    for fv in fvars:
        f, w = fv.feature, cost.weights[fv.feature.name]
        if f.name in cost.tables:
            continue  # d_j comes from the feature's cost table (_table_rows)
        if f.type == "categorical":
            terms.append(LinExpr.var(fv.dist, w))
        else:
            unit = 1.0 / (len(f.levels) - 1) if f.type == "ordinal" and len(f.levels) > 1 else 1.0
            terms.append(LinExpr([fv.plus, fv.minus], [w * unit, w * unit]))
        if id(fv) not in skip_l1:
            l1_terms.append(terms[-1])
    obj = LinExpr()
    if cost.l1:
        obj = obj + LinExpr.sum(l1_terms) * cost.l1
    if cost.linf:
        t = milp.add_var(0.0, INF, name="linf")
        milp.add_exprs([LinExpr.var(t) - d for d in terms], 0.0, INF, name="linf.epigraph")
        obj = obj + LinExpr.var(t, cost.linf)
    if cost.l0 or indicators:
        for fv in fvars:
            fv.changed = milp.add_var(0.0, 1.0, True, name=f"{fv.feature.name}.l0")
            f = fv.feature
            if f.type == "categorical":
                milp.add_ge(LinExpr([fv.changed, fv.dist], [1.0, -1.0]), 0.0, name=f"{f.name}.l0")
            else:
                big = (f.upper - f.lower) if f.is_numeric else len(f.levels) - 1.0
                milp.add_le(LinExpr([fv.plus, fv.minus, fv.changed], [1.0, 1.0, -max(big, 1.0)]), 0.0,
                            name=f"{f.name}.l0")
    if cost.l0:
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


__all__ = ["CompiledProblem", "compile_problem", "Query", "FeatureVars", "factual_values", "SchemaError", "_key",
           "resolve_min_change_steps"]
