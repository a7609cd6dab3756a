"""Cost specifications: norms (l0 / l1 / linf and non-negative mixes) and per-feature scales.

Per-feature change ``d_j``: numeric ``w_j |x'_j - x_j|`` with ``w_j`` = 1/range (default),
1/MAD, 1 (``"none"``) or a user weight; categorical: 1 if the level changes; ordinal: moving
k of K levels costs k/(K-1). User weights multiply every kind. The cost is
``a * l0 + b * l1 + c * linf`` over the ``d_j``; ``normalize="mace"`` divides each norm by
the number of features, as MACE reports distances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .schema import Feature, Schema, _key

NORMS = ("l0", "l1", "linf")


@dataclass(frozen=True)
class CostSpec:
    """Weights of the three norms and the per-feature multipliers."""

    l0: float
    l1: float
    linf: float
    weights: dict[str, float]
    divisor: float = 1.0  # MACE: number of features

    def evaluate(self, schema: Schema, before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
        """Cost of moving ``before`` to ``after`` (per-feature values, levels for categoricals)."""
        d = np.array([change(f, before[f.name], after[f.name]) * self.weights[f.name] for f in schema.features])
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
        if cost not in NORMS:
            raise ValueError(f"cost {cost!r} is not one of {NORMS} or a dict of their weights")
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
    if scale not in ("range", "mad", "none"):
        raise ValueError(f"scale {scale!r} is not 'range', 'mad', 'none' or a dict of weights")
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


def make_cost(schema: Schema, cost: str | Mapping[str, float] = "l1", scale: str | Mapping[str, float] = "range",
              data: pd.DataFrame | None = None, normalize: str | None = None) -> CostSpec:
    l0, l1, linf = parse_norms(cost)
    if normalize not in (None, "mace"):
        raise ValueError(f"normalize {normalize!r} is not None or 'mace'")
    divisor = float(len(schema)) if normalize == "mace" else 1.0
    return CostSpec(l0, l1, linf, feature_weights(schema, scale, data), divisor)
