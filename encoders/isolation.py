"""Isolation forests (sklearn ``IsolationForest``): reader and the "inlier" formulation.

sklearn scores a point by its path lengths: in tree ``t`` the point reaches leaf ``l`` and
collects ``h_t = depth(l) + c(n_samples(l)) - 1`` (root depth 1, ``c`` the average path length
of an unsuccessful BST search, ``_average_path_length``). With ``D = sum_t h_t`` and
``den = n_trees * c(max_samples_)``:

    score_samples = -2 ** (-D / den),    decision_function = score_samples - offset_,
    predict = +1 (inlier)  iff  decision_function >= 0.

Since ``offset_ < 0``, ``-2^(-D/den) >= offset_  <=>  2^(-D/den) <= -offset_  <=>
D >= den * log2(1 / -offset_)``: being an inlier is one linear row on the leaf weights of a
tree encoding whose leaf values are the path lengths. The routing is sklearn's tree routing
(``float32(x) <= threshold``), so the trees reuse :mod:`encoders.trees`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .inputs import Encoding, ModelInput
from .milp import MILP, LinExpr
from .trees import TreeArrays, TreeEnsembleDef, encode_trees


def average_path_length(n: np.ndarray) -> np.ndarray:
    """``c(n)``: 0 for n <= 1, 1 for n == 2, ``2 (ln(n-1) + gamma) - 2 (n-1)/n`` above."""
    n = np.asarray(n, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass
class IsolationForestDef:
    """Path-length trees over the forest's inputs and the inlier threshold on their sum.

    ``trees`` is a one-output :class:`TreeEnsembleDef` whose raw score is ``D`` (the summed
    path length); a point is an inlier iff ``decision(D) >= 0``, which holds iff
    ``D >= threshold`` up to float rounding (:meth:`inlier` is the exact rule).
    """

    trees: TreeEnsembleDef
    denominator: float
    offset: float
    threshold: float

    def path_length(self, Z: np.ndarray) -> np.ndarray:
        """Summed path length ``D`` of each row (sklearn's ``depths``)."""
        return self.trees.raw_scores(Z)[:, 0]

    def decision(self, D: np.ndarray) -> np.ndarray:
        """sklearn's ``decision_function`` from the summed path length."""
        D = np.asarray(D, dtype=float)
        if self.denominator == 0:
            return -np.ones_like(D) - self.offset
        return -(2.0 ** (-D / self.denominator)) - self.offset

    def inlier(self, Z: np.ndarray) -> np.ndarray:
        """True where sklearn's ``predict`` says +1."""
        return self.decision(self.path_length(Z)) >= 0

    def score_samples(self, Z: np.ndarray) -> np.ndarray:
        return self.decision(self.path_length(Z)) + self.offset


def read_isolation_forest(forest: object) -> IsolationForestDef:
    """Read a fitted ``sklearn.ensemble.IsolationForest`` (same routing and leaf values as sklearn)."""
    if not hasattr(forest, "estimators_") or not hasattr(forest, "offset_"):
        raise ValueError("the isolation forest is not fitted")
    n_in = int(forest.n_features_in_)
    # sklearn indexes the columns of a tree only when features are subsampled (see
    # IsolationForest._compute_chunked_score_samples); otherwise every tree sees X as is
    subsample = int(getattr(forest, "_max_features", n_in)) != n_in
    depths = getattr(forest, "_decision_path_lengths", None)
    avg = getattr(forest, "_average_path_length_per_tree", None)
    trees = []
    for k, (est, feats) in enumerate(zip(forest.estimators_, forest.estimators_features_)):
        t = est.tree_
        d = np.asarray(depths[k] if depths is not None else t.compute_node_depths(), dtype=float)
        c = np.asarray(avg[k] if avg is not None else average_path_length(t.n_node_samples), dtype=float)
        leaf = t.children_left < 0
        feature = np.where(leaf, -1, t.feature).astype(np.int64)
        if subsample:
            feature = np.where(leaf, -1, np.asarray(feats, dtype=np.int64)[np.maximum(t.feature, 0)])
        value = (d + c - 1.0)[:, None]
        trees.append(TreeArrays(feature, np.asarray(t.threshold, dtype=float), t.children_left.astype(np.int64),
                                t.children_right.astype(np.int64), value))
    n = len(trees)
    den = float(n * average_path_length(np.array([forest._max_samples]))[0])
    offset = float(forest.offset_)
    if not offset < 0:
        raise ValueError(f"isolation forest offset_ {offset} is not negative: every point would be an outlier")
    threshold = den * math.log2(-1.0 / offset) if den > 0 else -math.inf
    definition = TreeEnsembleDef(trees, np.ones(n), np.zeros(1), np.array([0]))
    return IsolationForestDef(definition, den, offset, threshold)


@dataclass
class InlierEncoding:
    """The summed path length over MILP columns and the row that asks for an inlier.

    ``row`` is the id of ``path_length >= threshold`` (see :meth:`row_lower`); its lower bound
    is the only thing a caller changes (``-inf`` switches the requirement off, a larger
    margin retries).
    """

    path_length: LinExpr
    row: int
    threshold: float
    margin: float
    encoding: Encoding
    definition: IsolationForestDef

    def row_lower(self, factor: float = 1.0) -> float:
        """Row lower bound asking for an inlier.

        ``factor == 1`` is inclusive (a point exactly at the threshold is an inlier for
        sklearn, and a rounding ulp must not exclude it); a caller whose point the forest
        rejected retries with ``factor > 1``, which asks for ``margin * factor / 100`` more.
        """
        m = -1e-3 * self.margin if factor <= 1 else self.margin * factor / 100.0
        return self.threshold + m - self.path_length.const


def encode_isolation_forest(milp: MILP, definition: IsolationForestDef | object, inputs: Sequence[ModelInput],
                            name: str = "iforest") -> InlierEncoding:
    """Encode ``definition`` (or a fitted IsolationForest) and add the inlier row (active)."""
    if not isinstance(definition, IsolationForestDef):
        definition = read_isolation_forest(definition)
    with milp.block(name):
        enc = encode_trees(milp, definition.trees, inputs, name=name)
        D = enc.scores[0].merged()
        # D is a sum of constants picked by integral leaf weights, so only solver tolerances
        # (and float summation order) separate the MILP's D from sklearn's: a tiny margin
        margin = 1e-9 * max(1.0, abs(definition.threshold))
        row = milp.add_ge(D, definition.threshold - 1e-3 * margin, name=f"{name}.inlier")
    return InlierEncoding(D, row, definition.threshold, margin, enc, definition)


__all__ = ["IsolationForestDef", "InlierEncoding", "read_isolation_forest", "encode_isolation_forest",
           "average_path_length"]
