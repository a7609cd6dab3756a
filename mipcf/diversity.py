"""Several diverse explanations for one person, by re-solving with cuts.

The k-th explanation is the cheapest counterfactual that differs from the first k-1 in the
chosen sense; each item is solved (and verified with ``model.predict``) on its own and keeps
its own status, cost, bound and gap. Three kinds of difference:

``"support"`` (actionable-recourse's flipsets)
    the new explanation must *not change a superset* of the features an earlier one changed:
    at least one feature of every earlier support stays at its factual value. This excludes
    the same set and, deliberately, its supersets: "the earlier change plus a tiny move of
    something else" would otherwise fill the list with near-copies. Written as one row
    ``sum_{j in S} changed_j <= |S| - 1`` per earlier support ``S`` on the change
    indicators (``changed_j = 0`` forces feature j to its factual value, so the cut is exact).
``"disjoint"``
    no feature changed by an earlier explanation may change: those indicators are fixed to 0.
``"distance"``
    at least ``min_distance`` from every earlier explanation, in the l1 sum of the cost's
    per-feature distances: ``sum_j w_j |x'_j - e_j| / divisor`` (categorical: 0/1, ordinal:
    levels/(K-1), ``w`` and ``divisor`` as in the cost; ``w = 1`` for table-cost features).
    The distance is measured on the points that are *returned*: a tree model's split-only
    column is returned at the point of its split interval nearest the factual (the cheapest
    point of the region), so on tree models the cut is exact over those points. For such
    columns and for discrete features the distance is linear in existing binaries; other
    numeric columns get a direction binary and two continuous columns per earlier item
    (exact: only one side can be non-zero).

The items come in solve order, which is cost order whenever every item is optimal (each
problem contains all later ones). ``Explanations.stop_reason`` says why fewer than ``k``
came back.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import status as st
from .costs import change, same
from .explanation import Explanation

DIVERSITY = ("support", "disjoint", "distance")
INF = float("inf")
NO_MORE = "certified: no further explanation"
_TOL = 1e-9
_MAX_FREEZE = 8  # hitting sets tried when looking for an incumbent that meets support cuts


@dataclass
class Explanations(Sequence[Explanation]):
    """Up to ``k`` explanations for one person, each an :class:`Explanation`.

    ``stop_reason`` is ``""`` when ``k`` were found, ``"certified: no further explanation"``
    when the solver proved no further one exists, or names the time limit / error that
    stopped the search.
    """

    items: list[Explanation]
    k: int
    diversity: str
    min_distance: float | None = None
    stop_reason: str = ""
    wall_time: float = 0.0
    supports: list[frozenset] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):  # type: ignore[override]
        return self.items[i]

    def __iter__(self) -> Iterator[Explanation]:
        return iter(self.items)

    @property
    def costs(self) -> list[float]:
        return [ex.cost for ex in self.items]

    def to_frame(self) -> pd.DataFrame:
        """One row per explanation: rank, status, cost, bound, gap, changed features, changes."""
        rows = []
        for i, ex in enumerate(self.items):
            s = ex.summary()
            rows.append({"rank": i + 1, "status": s["status"], "cost": s["cost"], "bound": s["bound"],
                         "gap": s["gap"], "features": ", ".join(sorted(self.supports[i])) if i < len(self.supports) else "",
                         "n_changes": s["n_changes"], "changes": s["changes"], "solve_time": s["solve_time"]})
        return pd.DataFrame(rows, columns=["rank", "status", "cost", "bound", "gap", "features", "n_changes",
                                           "changes", "solve_time"]).set_index("rank")

    def __repr__(self) -> str:
        head = f"Explanations({len(self.items)} of k={self.k}, diversity={self.diversity!r}"
        return head + (f", stop_reason={self.stop_reason!r})" if self.stop_reason else ")")


def support(schema, before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset:
    """Names of the features whose value differs between two per-feature value dicts."""
    return frozenset(f.name for f in schema.features if not same(f, before[f.name], after[f.name]))


def distance(schema, cost, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """The diversity distance: ``sum_j w_j change_j(a_j, b_j) / divisor`` (see module doc)."""
    return float(sum(cost.weights[f.name] * change(f, a[f.name], b[f.name]) for f in schema.features)
                 / cost.divisor)


def explain_diverse(rec, x, desired_class: Any = None, k: int = 5, diversity: str = "support",
                    min_distance: float | None = None) -> Explanations:
    """``k`` diverse explanations for one person (see :meth:`mipcf.Recourse.explain`)."""
    from .problem import factual_values
    from .recourse import _as_row

    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if diversity not in DIVERSITY:
        raise ValueError(f"diversity {diversity!r} is not one of {DIVERSITY}")
    if diversity == "distance":
        if min_distance is None or not np.isfinite(min_distance) or min_distance <= 0:
            raise ValueError(f"diversity='distance' needs a positive finite min_distance, got {min_distance!r}")
    elif min_distance is not None:
        raise ValueError(f"min_distance only applies to diversity='distance' (got diversity={diversity!r})")
    t0 = time.perf_counter()
    row = _as_row(x)
    rec.schema.validate_frame(row)
    current = rec.model.predict(row)[0]
    desired = rec._desired(current, desired_class)
    out = Explanations([], int(k), diversity, min_distance)
    if current == desired:
        ex = rec.explain(row, desired)
        out.items, out.supports = [ex], [frozenset()]
        out.stop_reason = "already predicted as the desired class"
        out.wall_time = time.perf_counter() - t0
        return out
    _ensure_indicators(rec)
    p = rec.problem
    values = factual_values(rec.schema, row.iloc[0])
    actions: list[dict] = []
    for _ in range(int(k)):
        t1 = time.perf_counter()
        ex = Explanation(st.ERROR, row, desired, solver=rec.solver)
        cuts = _Cuts(rec, p, values, actions, diversity, min_distance,
                     previous_cost=out.items[-1].bound if out.items else None)
        try:
            rec._solve_into(ex, row, desired, extra=cuts)
        finally:
            cuts.close()
        ex.wall_time = time.perf_counter() - t1
        if ex.status == st.INFEASIBLE:
            out.stop_reason = NO_MORE
            break
        if not ex.ok:
            out.stop_reason = ex.message or "error"
            break
        action = ex.extra.get("action")
        out.items.append(ex)
        out.supports.append(support(rec.schema, values, action))
        actions.append(dict(action))
    out.wall_time = time.perf_counter() - t0
    return out


def _ensure_indicators(rec) -> None:
    """Cuts are written on change indicators: recompile once if the problem lacks them."""
    rec._changes = True
    p = rec._problem
    if p is not None and any(fv.changed is None for fv in p.fvars):
        rec._problem = rec._solver = rec._pruner = None


def _hold(fv, value: Any, q) -> None:
    """Hold one feature at its factual value in the query's bounds."""
    f = fv.feature
    if f.is_numeric:
        q.lb[fv.var] = q.ub[fv.var] = float(value)
    else:
        i = f.level_index(value)
        q.ub[fv.levels] = 0.0
        q.ub[fv.levels[i]] = q.lb[fv.levels[i]] = 1.0


