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
    proba: str | None = None  # "sigmoid": binary P(class 1) = expit(score); "softmax"; None: none

    def predict(self, Z: np.ndarray) -> np.ndarray:
        s = np.asarray(Z, dtype=float) @ self.W.T + self.b
        if self.W.shape[0] == 1:
            return self.classes[(s[:, 0] > 0).astype(int)]
        return self.classes[np.argmax(s, axis=1)]


def read_linear(model: object) -> LinearDef:
    """Read any fitted sklearn ``LinearClassifierMixin`` (LogisticRegression, LinearSVC, ...)."""
    W = np.atleast_2d(np.asarray(model.coef_, dtype=float))
    b = np.atleast_1d(np.asarray(model.intercept_, dtype=float)) * np.ones(W.shape[0])
    logistic = type(model).__name__ in ("LogisticRegression", "LogisticRegressionCV") or \
        (type(model).__name__ == "SGDClassifier" and getattr(model, "loss", "") == "log_loss")
    proba = None if not logistic else ("sigmoid" if W.shape[0] == 1 else "softmax")
    return LinearDef(W, b, np.asarray(model.classes_), proba)


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
    return Encoding(scores, definition.classes, margin, name=name,
                    probability_row=_probability_row(definition, scores))


def _probability_row(definition: LinearDef, scores: list[LinExpr]):
    """Binary logistic models: P(class c) >= p iff the score difference >= logit(p)."""
    if definition.proba is None:
        return None

    def row(c: int, p: float) -> tuple[LinExpr, float]:
        if definition.proba != "sigmoid":
            raise NotImplementedError("a probability threshold on a multi-class (softmax) linear model "
                                      "is not a linear constraint; use a binary model")
        from .trees import sigmoid_row
        return sigmoid_row(scores, c, p)
    return row
