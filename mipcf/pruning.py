"""Cost-bounded pruning for tree models.

Given a verified counterfactual of cost ``C`` (an incumbent), no optimal answer changes a
feature by more than ``C`` allows or lands in a leaf whose box costs more than ``C`` to
reach. Those columns are fixed through per-person bounds, so the compiled model is shared
and the solver's presolve removes most of a forest before branching. The incumbent is the
nearest training point the model gives the desired class, repaired greedily toward the
factual (under a linf cost, also clipped into the smallest box around it the model accepts).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from encoders import DiscreteInput, NumericInput

from .problem import CompiledProblem, FeatureVars, Query
from .schema import Schema

TOL = 1e-7
# points the exhaustive two-change search may try per person (array predictor: seconds at most)
PAIR_POINTS = 4_000_000
# pure linf: nearest pool points clipped into candidate boxes, and the rows of that one predict
SHRINK_TRIES = 20
SHRINK_SPREAD = 48  # radii of the first, even spread of boxes


def feature_matrix(schema: Schema, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per feature: numeric values, or level positions for categorical/ordinal features."""
    out = {}
    for f in schema.features:
        if f.is_numeric:
            out[f.name] = df[f.name].to_numpy(dtype=float)
        elif f.columns is not None:
            out[f.name] = np.argmax(df[f.frame_columns].to_numpy(dtype=float), axis=1).astype(float)
        else:
            pos = {lv: i for i, lv in enumerate(f.levels)}
            out[f.name] = np.array([pos.get(v, f.level_index(v)) for v in df[f.name]], dtype=float)
    return out


@dataclass
class _InputMap:
    """How one model input relates to a feature (for leaf lower bounds)."""

    k: int
    fv: FeatureVars
    kind: str                    # "numeric" | "onehot" | "discrete"
    level: int = -1              # onehot: which level's column
    values: np.ndarray | None = None  # discrete: float32 values per level