class _Cuts:
    """The rows (and, for distance cuts, columns) that exclude earlier explanations.

    Rows only: appended to the loaded solver for this solve and removed by :meth:`close`.
    With new columns: a private solver on the augmented arrays (the adapters cannot add
    columns), so the shared one stays untouched.
    """

    def __init__(self, rec, p, values: Mapping[str, Any], earlier: list[dict], diversity: str,
                 min_distance: float | None, previous_cost: float | None = None) -> None:
        self.rec, self.p, self.values = rec, p, values
        self.previous_cost = previous_cost
        self.earlier, self.diversity, self.min_distance = earlier, diversity, min_distance
        self.schema, self.cost = rec.schema, rec.cost_spec
        self.n = p.milp.n_vars
        self.fixed_zero: list[int] = []
        self.col_lb: list[float] = []
        self.col_ub: list[float] = []
        self.col_int: list[bool] = []
        rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []
        supports = [support(self.schema, values, a) for a in earlier]
        by_name = {fv.feature.name: fv for fv in p.fvars}
        if diversity == "support":
            for s in supports:
                idx = np.array([by_name[n].changed for n in sorted(s)], dtype=np.int64)
                rows.append((idx, np.ones(idx.size), -INF, idx.size - 1.0))
        elif diversity == "disjoint":
            self.fixed_zero = [by_name[n].changed for s in supports for n in s]
        else:
            for a in earlier:
                rows.extend(self._distance_rows(a))
        self.rows = rows
        m = len(self.col_lb)
        A = sp.csr_matrix((0, self.n + m))
        if rows:
            r = np.concatenate([np.full(idx.size, i) for i, (idx, _, _, _) in enumerate(rows)])
            c = np.concatenate([idx for idx, _, _, _ in rows])
            v = np.concatenate([coef for _, coef, _, _ in rows])
            A = sp.csr_matrix((v, (r, c)), shape=(len(rows), self.n + m))
        self.lo = np.array([lo for _, _, lo, _ in rows], dtype=float)
        self.hi = np.array([hi for _, _, _, hi in rows], dtype=float)
        self._added = None
        if m == 0:
            self.backend = rec._backend()
            if rows:
                self._added = self.backend.add_rows(A, self.lo, self.hi)
        else:
            from .solvers import make_solver
            base = p.milp.arrays(p.c)
            base.A = sp.vstack([sp.hstack([base.A, sp.csr_matrix((base.A.shape[0], m))]), A]).tocsr()
            base.c = np.r_[base.c, np.zeros(m)]
            base.lb, base.ub = np.r_[base.lb, self.col_lb], np.r_[base.ub, self.col_ub]
            base.integer = np.r_[base.integer, np.array(self.col_int, dtype=bool)]
            base.row_lo, base.row_hi = np.r_[base.row_lo, self.lo], np.r_[base.row_hi, self.hi]
            self.backend = make_solver(rec.solver, base, rec.options)

    # ---- used by Recourse._solve_into -------------------------------------------------
    def extend(self, q, values):
        q = q.copy()
        m = len(self.col_lb)
        if m:
            q.lb, q.ub = np.r_[q.lb, self.col_lb], np.r_[q.ub, self.col_ub]
            if q.c is not None:
                q.c = np.r_[q.c, np.zeros(m)]
        if self.rows:
            lo = np.array([lo for _, _, lo, _ in self.rows], dtype=float)
            hi = np.array([hi for _, _, _, hi in self.rows], dtype=float)
            q.row_lo, q.row_hi = np.r_[q.row_lo, lo], np.r_[q.row_hi, hi]
        if self.fixed_zero:
            q.ub[self.fixed_zero] = 0.0
        return q

    def admits(self, point: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
        s = support(self.schema, values, point)
        for a in self.earlier:
            e = support(self.schema, values, a)
            if self.diversity == "support" and e <= s:
                return False
            if self.diversity == "disjoint" and e & s:
                return False
            if self.diversity == "distance" and \
                    distance(self.schema, self.cost, point, a) < self.min_distance * (1 - _TOL):
                return False
        return True

    def incumbent(self, pruner, row, values: Mapping[str, Any], desired: Any, q):
        """A verified counterfactual that meets the cuts, and a valid lower bound, or None.

        The pruner's search (nearest accepted training points, repaired; every single change)
        is run with the features of a hitting set of the earlier supports held at the factual,
        so its answer leaves one feature of every earlier support unchanged. The bound is the
        previous explanation's cost: the cut problem is a restriction of the earlier one.
        """
        if not self.earlier:
            return pruner.incumbent(row, values, desired, q)
        supports = [sorted(support(self.schema, values, a)) for a in self.earlier]
        if self.diversity == "disjoint":
            frozen_sets = [frozenset(n for s in supports for n in s)]
        else:
            frozen_sets = []
            for combo in itertools.islice(itertools.product(*supports), 64):
                fs = frozenset(combo)
                if fs not in frozen_sets:
                    frozen_sets.append(fs)
                if len(frozen_sets) >= _MAX_FREEZE:
                    break
            if self.diversity == "distance":
                frozen_sets.insert(0, frozenset())
        by_name = {fv.feature.name: fv for fv in self.p.fvars}
        best = None
        for frozen in frozen_sets:
            qq = q.copy()
            for name in frozen:
                _hold(by_name[name], values[name], qq)
            inc = pruner.incumbent(row, values, desired, qq)
            if inc is not None and self.admits(inc[0], values) and (best is None or inc[1] < best[1]):
                best = inc
        if best is None:
            return None
        prev = self.previous_cost if self.previous_cost is not None and np.isfinite(self.previous_cost) else 0.0
        return best[0], best[1], max(prev, pruner.lower_bound(1))

    def close(self) -> None:
        if self._added is not None:
            self.backend.remove_rows(self._added)
            self._added = None

    # ---- distance ---------------------------------------------------------------------
    def _new_col(self, lb: float, ub: float, integer: bool) -> int:
        self.col_lb.append(lb)
        self.col_ub.append(ub)
        self.col_int.append(integer)
        return self.n + len(self.col_lb) - 1

    def _distance_rows(self, a: Mapping[str, Any]) -> list:
        """``sum_j w_j |decoded x'_j - a_j| >= min_distance * divisor`` as rows."""
        p, values = self.p, self.values
        idx: list[np.ndarray] = []
        coef: list[np.ndarray] = []
        const = 0.0
        extra_rows = []
        for fv in p.fvars:
            f, w = fv.feature, self.cost.weights[fv.feature.name]
            if w == 0:
                continue
            if f.actionability in ("immutable", "not_actionable"):
                continue  # fixed at the factual in both: contributes nothing
            if not f.is_numeric:
                i = f.level_index(a[f.name])
                if f.type == "categorical":  # w * (1 - b_i)
                    const += w
                    idx.append(np.array([fv.levels[i]]))
                    coef.append(np.array([-w]))
                else:  # w * sum_l |l - i| / (K-1) b_l
                    kk = len(f.levels)
                    idx.append(np.asarray(fv.levels))
                    coef.append(w * np.abs(np.arange(kk) - i) / max(kk - 1, 1))
                continue
            v, x0 = float(a[f.name]), float(values[f.name])
            levels = p.encoding.levels.get(fv.var)
            if levels is not None and f.name not in self.cost.tables:  # table features decode to the grid
                # decoded value in interval k is x0 clamped to [right_{k-1}, left_k]; the
                # interval indicator is y_{k-1} - y_k, so |decoded - v| is linear in the y's
                left, right, ys = levels
                lo_e = np.r_[-INF, right]
                hi_e = np.r_[left, INF]
                d = np.abs(np.clip(x0, lo_e, hi_e) - v)  # per interval, n+1 of them
                # sum_k d_k (y_{k-1} - y_k), y_{-1} = 1, y_n = 0
                const += w * d[0]
                idx.append(np.asarray(ys))
                coef.append(w * (d[1:] - d[:-1]))
                continue
            span = f.upper - f.lower
            if span <= 0:
                continue
            pc, mc = self._new_col(0.0, span, False), self._new_col(0.0, span, False)
            u = self._new_col(0.0, 1.0, True)
            # x - p + m = v ; p <= span u ; m <= span (1 - u)
            extra_rows.append((np.array([fv.var, pc, mc]), np.array([1.0, -1.0, 1.0]), v, v))
            extra_rows.append((np.array([pc, u]), np.array([1.0, -span]), -INF, 0.0))
            extra_rows.append((np.array([mc, u]), np.array([1.0, span]), -INF, span))
            idx.append(np.array([pc, mc]))
            coef.append(np.array([w, w]))
        need = self.min_distance * self.cost.divisor - const
        if idx:
            I, C = np.concatenate(idx), np.concatenate(coef)
        else:
            I, C = np.zeros(0, dtype=np.int64), np.zeros(0)
        return extra_rows + [(I.astype(np.int64), C, need, INF)]
