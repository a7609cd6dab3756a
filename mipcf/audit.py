"""Population audits: who gets recourse, at what cost, and how that differs between groups.

For every individual the model denies (predicts anything but the favourable class), the
exact recourse query is solved; the audit then reports, overall and per group:

- ``n`` people, ``n_denied`` and ``denied_share``;
- ``n_recourse`` (a verified counterfactual was found: status optimal or feasible) and
  ``recourse_share`` = n_recourse / n_denied;
- ``n_certified_none`` (the solver *proved* no counterfactual exists) and ``n_unresolved``
  (error or time limit without an answer: neither recourse nor a certificate);
- ``cost_mean``, ``cost_median``, ``cost_p90`` over the people with recourse (``p90`` by
  numpy's linear interpolation), and ``n_optimal`` of them proven optimal.

``cost_gap`` is the largest minus the smallest per-group mean cost (recourse fairness in
the sense of Ustun et al. / Gupta et al.: how much more a denied member of one group must
change than a denied member of another); ``recourse_share_gap`` the same for shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import status as st
from .schema import dump_json

COLUMNS = ["n", "n_denied", "denied_share", "n_recourse", "recourse_share", "n_certified_none",
           "n_unresolved", "n_optimal", "cost_mean", "cost_median", "cost_p90"]
ALL = "(all)"


@dataclass
class AuditResult:
    """The audit table (one row per group plus ``"(all)"``), the gaps and per-person results."""

    table: pd.DataFrame
    group_by: str | None
    favorable: Any
    cost_gap: float
    recourse_share_gap: float
    results: pd.DataFrame = field(repr=False)
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-JSON form: the table as records, the gaps and the options."""
        from .schema import _plain

        def clean(v):
            v = _plain(v)
            return None if isinstance(v, float) and not np.isfinite(v) else v

        groups = [{"group": clean(g), **{k: clean(v) for k, v in r.items()}}
                  for g, r in self.table.to_dict(orient="index").items()]
        return {"format": "mipcf.audit/1", "group_by": self.group_by, "favorable_class": clean(self.favorable),
                "cost_gap": clean(self.cost_gap), "recourse_share_gap": clean(self.recourse_share_gap),
                "groups": groups, "options": self.options}

    def to_json(self, path: str | Path | None = None) -> str:
        return dump_json(self.to_dict(), path)

    def __repr__(self) -> str:
        return (f"AuditResult(group_by={self.group_by!r}, groups={len(self.table) - 1}, "
                f"cost_gap={self.cost_gap:.4g}, recourse_share_gap={self.recourse_share_gap:.4g})")


def group_labels(schema, X: pd.DataFrame, group_by) -> pd.Series | None:
    """Group of each row: a frame column, a schema feature (one-hot groups give the level), or labels."""
    if group_by is None:
        return None
    if isinstance(group_by, str):
        if group_by in X.columns:
            return X[group_by]
        if group_by in schema.names:
            f = schema[group_by]
            if f.columns is None:
                return X[f.name]
            hot = X[f.frame_columns].to_numpy(dtype=float).argmax(axis=1)  # validated: exactly one 1
            return pd.Series(np.asarray(f.levels, dtype=object)[hot], index=X.index)
        raise ValueError(f"group_by {group_by!r} is neither a column of X nor a schema feature")
    if len(group_by) != len(X):
        raise ValueError(f"group_by has {len(group_by)} labels for {len(X)} rows")
    if isinstance(group_by, pd.Series):
        return group_by.reindex(X.index)
    return pd.Series(np.asarray(group_by), index=X.index)


def _stats(denied_mask: np.ndarray, status: np.ndarray, cost: np.ndarray) -> dict:
    n = int(denied_mask.size)
    nd = int(denied_mask.sum())
    s, c = status[denied_mask], cost[denied_mask]
    has = np.isin(s, (st.OPTIMAL, st.FEASIBLE))
    costs = c[has].astype(float)
    nr = int(has.sum())
    return {"n": n, "n_denied": nd, "denied_share": nd / n if n else np.nan,
            "n_recourse": nr, "recourse_share": nr / nd if nd else np.nan,
            "n_certified_none": int((s == st.INFEASIBLE).sum()),
            "n_unresolved": int(nd - nr - (s == st.INFEASIBLE).sum()),
            "n_optimal": int((s == st.OPTIMAL).sum()),
            "cost_mean": float(costs.mean()) if nr else np.nan,
            "cost_median": float(np.median(costs)) if nr else np.nan,
            "cost_p90": float(np.percentile(costs, 90)) if nr else np.nan}


def audit(rec, X: pd.DataFrame, group_by=None, favorable_class: Any = None, n_jobs: int = 1) -> AuditResult:
    """Audit recourse over the population ``X`` (see the module doc for every figure).

    ``favorable_class`` defaults to the second of a binary model's classes (``classes_[1]``);
    everyone predicted otherwise is denied and gets a recourse query toward it. ``group_by``
    is a column of ``X``, a schema feature or one label per row.
    """
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        raise ValueError("audit needs a non-empty DataFrame of individuals")
    classes = list(rec.model.classes_)
    if favorable_class is None:
        if len(classes) != 2:
            raise ValueError("favorable_class is required for models with more than two classes")
        favorable = classes[1]
    else:
        favorable = rec._desired(classes[0], favorable_class)
    labels = group_labels(rec.schema, X, group_by)
    rec.schema.validate_frame(X)
    pred = np.asarray(rec.model.predict(X))
    denied = pred != favorable
    status = np.full(len(X), "", dtype=object)
    cost = np.full(len(X), np.nan)
    if denied.any():
        res = rec.explain_many(X[denied], desired_class=favorable, n_jobs=n_jobs)
        status[denied] = res["status"].to_numpy()
        cost[denied] = res["cost"].to_numpy(dtype=float)
        results = res
    else:
        results = pd.DataFrame(columns=["status", "cost"])
    rows = {}
    if labels is not None:
        lab = labels.to_numpy()
        for g in sorted(pd.unique(lab), key=str):
            m = lab == g
            rows[g] = _stats(denied[m], status[m], cost[m])
    rows[ALL] = _stats(denied, status, cost)
    table = pd.DataFrame.from_dict(rows, orient="index")[COLUMNS]
    table.index.name = group_by if isinstance(group_by, str) else "group"
    groups = table.drop(index=ALL)
    means, shares = groups["cost_mean"].dropna(), groups["recourse_share"].dropna()
    cost_gap = float(means.max() - means.min()) if len(means) >= 2 else np.nan
    share_gap = float(shares.max() - shares.min()) if len(shares) >= 2 else np.nan
    options = {"cost": rec.cost if isinstance(rec.cost, str) else dict(rec.cost),
               "scale": rec.scale if isinstance(rec.scale, str) else dict(rec.scale),
               "solver": rec.solver, "time_limit": rec.time_limit, "max_changes": rec.max_changes,
               "rows": int(len(X))}
    return AuditResult(table, group_by if isinstance(group_by, str) else None, favorable, cost_gap, share_gap,
                       results, options)
