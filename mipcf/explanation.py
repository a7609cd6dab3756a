"""Results of a recourse query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import status as st


@dataclass
class Explanation:
    """The answer for one person.

    ``status`` is ``optimal`` (proven: ``gap`` within the solver tolerance), ``feasible``
    (time limit; ``cost`` is achieved, ``bound`` is the best proven lower bound),
    ``infeasible`` (certified: no counterfactual exists) or ``error`` (``message`` says why).
    A counterfactual is only ever present after the model's own ``predict`` accepted it.
    """

    status: str
    factual: pd.DataFrame
    desired_class: Any = None
    counterfactual: pd.DataFrame | None = None
    cost: float = float("nan")
    bound: float = float("nan")
    gap: float = float("nan")
    solve_time: float = 0.0
    wall_time: float = 0.0
    solver: str = ""
    message: str = ""
    interventions: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in (st.OPTIMAL, st.FEASIBLE)

    @property
    def changes(self) -> pd.DataFrame:
        """One row per changed frame column: feature, before, after."""
        cols = ["feature", "before", "after"]
        if self.counterfactual is None:
            return pd.DataFrame(columns=cols)
        # per column, not via iloc[0]: a row Series would upcast ints to floats
        rows = [(c, self.factual[c].iloc[0], self.counterfactual[c].iloc[0]) for c in self.factual.columns]
        rows = [r for r in rows if r[1] != r[2]]
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> dict[str, Any]:
        """Flat record (for tables, CSV and JSON)."""
        ch = self.changes
        return {"status": self.status, "cost": self.cost, "bound": self.bound, "gap": self.gap,
                "solve_time": self.solve_time, "wall_time": self.wall_time, "solver": self.solver,
                "n_changes": len(ch), "changes": "; ".join(f"{r.feature}: {r.before} -> {r.after}"
                                                          for r in ch.itertuples()),
                "message": self.message, **self._plausibility_summary()}

    def _plausibility_summary(self) -> dict[str, Any]:
        """With a plausibility constraint: its score (isolation: decision_function; support:
        distance to the k-th nearest desired-class point) next to the cost."""
        pl = self.extra.get("plausibility")
        if not pl:
            return {}
        out = {"plausibility": pl.get("score"), "plausibility_kind": pl.get("kind")}
        if "inlier" in pl:
            out["inlier"] = pl["inlier"]
        if "support" in pl:
            out["support"] = pl["support"]
        return out

    def __repr__(self) -> str:
        head = f"Explanation(status={self.status!r}, cost={self.cost:.6g}, gap={self.gap:.3g}"
        return head + (f", message={self.message!r})" if self.message else ")")