class Pruner:
    """Finds an incumbent and fixes what cannot beat it, for one compiled problem."""

    def __init__(self, problem: CompiledProblem, model: Any, schema: Schema, data: pd.DataFrame,
                 min_probability: float | None = None) -> None:
        self.p, self.model, self.schema = problem, model, schema
        data = data[schema.columns]
        self.pool = data
        self.pool_pred = np.asarray(model.predict(data))
        # Recourse(min_probability=p): an incumbent must reach p as well
        self.min_probability = min_probability
        self.pool_proba = None if min_probability is None else np.asarray(model.predict_proba(data))
        self.pool_values = feature_matrix(schema, data)
        self.maps = self._input_maps() if problem.encoding.leaf_boxes is not None else []
        self._fast = self._fast_predictor()

    # ---- incumbent -------------------------------------------------------------------
    def feature_costs(self, values: dict, cand: dict[str, np.ndarray], q: Query) -> np.ndarray:
        """Per-candidate per-feature weighted change (inf where actionability forbids it)."""
        cost = self.p.cost
        cols = []
        for fv in self.p.fvars:
            f, w = fv.feature, cost.weights[fv.feature.name]
            c = cand[f.name]
            if f.is_numeric:
                x0 = float(values[f.name])
                d = w * np.abs(c - x0)
                bad = (c < q.lb[fv.var] - TOL) | (c > q.ub[fv.var] + TOL)
            else:
                i0 = f.level_index(values[f.name])
                pos = c.astype(int)
                d = w * (np.abs(pos - i0) / max(len(f.levels) - 1, 1) if f.type == "ordinal" else (pos != i0))
                bad = q.ub[fv.levels[pos]] < 0.5
            cols.append(np.where(bad, np.inf, d))
        return np.column_stack(cols)

    def total(self, d: np.ndarray) -> np.ndarray:
        c = self.p.cost
        forbidden = np.isinf(d).any(axis=1)
        d = np.where(np.isinf(d), 0.0, d)  # an unused norm's weight 0 times inf would be nan
        t = c.l0 * (d > 0).sum(axis=1) + c.l1 * d.sum(axis=1) + c.linf * d.max(axis=1)
        return np.where(forbidden, np.inf, t / c.divisor)

    def incumbent(self, row: pd.DataFrame, values: dict, desired: Any, q: Query,
                  tries: int = 3) -> tuple[dict, float, float] | None:
        """A verified counterfactual near ``row`` and a proven lower bound on the optimum.

        The point is the best of the nearest pool points (repaired; under a pure linf cost
        also clipped into boxes, :meth:`shrunk_into_boxes`) and the cheapest single change;
        under a pure l0 cost, when no single change works and the point changes more than two
        features, also the first two-change point (enumerated).
        """
        mask = self.pool_pred == desired
        if self.pool_proba is not None:
            mask &= self.pool_proba[:, self._class_col(desired)] >= self.min_probability
        if not mask.any():
            return None
        near = self.nearest(values, q, mask, max(tries, SHRINK_TRIES))  # one pass over the pool for both
        best = self.nearest_repaired(row, values, desired, q, mask, tries, near=near)  # checked with model.predict
        radii = None if best is None else self.linf_radii(q, values, best[1])
        if radii is not None:
            shrunk = self.shrunk_into_boxes(row, values, desired, q, near[0], radii)
            if shrunk is not None and shrunk[1] < best[1]:
                best = shrunk
        single = self.single_changes(row, values, desired, q)
        if single is not None and (best is None or single[1] < best[1]):
            best = (single[0], self.p.cost.evaluate(self.schema, values, single[0]))
            if self._fast is not None and \
                    self.model.predict(self.schema.frame_from_values(best[0], row))[0] != desired:
                return None  # never hand on a point the model itself rejects
        if best is None:
            return None
        # the single-change search is exhaustive: if it found nothing, two changes are needed
        # exhaustive only for tree models; a network can flip on a single numeric change it did not try
        # and only when every split column is searched by its own levels (a column a decreasing
        # transform mirrors onto a negated copy is not)
        enc = self.p.encoding
        exhaustive = enc.leaf_boxes is not None and all(c.var in enc.levels for c in enc.cuts)
        changes = 2 if single is None and exhaustive else 1
        if changes == 2 and self.lower_bound(2) > 0 and best[1] > self.lower_bound(2) * (1 + 1e-9):
            # pure l0 and the incumbent changes three or more features: the MILP's hardest
            # question (is there any two-change point?) is settled here by enumeration
            pair, complete = self.pair_changes(row, values, desired, q, first=True)
            if pair is not None:
                best = pair
            elif complete:
                changes = 3
        return best[0], best[1], self.lower_bound(changes)

    def single_changes(self, row: pd.DataFrame, values: dict, desired: Any, q: Query) -> tuple[dict, float] | None:
        """The cheapest counterfactual that changes exactly one feature, by exhaustive search.

        A tree model is constant between consecutive split levels, so trying the point of
        each interval nearest the factual (and every allowed level) is complete.
        """
        trials = self._trials(values, q)
        if not trials:
            return None
        n = sum(v.size for _, v in trials)
        factual = feature_matrix(self.schema, row)
        cand = {f.name: np.repeat(factual[f.name], n) for f in self.schema.features}
        at = 0
        for j, v in trials:
            cand[self.schema.features[j].name][at:at + v.size] = v
            at += v.size
        ok = self._accepts_values(cand, row, desired)
        if not ok.any():
            return None
        totals = np.where(ok, self.total(self.feature_costs(values, cand, q)), np.inf)
        i = int(np.argmin(totals))
        if not np.isfinite(totals[i]):
            return None
        return self._as_values({k: v[i] for k, v in cand.items()}), float(totals[i])

    def pair_changes(self, row: pd.DataFrame, values: dict, desired: Any, q: Query, first: bool = False,
                     max_points: int | None = None) -> tuple[tuple[dict, float] | None, bool]:
        """The cheapest counterfactual that changes exactly two features, by exhaustive search
        over pairs of the same interval points as :meth:`single_changes`.

        Returns ``(answer or None, complete)``; ``complete`` is False (and nothing is tried)
        when the pairs hold more than ``max_points`` (default :data:`PAIR_POINTS`) points. A complete search that finds
        nothing proves that every counterfactual changes at least three features. ``first``:
        stop at the first pair that holds one (under a pure l0 cost they all cost the same).
        """
        trials = self._trials(values, q)
        pairs = list(itertools.combinations(trials, 2))
        if sum(a.size * b.size for (_, a), (_, b) in pairs) > (PAIR_POINTS if max_points is None else max_points):
            return None, False
        factual = feature_matrix(self.schema, row)
        names = [f.name for f in self.schema.features]
        best = None
        for (i, a), (j, b) in pairs:
            n = a.size * b.size
            cand = {name: np.repeat(factual[name], n) for name in names}
            cand[names[i]], cand[names[j]] = np.repeat(a, b.size), np.tile(b, a.size)
            # the model's own batched predict: on large batches it beats the array predictor
            ok = self._accepts(self._frame(cand, row), desired)
            if not ok.any():
                continue
            totals = np.where(ok, self.total(self.feature_costs(values, cand, q)), np.inf)
            k = int(np.argmin(totals))
            if np.isfinite(totals[k]) and (best is None or totals[k] < best[1]):
                best = self._as_values({name: v[k] for name, v in cand.items()}), float(totals[k])
                if first:
                    break
        return best, True

    def _trials(self, values: dict, q: Query) -> list[tuple[int, np.ndarray]]:
        """Per movable feature: (feature index, its values other than the factual's, one per
        split interval or level, in feature_matrix units)."""
        trials = []
        for j, fv in enumerate(self.p.fvars):
            f = fv.feature
            if f.is_numeric:
                levels = self.p.encoding.levels.get(fv.var)
                if levels is None or q.lb[fv.var] == q.ub[fv.var]:
                    continue
                x0 = float(values[f.name])
                left, right, _ = levels
                v = np.r_[right[right > x0], left[left < x0]]
                v = v[(v >= q.lb[fv.var]) & (v <= q.ub[fv.var])]
            else:
                i0 = f.level_index(values[f.name])
                v = np.array([i for i in range(len(f.levels)) if i != i0 and q.ub[fv.levels[i]] > 0.5], float)
            if v.size:
                trials.append((j, v))
        return trials

    def _class_col(self, desired: Any) -> int:
        return [i for i, c in enumerate(self.model.classes_) if c == desired][0]

    def _fast_predictor(self):
        """The model's own definition predicting on arrays (searches call it thousands of times).

        ``model.predict`` on a one-row DataFrame costs milliseconds of validation; the
        definition predicts exactly like the model (checked here on the whole pool) in
        microseconds. Every answer that leaves this module is still checked with
        ``model.predict``. None when there is no exact array path (pipelines, text levels,
        probability thresholds).
        """
        import encoders

        if self.min_probability is not None or type(self.model).__name__ in ("Pipeline", "ColumnTransformer"):
            return None
        try:
            definition = encoders.read_model(self.model)
            order = encoders.model_input_names(self.model, self.schema.columns)
        except (TypeError, ValueError, AttributeError):
            return None
        sources = []
        for col in order:
            src = None
            for f in self.schema.features:
                if f.is_numeric and f.name == col:
                    src = (f.name, None, None)
                elif f.columns is not None and col in f.columns.values():
                    lv = next(k for k, v in f.columns.items() if v == col)
                    src = (f.name, f.level_index(lv), None)
                elif not f.is_numeric and f.columns is None and f.name == col:
                    try:
                        src = (f.name, None, np.array([float(v) for v in f.levels]))
                    except (TypeError, ValueError):
                        return None
            if src is None:
                return None
            sources.append(src)

        def predict(cand: dict[str, np.ndarray]) -> np.ndarray:
            cols = []
            for name, level, codes in sources:
                v = np.asarray(cand[name], dtype=float)
                cols.append((v == level).astype(float) if level is not None else
                            codes[v.astype(int)] if codes is not None else v)
            return definition.predict(np.column_stack(cols))

        if not np.array_equal(predict(self.pool_values), self.pool_pred):
            return None  # not exact on this data: keep to model.predict
        return predict

    def _accepts_values(self, cand: dict[str, np.ndarray], row: pd.DataFrame, desired: Any) -> np.ndarray:
        """Candidates (feature_matrix units) the model gives ``desired``."""
        if self._fast is not None:
            return np.asarray(self._fast(cand)) == desired
        return self._accepts(self._frame(cand, row), desired)

    def _accepts(self, frame: pd.DataFrame, desired: Any) -> np.ndarray:
        """Rows the model gives ``desired`` (with probability >= min_probability when set)."""
        ok = np.asarray(self.model.predict(frame)) == desired
        if self.min_probability is not None:
            ok &= np.asarray(self.model.predict_proba(frame))[:, self._class_col(desired)] >= self.min_probability
        return ok

    def _frame(self, cand: dict[str, np.ndarray], row: pd.DataFrame) -> pd.DataFrame:
        """Rows like ``row`` holding ``cand`` (feature_matrix units), for one batched predict."""
        n = len(next(iter(cand.values())))
        out = pd.DataFrame(np.repeat(row.to_numpy(), n, axis=0), columns=row.columns).astype(row.dtypes)
        for f in self.schema.features:
            v = cand[f.name]
            if f.is_numeric:
                out[f.name] = v.astype(row[f.name].dtype)
            elif f.columns is not None:
                for i, lv in enumerate(f.levels):
                    out[f.columns[lv]] = (v == i).astype(row[f.columns[lv]].dtype)
            else:
                out[f.name] = pd.Series(np.asarray(f.levels, dtype=object)[v.astype(int)]).astype(row[f.name].dtype).to_numpy()
        return out

    def lower_bound(self, changes: int) -> float:
        """What ``changes`` changed features cost at least (pure l0 cost; else 0)."""
        c = self.p.cost
        return changes * c.l0 / c.divisor if not (c.l1 or c.linf) else 0.0

    def _as_values(self, point: dict) -> dict:
        return {f.name: (point[f.name] if f.is_numeric else f.levels[int(point[f.name])])
                for f in self.schema.features}

    def nearest(self, values: dict, q: Query, mask: np.ndarray, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The ``n`` pool points in ``mask`` nearest the factual (actionable ones only), nearest
        first: their feature_matrix values and their per-feature costs."""
        cand = {k: v[mask] for k, v in self.pool_values.items()}
        d = self.feature_costs(values, cand, q)
        totals = self.total(d)
        idx = [i for i in np.argsort(totals)[:n] if np.isfinite(totals[i])]
        return {k: v[idx] for k, v in cand.items()}, d[idx]

    def nearest_repaired(self, row: pd.DataFrame, values: dict, desired: Any, q: Query, mask: np.ndarray,
                         tries: int = 3, also: Callable[[pd.DataFrame], np.ndarray] | None = None,
                         near: tuple[dict[str, np.ndarray], np.ndarray] | None = None) -> tuple[dict, float] | None:
        """The cheapest of the ``tries`` nearest pool points in ``mask``, each repaired toward
        the factual; ``also`` is an extra test every repaired point must pass (rows of a frame).
        ``near``: :meth:`nearest` of the same person and mask, when the caller has it."""
        cand, d = near if near is not None else self.nearest(values, q, mask, tries)
        best = None
        factual = feature_matrix(self.schema, row)
        for i in range(min(tries, len(d))):
            point = self._repair(row, factual, {k: v[i] for k, v in cand.items()}, d[i], desired, also)
            cost = self.p.cost.evaluate(self.schema, values, point)
            if best is None or cost < best[1]:
                best = (point, cost)
        if best is not None and self._fast is not None and \
                self.model.predict(self.schema.frame_from_values(best[0], row))[0] != desired:
            return None  # the array search never hands on a point the model itself rejects
        return best

    def _repair(self, row, factual, point, d, desired, also=None) -> dict:
        """Reset features to the factual values (``factual``: ``row`` in :func:`feature_matrix`
        units) while the model (and ``also``) agree: each round tries every single reset in one
        batched predict and keeps the most expensive accepted one."""
        current = {k: float(v) for k, v in point.items()}
        d = np.array(d, dtype=float)
        names = [f.name for f in self.schema.features]
        while True:
            order = [j for j in np.argsort(-d) if d[j] > 0]
            if not order:
                break
            cand = {k: np.full(len(order), v) for k, v in current.items()}
            for r, j in enumerate(order):
                cand[names[j]][r] = factual[names[j]][0]
            ok = self._accepts_values(cand, row, desired)
            if also is not None and ok.any():
                ok &= np.asarray(also(self._frame(cand, row)), dtype=bool)
            if not ok.any():
                break
            j = order[int(np.argmax(ok))]
            current[names[j]] = float(factual[names[j]][0])
            d[j] = 0.0
        return self._as_values(current)

    def shrunk_into_boxes(self, row: pd.DataFrame, values: dict, desired: Any, q: Query,
                          cand: dict[str, np.ndarray], radii: np.ndarray) -> tuple[dict, float] | None:
        """Pure linf: the pool points ``cand`` (:meth:`nearest`), each clipped into the box of
        each radius in ``radii`` around the factual; the cheapest clipped point the model accepts.

        Resetting whole features (:meth:`_repair`) rarely lowers a linf cost, which only the
        largest move sets; clipping every move at once does. Every box cut off here is one the
        radius search need not refute. The boxes are tried on an even spread of the radii,
        then on every radius below the first spread box that holds a point (two small batches
        instead of one of pool points x radii).
        """
        if not len(next(iter(cand.values()), ())) or not radii.size:
            return None
        spread = radii[np.unique(np.linspace(0, radii.size - 1, min(SHRINK_SPREAD, radii.size)).round().astype(int))]
        best = self._smallest_box(row, values, desired, q, cand, spread)
        if best is None:
            return None
        below = spread[spread < best[2]]
        finer = radii[(radii > (below[-1] if below.size else -np.inf)) & (radii < best[2])]
        if finer.size:
            best = self._smallest_box(row, values, desired, q, cand, finer) or best
        point = self._as_values(best[0])
        if not self._accepts(self.schema.frame_from_values(point, row), desired)[0]:
            return None  # never hand on a point the model itself rejects
        return point, self.p.cost.evaluate(self.schema, values, point)

    def _smallest_box(self, row, values, desired, q, cand: dict[str, np.ndarray], radii: np.ndarray
                      ) -> tuple[dict, float, float] | None:
        """``cand`` (feature_matrix units) clipped into each box of ``radii``: the cheapest
        accepted point, its cost and its box's radius, or None."""
        n = len(next(iter(cand.values())))
        allowed = np.repeat(radii, n) * self.p.cost.divisor / self.p.cost.linf  # per-feature weighted move
        rows = {}
        for fv in self.p.fvars:
            f, w = fv.feature, self.p.cost.weights[fv.feature.name]
            c = np.tile(cand[f.name], radii.size)
            x0 = float(values[f.name]) if f.is_numeric else float(f.level_index(values[f.name]))
            if f.is_numeric:
                rows[f.name] = self._clip_numeric(fv, c, x0, allowed / w if w > 0 else np.full(c.size, np.inf))
            elif f.type == "ordinal":
                steps = np.floor(allowed * max(len(f.levels) - 1, 1) / w + 1e-9) if w > 0 else np.inf
                rows[f.name] = np.clip(c, x0 - steps, x0 + steps)
            else:
                rows[f.name] = np.where(allowed >= w * (1 - 1e-12), c, x0)
        totals = self.total(self.feature_costs(values, rows, q))  # inf: a clipped level is not allowed
        ok = np.isfinite(totals)
        ok[ok] = self._accepts_values({k: v[ok] for k, v in rows.items()}, row, desired)
        if not ok.any():
            return None
        k = int(np.argmin(np.where(ok, totals, np.inf)))
        return {name: v[k] for name, v in rows.items()}, float(totals[k]), float(radii[k // n])

    def _clip_numeric(self, fv: FeatureVars, c: np.ndarray, x0: float, reach: np.ndarray) -> np.ndarray:
        """Numeric values clipped to ``x0 +- reach``, then moved to the point of their split
        interval nearest ``x0`` (the model sees the same leaves; the clip stays on an edge
        instead of a rounding error short of it)."""
        levels = self.p.encoding.levels.get(fv.var)
        if levels is None:
            return np.full(c.size, x0)  # the model ignores the column: no move helps
        left, right, _ = levels
        v = np.clip(c, x0 - reach, x0 + reach)
        up, down = np.sort(right[right > x0]), np.sort(left[left < x0])
        slack = 1e-9 * np.maximum(1.0, np.abs(v))
        i = np.searchsorted(up, v + slack, side="right") - 1
        j = np.searchsorted(down, v - slack, side="left")
        v_up = np.where(i >= 0, np.r_[up, x0][i], x0)  # i = -1: still in x0's interval
        v_down = np.where(j < down.size, np.r_[down, x0][j], x0)
        return np.where(v > x0, v_up, np.where(v < x0, v_down, x0))

    # ---- linf radius search ----------------------------------------------------------
    def linf_radii(self, q: Query, values: dict, budget: float) -> np.ndarray | None:
        """Every cost below ``budget`` a pure-linf optimum can have, ascending; None if unknown.

        A split-only column is worth moving only to the edge of a split interval, and a
        level change costs a fixed amount, so the optimum is one of these values. Searching
        them smallest-box-first turns one hard MILP into a few heavily presolved ones.
        """
        cost = self.p.cost
        if cost.l0 or cost.l1 or not cost.linf or self.p.encoding.leaf_boxes is None:
            return None  # (no leaves: a network sees its columns between split edges too)
        cut_vars = {c.var for c in self.p.encoding.cuts}
        out = [np.zeros(1)]
        for fv in self.p.fvars:
            f, w = fv.feature, cost.weights[fv.feature.name]
            if f.is_numeric:
                if q.lb[fv.var] == q.ub[fv.var]:
                    continue
                levels = self.p.encoding.levels.get(fv.var)
                if levels is None:
                    if fv.var in cut_vars:
                        return None  # seen through splits and otherwise: no finite candidate set
                    continue  # the model ignores this column: moving it never helps
                left, right, _ = levels
                x0 = float(values[f.name])
                out += [w * (right[right > x0] - x0), w * (x0 - left[left < x0])]
            else:
                k = len(f.levels) - 1
                out.append(w * np.arange(1, k + 1) / k if f.type == "ordinal" else np.array([w]))
        radii = np.unique(np.concatenate(out)) * cost.linf / cost.divisor
        return radii[radii < budget * (1 - 1e-9)]

    # ---- pruning ---------------------------------------------------------------------
    def prune(self, q: Query, values: dict, budget: float, leaf_bounds: np.ndarray | None = None) -> None:
        """Tighten ``q`` so that only points of cost <= ``budget`` remain.

        ``leaf_bounds``: :meth:`leaf_lower_bounds` of this ``q`` and person, when the caller
        prunes the same query at several budgets (they do not depend on the budget).
        """
        if self.maps and leaf_bounds is None:
            leaf_bounds = self.leaf_lower_bounds(q, values)
        cost = self.p.cost
        slack = budget * (1 + TOL) + 1e-9
        per_unit = (cost.l1 + cost.linf) / cost.divisor
        fixed_cost = cost.l0 / cost.divisor
        for fv in self.p.fvars:
            f, w = fv.feature, cost.weights[fv.feature.name]
            room = (slack - fixed_cost) / (per_unit * w) if per_unit * w > 0 else np.inf
            if f.is_numeric:
                self._prune_numeric(q, fv, float(values[f.name]), room)
            elif room < (1.0 if f.type == "categorical" else 1.0 / max(len(f.levels) - 1, 1)):
                q.lb[fv.levels[f.level_index(values[f.name])]] = 1.0
        if self.maps:
            q.ub[self.p.encoding.leaf_boxes[0][leaf_bounds > slack]] = 0.0
        if self.p.encoding.tighten is not None:  # ReLU: neurons stable over the budget box
            self.p.encoding.tighten(q.lb, q.ub)

    def _prune_numeric(self, q: Query, fv: FeatureVars, x0: float, room: float) -> None:
        if room < 0:
            lo = hi = x0
        else:
            lo, hi = x0 - room, x0 + room
            if fv.feature.type != "real":
                lo, hi = np.ceil(lo - 1e-9), np.floor(hi + 1e-9)
        q.lb[fv.var] = max(q.lb[fv.var], lo)
        q.ub[fv.var] = min(q.ub[fv.var], hi)
        levels = self.p.encoding.levels.get(fv.var)
        if levels is not None:
            left, right, ys = levels
            q.ub[ys[right > q.ub[fv.var]]] = 0.0
            q.lb[ys[left < q.lb[fv.var]]] = 1.0

    def _input_maps(self) -> list[_InputMap]:
        by_var = {}
        for fv in self.p.fvars:
            if fv.var is not None:
                by_var[fv.var] = (fv, "numeric", -1)
            if fv.levels is not None:
                for i, b in enumerate(fv.levels):
                    by_var[int(b)] = (fv, "onehot", i)
        maps = []
        for k, inp in enumerate(self.p.encoding.inputs):
            if isinstance(inp, NumericInput) and inp.var in by_var:
                fv, kind, level = by_var[inp.var]
                maps.append(_InputMap(k, fv, kind, level))
            elif isinstance(inp, DiscreteInput):
                idx = [int(e.idx[0]) for e in inp.indicators if e.idx.size == 1]
                if len(idx) == len(inp.indicators) and idx and idx[0] in by_var:
                    fv = by_var[idx[0]][0]
                    maps.append(_InputMap(k, fv, "discrete", values=np.asarray(inp.values, np.float32).astype(float)))
        return maps

    def leaf_lower_bounds(self, q: Query, values: dict) -> np.ndarray:
        """Lower bound on the cost of reaching each leaf (inf when it cannot be reached)."""
        cost = self.p.cost
        per_feature: dict[int, np.ndarray] = {}
        if self.maps and "_boxes_t" not in self.__dict__:  # one row per input, read whole, not strided
            _, lo, hi = self.p.encoding.leaf_boxes
            self._boxes_t = (np.ascontiguousarray(lo.T), np.ascontiguousarray(hi.T))
        for m in self.maps:
            d = self._input_distance(m, self._boxes_t[0][m.k], self._boxes_t[1][m.k], q, values)
            key = id(m.fv)
            per_feature[key] = np.maximum(per_feature[key], d) if key in per_feature else d
        if not per_feature:
            return np.zeros(self.p.encoding.leaf_boxes[1].shape[0])
        D = np.column_stack(list(per_feature.values()))
        unreachable = np.isinf(D).any(axis=1)
        D = np.where(np.isinf(D), 0.0, D)  # 0 * inf would be nan, and nan > budget is False
        t = cost.l0 * (D > 0).sum(axis=1) + cost.l1 * D.sum(axis=1) + cost.linf * D.max(axis=1)
        return np.where(unreachable, np.inf, t / cost.divisor)

    def _input_distance(self, m: _InputMap, lo, hi, q: Query, values: dict) -> np.ndarray:
        f = m.fv.feature
        w = self.p.cost.weights[f.name]
        if m.kind == "numeric":
            x0 = float(values[f.name])
            lo2, hi2 = np.maximum(lo, q.lb[m.fv.var]), np.minimum(hi, q.ub[m.fv.var])
            d = w * (np.maximum(lo2 - x0, 0) + np.maximum(x0 - hi2, 0))
            return np.where(lo2 > hi2 + TOL, np.inf, d)
        i0 = f.level_index(values[f.name])
        unit = 1.0 / max(len(f.levels) - 1, 1) if f.type == "ordinal" else 1.0
        if m.kind == "onehot":
            b = m.fv.levels[m.level]
            allow1 = (lo <= 1.0) & (hi >= 1.0) & (q.ub[b] > 0.5)
            allow0 = (lo <= 0.0) & (hi >= 0.0) & (q.lb[b] < 0.5)
            v0 = 1.0 if m.level == i0 else 0.0
            factual_ok = allow1 if v0 == 1.0 else allow0
            return np.where(~(allow0 | allow1), np.inf, np.where(factual_ok, 0.0, w * unit))
        vals = m.values[None, :]
        allowed = (vals >= lo[:, None]) & (vals <= hi[:, None]) & (q.ub[m.fv.levels] > 0.5)[None, :]
        pos = np.arange(len(f.levels))
        step = np.abs(pos - i0) * unit if f.type == "ordinal" else (pos != i0).astype(float)
        return np.where(allowed, w * step[None, :], np.inf).min(axis=1)
