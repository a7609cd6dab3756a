"""Linear classifiers: reader (sklearn -> :class:`LinearDef`) and formulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .inputs import Encoding, ModelInput
from .milp import MILP, LinExpr


@dataclass
class LinearDef:
    """``scores = W z + b``; binary models have one row and decide ``score > 0``."""

    W: np.ndarray  # (n_scores, n_inputs)
    b: np.ndarray  # (n_scores,)
    classes: np.ndarray

    def predict(self, Z: np.ndarray) -> np.ndarray:
        s = np.asarray(Z, dtype=float) @ self.W.T + self.b
        if self.W.shape[0] == 1:
            return self.classes[(s[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(s, axis=1)]


def read_linear(model: object) -> LinearDef:
    """Read any fitted sklearn ``LinearClassifierMixin`` (LogisticRegression, LinearSVC, ...)."""
    W = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    b = np.atleast_1d(np.asarray(model.intercept_, dtype=float)) * np.ones(W.shape[0])
    return LinearDef(W, b, np.asarray(model.classes_))


def encode_linear(milp: MILP, definition: LinearDef, inputs: Sequence[ModelInput],
                  name: str = "linear") -> Encoding:
    """Class scores as linear expressions of the inputs (no new columns or rows)."""
    exprs = [inp.expr for inp in inputs]
    rows = []
    for w, b in zip(definition.W, definition.b):
        rows.append(LinExpr.sum([e * float(wk) for e, wk in zip(exprs, w) if wk != 0.0]) + float(b))
    if len(rows) == 1:  # binary: class 1 iff score > 0, i.e. argmax over (0, score), ties to 0
        scores = [LinExpr(), rows[0]]
    else:
        scores = rows
    magnitude = max(abs(lo) + abs(hi) for lo, hi in (s.bounds(milp.lb, milp.ub) for s in scores))
    margin = 1e-6 + 1e-9 * magnitude
    return Encoding(scores, definition.classes, margin, name=name)
