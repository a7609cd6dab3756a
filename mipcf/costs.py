"""Cost specifications: norms (l0 / l1 / linf and non-negative mixes) and per-feature scales.

Per-feature change ``d_j``: numeric ``w_j |x'_j - x_j|`` with ``w_j`` = 1/range (default),
1/MAD, 1 (``"none"``) or a user weight; categorical: 1 if the level changes; ordinal: moving
k of K levels costs k/(K-1). User weights multiply every kind. The cost is
``a * l0 + b * l1 + c * linf`` over the ``d_j``; ``normalize="mace"`` divides each norm by
the number of features, as MACE reports distances.

Table costs replace ``d_j`` for some features by a per-feature table over a finite grid of
reachable values (:class:`TableCost`): the *percentile shift* of actionable-recourse
(``cost="percentile"`` = total shift, ``"percentile_max"`` = maximum shift, or
``scale="percentile"`` with any norms; all need ``data=X_train``):
``d_j = |Q_j(x'_j) - Q_j(x_j)|`` with ``Q_j`` the empirical CDF of the training column; and
user tables ``cost_tables={feature: {value: cost}}`` (the cost of moving the feature to that
value; staying costs 0). A table feature can only move onto its grid (or stay), which makes
the cost exact: one binary per grid value. Percentile grids: every integer of the bounds for
integer/binary features with at most ``MAX_GRID`` values, else the distinct training values
(at most ``MAX_GRID`` of them: evenly spaced training quantiles beyond that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .schema import Feature, Schema, _key

NORMS = ("l0", "l1", "linf")
PERCENTILE = {"percentile": "l1", "percentile_max": "linf"}
MAX_GRID = 200


@dataclass(frozen=True)
class TableCost:
    """Exact per-feature cost over a finite grid of values a feature may move to.

    ``kind="percentile"``: ``d = |Q(x') - Q(x)|`` with ``Q`` the empirical CDF of ``train``
    (defined for any value, so also for a factual off the grid); ``kind="table"``: ``d`` is
    ``values[i]`` for moving to ``grid[i]``. Staying at the factual always costs 0.
    """

    feature: str
    grid: np.ndarray
    kind: str
    values: np.ndarray            # percentile: Q(grid); table: cost of reaching grid[i]
    train: np.ndarray | None = None  # sorted training column (percentile)

    def position(self, x: float | np.ndarray) -> np.ndarray:
        return np.searchsorted(self.train, x, side="right") / self.train.size

    def costs(self, x0: float) -> np.ndarray:
        """Cost of moving from ``x0`` to each grid value (0 at ``x0`` itself)."""
        if self.kind == "percentile":
            d = np.abs(self.values - self.position(x0))
        else:
            d = self.values.astype(float).copy()
        d[self.grid == x0] = 0.0
        return d

    @property
    def max_cost(self) -> float:
        return 1.0 if self.kind == "percentile" else float(self.values.max(initial=0.0))

    def cost(self, x0: float, x1: float) -> float:
        if float(x0) == float(x1):
            return 0.0
        if self.kind == "percentile":
            return float(abs(self.position(float(x1)) - self.position(float(x0))))
        hit = np.nonzero(self.grid == float(x1))[0]
        if not hit.size:
            raise ValueError(f"feature {self.feature!r}: value {x1!r} is not in its cost table")
        return float(self.values[hit[0]])

    def snap(self, v: float, x0: float) -> float:
        """The grid value (or the factual) a solver value stands for."""
        if abs(v - x0) <= 1e-6 * max(1.0, abs(x0)):
            return float(x0)
        return float(self.grid[int(np.argmin(np.abs(self.grid - v)))])


@dataclass(frozen=True)
class CostSpec:
    """Weights of the three norms and the per-feature multipliers."""

    l0: float
    l1: float
    linf: float
    weights: dict[str, float]
    divisor: float = 1.0  # MACE: number of features
    tables: dict = field(default_factory=dict)  # feature -> TableCost (its d_j comes from the table)

    def evaluate(self, schema: Schema, before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
        """Cost of moving ``before`` to ``after`` (per-feature values, levels for categoricals)."""
        d = np.array([self.tables[f.name].cost(before[f.name], after[f.name]) if f.name in self.tables
                      else change(f, before[f.name], after[f.name]) * self.weights[f.name] for f in schema.features])
        changed = np.array([not same(f, before[f.name], after[f.name]) for f in schema.features])
        total = self.l0 * changed.sum() + self.l1 * d.sum() + self.linf * (d.max() if d.size else 0.0)
        return float(total / self.divisor)


def same(f: Feature, a: Any, b: Any) -> bool:
    if f.is_numeric:
        return float(a) == float(b)
    return _key(a) == _key(b)


def change(f: Feature, a: Any, b: Any) -> float:
    """Unweighted change of one feature: |delta| numeric, 0/1 categorical, k/(K-1) ordinal."""
    if f.is_numeric:
        return abs(float(b) - float(a))
    if f.type == "categorical":
        return 0.0 if _key(a) == _key(b) else 1.0
    k = len(f.levels)
    return abs(f.level_index(b) - f.level_index(a)) / max(k - 1, 1)


def parse_norms(cost: str | Mapping[str, float]) -> tuple[float, float, float]:
    if isinstance(cost, str):
        cost = PERCENTILE.get(cost, cost)
        if cost not in NORMS:
            raise ValueError(f"cost {cost!r} is not one of {NORMS + tuple(PERCENTILE)} or a dict of their weights")
        return tuple(1.0 if n == cost else 0.0 for n in NORMS)  # type: ignore[return-value]
    unknown = set(cost) - set(NORMS)
    if unknown:
        raise ValueError(f"cost has unknown norms {sorted(unknown)}; use {NORMS}")
    w = tuple(float(cost.get(n, 0.0)) for n in NORMS)
    if any(v < 0 or not np.isfinite(v) for v in w) or sum(w) == 0:
        raise ValueError(f"cost weights must be finite, non-negative and not all zero: {dict(cost)}")
    return w  # type: ignore[return-value]


def feature_weights(schema: Schema, scale: str | Mapping[str, float], data: pd.DataFrame | None) -> dict[str, float]:
    """Multiplier ``w_j`` per feature for the chosen scale."""
    if isinstance(scale, Mapping):
        unknown = sorted(set(scale) - set(schema.names))
        if unknown:
            raise ValueError(f"scale names unknown features {unknown}")
        bad = {k: v for k, v in scale.items() if not (np.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"scale weights must be finite and non-negative: {bad}")
        return {f.name: float(scale.get(f.name, 1.0)) for f in schema.features}
    if scale == "percentile":
        scale = "none"  # the numeric features' d_j come from their percentile tables
    if scale not in ("range", "mad", "none"):
        raise ValueError(f"scale {scale!r} is not 'range', 'mad', 'none', 'percentile' or a dict of weights")
    if scale == "mad" and data is None:
        raise ValueError("scale='mad' needs training data: pass data=X_train to Recourse")
    out = {}
    for f in schema.features:
        if not f.is_numeric or scale == "none":
            out[f.name] = 1.0
        elif scale == "range":
            span = f.upper - f.lower
            out[f.name] = 1.0 / span if span > 0 else 1.0
        else:
            v = data[f.name].to_numpy(dtype=float)
            mad = float(np.median(np.abs(v - np.median(v))))
            out[f.name] = 1.0 / mad if mad > 0 else 1.0  # DiCE's fallback for constant-ish columns
    return out


def percentile_tables(schema: Schema, data: pd.DataFrame | None, max_grid: int = MAX_GRID) -> dict[str, TableCost]:
    """Percentile-shift tables for every movable numeric feature (see the module doc)."""
    if data is None:
        raise ValueError("percentile costs need training data: pass data=X_train to Recourse")
    out = {}
    for f in schema.features:
        if not f.is_numeric or f.actionability in ("immutable", "not_actionable"):
            continue
        if f.name not in data.columns:
            raise ValueError(f"percentile costs: training data has no column {f.name!r}")
        train = np.sort(data[f.name].to_numpy(dtype=float))
        if f.type != "real" and f.upper - f.lower + 1 <= max_grid:
            grid = np.arange(f.lower, f.upper + 1.0)
        else:
            grid = np.unique(train[(train >= f.lower) & (train <= f.upper)])
            if grid.size > max_grid:
                grid = np.unique(np.quantile(train, np.linspace(0, 1, max_grid), method="inverted_cdf"))
        out[f.name] = TableCost(f.name, grid, "percentile", np.searchsorted(train, grid, side="right") / train.size,
                                train)
    return out


def user_tables(schema: Schema, cost_tables: Mapping[str, Mapping[Any, float]]) -> dict[str, TableCost]:
    """Validate ``{feature: {value: cost}}`` (numeric features; values inside the bounds)."""
    out = {}
    for name, table in cost_tables.items():
        if name not in schema.names:
            raise ValueError(f"cost_tables names unknown feature {name!r}")
        f = schema[name]
        if not f.is_numeric:
            raise ValueError(f"cost_tables[{name!r}]: only numeric features take cost tables "
                             f"(use scale weights for {f.type} features)")
        if not isinstance(table, Mapping) or not table:
            raise ValueError(f"cost_tables[{name!r}] must be a non-empty {{value: cost}} dict")
        grid = np.array(sorted(float(v) for v in table))
        vals = np.array([float(table[next(k for k in table if float(k) == g)]) for g in grid])
        if grid.size != len(table):
            raise ValueError(f"cost_tables[{name!r}]: values repeat")
        bad = grid[(grid < f.lower) | (grid > f.upper) | ((f.type != "real") & (np.mod(grid, 1) != 0))]
        if bad.size:
            raise ValueError(f"cost_tables[{name!r}]: values {bad.tolist()} are outside the feature's "
                             f"bounds [{f.lower:g}, {f.upper:g}] or not {f.type}")
        if not np.all(np.isfinite(vals) & (vals >= 0)):
            raise ValueError(f"cost_tables[{name!r}]: costs must be finite and non-negative")
        out[name] = TableCost(name, grid, "table", vals)
    return out


def make_cost(schema: Schema, cost: str | Mapping[str, float] = "l1", scale: str | Mapping[str, float] = "range",
              data: pd.DataFrame | None = None, normalize: str | None = None,
              cost_tables: Mapping[str, Mapping[Any, float]] | None = None) -> CostSpec:
    l0, l1, linf = parse_norms(cost)
    if normalize not in (None, "mace"):
        raise ValueError(f"normalize {normalize!r} is not None or 'mace'")
    divisor = float(len(schema)) if normalize == "mace" else 1.0
    percentile = (isinstance(cost, str) and cost in PERCENTILE) or (isinstance(scale, str) and scale == "percentile")
    if percentile and not (isinstance(scale, str) and scale in ("range", "percentile")):
        raise ValueError(f"cost={cost!r} takes its numeric scales from the percentile tables; "
                         f"scale={scale!r} would be ignored")
    weights = feature_weights(schema, "percentile" if percentile else scale, data)
    tables = percentile_tables(schema, data) if percentile else {}
    tables.update(user_tables(schema, cost_tables or {}))
    for name in tables:
        weights[name] = 1.0  # the table is d_j itself
    return CostSpec(l0, l1, linf, weights, divisor, tables)
