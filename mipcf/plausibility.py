"""Plausible counterfactuals: data-manifold constraints and the measures that evaluate them.

Two constraints, passed as ``Recourse(..., plausibility=...)``; both are exact parts of the
MILP and both are re-checked on every returned point, like the model's decision:

- :class:`IsolationForestConstraint`: the counterfactual is an inlier of an isolation
  forest (fitted on the training rows the model assigns to the desired class, or given).
  sklearn's inlier rule is one linear row on the forest's path lengths
  (:mod:`encoders.isolation`), and the forest's splits share the model's split binaries.
- :class:`SupportConstraint`: the counterfactual lies within ``radius`` (measured with the
  Recourse's own cost) of at least ``k`` training points of the desired class.
- :class:`LeafSupportConstraint`: in every tree of a tree model, the counterfactual lands in
  a leaf that at least ``min_samples`` desired-class training rows reach; unsupported leaves
  are switched off in the model's own leaf columns, so it adds nothing to the MILP.

Evaluation measures (also used by ``benchmarks/plausibility.py``): :func:`nearest_distance`,
:func:`lof_scores`, :func:`iforest_scores`, :func:`inlier_share` and :func:`evaluate`.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from encoders import MILP, DiscreteInput, LinExpr, NumericInput
from encoders.isolation import InlierEncoding, encode_isolation_forest, read_isolation_forest
from encoders.trees import reserve_splits

from .costs import CostSpec
from .pruning import feature_matrix
from .schema import Schema

INF = float("inf")


# ---------------------------------------------------------------------------------------
# distances in the Recourse's cost


def _unit_changes(schema: Schema, a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray],
                  cost: CostSpec) -> np.ndarray:
    """Weighted per-feature changes ``d_j`` between rows of ``a`` and ``b`` (feature_matrix units)."""
    cols = []
    for f in schema.features:
        w = cost.weights[f.name]
        x, y = np.asarray(a[f.name], float), np.asarray(b[f.name], float)
        if f.is_numeric:
            d = np.abs(x - y)
        elif f.type == "categorical":
            d = (x != y).astype(float)
        else:
            d = np.abs(x - y) / max(len(f.levels) - 1, 1)
        cols.append(w * d)
    return np.column_stack(cols) if cols else np.zeros((0, 0))


def _total(d: np.ndarray, cost: CostSpec) -> np.ndarray:
    """The cost of per-feature changes (rows of ``d``), exactly as :meth:`CostSpec.evaluate`."""
    if d.shape[1] == 0:
        return np.zeros(d.shape[0])
    t = cost.l0 * (d > 0).sum(axis=1) + cost.l1 * d.sum(axis=1) + cost.linf * d.max(axis=1)
    return t / cost.divisor


def pairwise_cost(schema: Schema, cost: CostSpec, X: pd.DataFrame, P: pd.DataFrame,
                  chunk: int = 256) -> np.ndarray:
    """``cost(x_i, p_l)`` for every row of ``X`` (rows) and ``P`` (columns)."""
    fx, fp = feature_matrix(schema, X), feature_matrix(schema, P)
    n, m = len(X), len(P)
    chunk = max(1, min(chunk, int(2e6 // max(m * max(len(fx), 1), 1))))  # bounded memory per block
    out = np.empty((n, m))
    for i0 in range(0, n, chunk):
        i1 = min(i0 + chunk, n)
        a = {k: np.repeat(v[i0:i1], m) for k, v in fx.items()}
        b = {k: np.tile(v, i1 - i0) for k, v in fp.items()}
        out[i0:i1] = _total(_unit_changes(schema, a, b, cost), cost).reshape(i1 - i0, m)
    return out


def _class_rows(model: Any, data: pd.DataFrame, labels: Any, desired: Any) -> np.ndarray:
    """Rows of ``data`` that belong to ``desired``: by ``labels`` when given, else by the model."""
    y = np.asarray(model.predict(data)) if labels is None else np.asarray(labels)
    return np.array([v == desired or str(v) == str(desired) for v in y], dtype=bool)


# ---------------------------------------------------------------------------------------
# evaluation measures


def nearest_distance(counterfactuals: pd.DataFrame, data: pd.DataFrame, schema: Schema, cost: CostSpec,
                     model: Any = None, desired: Any = None, labels: Any = None) -> np.ndarray:
    """Cost from each counterfactual to the nearest training row of the desired class.

    The class of a training row is ``labels`` when given, else ``model.predict``; with
    neither ``model`` nor ``labels`` every row of ``data`` counts.
    """
    cols = schema.columns
    pool = data[cols]
    if model is not None or labels is not None:
        pool = pool[_class_rows(model, pool, labels, desired)]
    if len(pool) == 0:
        return np.full(len(counterfactuals), np.inf)
    return pairwise_cost(schema, cost, counterfactuals[cols], pool).min(axis=1)


def lof_scores(counterfactuals: pd.DataFrame, reference: pd.DataFrame, n_neighbors: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Local outlier factor of each counterfactual w.r.t. ``reference`` (e.g. desired-class rows).

    Returns ``(score, inlier)``: sklearn's ``LocalOutlierFactor(novelty=True).score_samples``
    (the negated LOF: about -1 for inliers, lower is more abnormal) and ``predict == 1``.
    """
    from sklearn.neighbors import LocalOutlierFactor

    ref = reference.to_numpy(dtype=float)
    lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, max(len(ref) - 1, 1)), novelty=True).fit(ref)
    Z = counterfactuals[reference.columns].to_numpy(dtype=float)
    return lof.score_samples(Z), lof.predict(Z) == 1


def iforest_scores(counterfactuals: pd.DataFrame, forest: Any) -> np.ndarray:
    """``forest.decision_function``: >= 0 is an inlier (sklearn's rule)."""
    return np.asarray(forest.decision_function(_forest_frame(counterfactuals, forest)))


def inlier_share(counterfactuals: pd.DataFrame, forest: Any) -> float:
    """Share of counterfactuals that ``forest.predict`` calls inliers (nan for none)."""
    if len(counterfactuals) == 0:
        return float("nan")
    return float(np.mean(np.asarray(forest.predict(_forest_frame(counterfactuals, forest))) == 1))


def evaluate(counterfactuals: pd.DataFrame, data: pd.DataFrame, schema: Schema, cost: CostSpec, model: Any,
             desired: Any, forest: Any = None, labels: Any = None, n_neighbors: int = 20) -> pd.DataFrame:
    """Per counterfactual: nearest desired-class distance, LOF score/inlier, isolation score/inlier.

    ``forest`` defaults to an IsolationForest (random_state 0) fitted on the desired-class rows.
    """
    pool = data[schema.columns][_class_rows(model, data[schema.columns], labels, desired)]
    out = pd.DataFrame(index=counterfactuals.index)
    out["nearest_distance"] = nearest_distance(counterfactuals, pool, schema, cost)
    out["lof_score"], out["lof_inlier"] = lof_scores(counterfactuals[schema.columns], pool, n_neighbors)
    if forest is None:
        from sklearn.ensemble import IsolationForest
        forest = IsolationForest(random_state=0).fit(pool)
    out["iforest_score"] = iforest_scores(counterfactuals, forest)
    out["iforest_inlier"] = out["iforest_score"] >= 0
    return out


def _forest_frame(df: pd.DataFrame, forest: Any) -> pd.DataFrame:
    names = getattr(forest, "feature_names_in_", None)
    return df[[str(c) for c in names]] if names is not None else df


# ---------------------------------------------------------------------------------------
# constraints: user-facing specifications


class PlausibilityConstraint:
    """Base of the plausibility specifications; :meth:`bind` makes the fitted block."""

    needs_data = True

    def bind(self, model: Any, schema: Schema, cost: CostSpec, data: pd.DataFrame | None) -> "_Bound":
        raise NotImplementedError

    def _data(self, data: pd.DataFrame | None, schema: Schema) -> pd.DataFrame:
        if data is None:
            raise ValueError(f"{type(self).__name__} needs training data: pass data=X_train to Recourse")
        missing = [c for c in schema.columns if c not in data.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: the training data lacks the schema columns {missing}")
        return data[schema.columns]


class IsolationForestConstraint(PlausibilityConstraint):
    """The counterfactual must be an inlier (``predict == 1``) of an isolation forest.

    Parameters
    ----------
    forest : a fitted ``sklearn.ensemble.IsolationForest`` over the schema's frame columns,
        used for every desired class; None (default): one forest per class, fitted on the
        training rows (``Recourse(data=...)``) that the model assigns to that class.
    contamination, n_estimators, max_samples, random_state, **kw : passed to IsolationForest
    desired_class : fit (and encode) only the forest of this class; otherwise every class
        with training rows gets one (a binary model then carries two forests).

    Exact: sklearn's inlier rule ``decision_function >= 0`` is one linear row on the summed
    path lengths, with the forest's own float32 routing; every answer is re-checked with
    ``forest.predict``.
    """

    def __init__(self, forest: Any = None, contamination: float | str = "auto", n_estimators: int = 100,
                 max_samples: int | float | str = "auto", random_state: int = 0, desired_class: Any = None,
                 **kw: Any) -> None:
        self.forest = forest
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.desired_class = desired_class
        self.kw = kw

    def bind(self, model: Any, schema: Schema, cost: CostSpec, data: pd.DataFrame | None) -> "_IsolationBound":
        cols = list(schema.columns)
        if self.forest is not None:
            names = getattr(self.forest, "feature_names_in_", None)
            fcols = [str(c) for c in names] if names is not None else cols
            unknown = [c for c in fcols if c not in cols]
            if unknown or len(fcols) != int(self.forest.n_features_in_):
                raise ValueError(f"the isolation forest was fitted on columns {unknown or fcols} that the "
                                 "schema does not define")
            return _IsolationBound({None: (self.forest, fcols)}, schema)
        from sklearn.ensemble import IsolationForest

        X = self._data(data, schema)
        classes = list(model.classes_) if self.desired_class is None else [self.desired_class]
        pred = np.asarray(model.predict(X))
        forests = {}
        for c in classes:
            rows = np.array([v == c or str(v) == str(c) for v in pred])
            if rows.sum() < 2:
                if self.desired_class is not None:
                    raise ValueError(f"IsolationForestConstraint: fewer than 2 training rows are predicted "
                                     f"as class {c!r}; cannot fit a forest")
                continue
            f = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                                contamination=self.contamination, random_state=self.random_state,
                                **self.kw).fit(X[rows])
            forests[c] = (f, cols)
        return _IsolationBound(forests, schema)


class SupportConstraint(PlausibilityConstraint):
    """The counterfactual lies within ``radius`` of at least ``k`` training points of the desired class.

    Distances use the Recourse's own cost (norms, per-feature weights, normalisation); l1,
    linf and their mixes are supported (an l0 term is not). The class of a training row is
    ``labels`` when given, else the model's prediction.

    Per person, a training point ``p`` is a candidate only if it can matter: some allowed
    point lies within ``radius`` of it, and ``cost(x, p) <= U + radius`` where ``U`` is the
    cost of the cheapest reachable training point with ``k`` supporters (the triangle
    inequality of the cost rules the others out). At most ``max_candidates`` candidates,
    nearest first, get a slot in the MILP; when more qualify, the answer is still proven
    optimal if its cost ``C`` satisfies ``C + radius < cost(x, p)`` for every candidate left
    out, otherwise it is reported ``feasible`` (optimal over the candidates kept).
    """

    def __init__(self, k: int = 1, radius: float = 0.1, max_candidates: int = 50, data: pd.DataFrame | None = None,
                 labels: Any = None) -> None:
        if int(k) != k or k < 1:
            raise ValueError(f"SupportConstraint: k must be a positive integer, got {k!r}")
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"SupportConstraint: radius must be positive and finite, got {radius!r}")
        if int(max_candidates) < k:
            raise ValueError(f"SupportConstraint: max_candidates ({max_candidates}) must be at least k ({k})")
        self.k = int(k)
        self.radius = float(radius)
        self.max_candidates = int(max_candidates)
        self.data = data
        self.labels = labels

    def bind(self, model: Any, schema: Schema, cost: CostSpec, data: pd.DataFrame | None) -> "_SupportBound":
        if cost.l0:
            raise ValueError("SupportConstraint: the cost has an l0 term; support distances are exact for "
                             "l1, linf and their mixes only")
        X = self._data(self.data if self.data is not None else data, schema)
        if self.labels is not None and len(self.labels) != len(X):
            raise ValueError(f"SupportConstraint: {len(self.labels)} labels for {len(X)} training rows")
        return _SupportBound(self, model, schema, cost, X)


# sklearn tree models whose encoded trees keep sklearn's node ids (encoders.trees._sklearn_tree),
# so a leaf column maps to the node that the model's own apply returns
_LEAF_MODELS = ("DecisionTreeClassifier", "ExtraTreeClassifier", "RandomForestClassifier",
                "ExtraTreesClassifier", "GradientBoostingClassifier")
# tree models read from a booster dump and renumbered: their apply / pred_leaf ids differ
_RENUMBERED = ("HistGradientBoostingClassifier", "XGBClassifier", "LGBMClassifier")


def _split_pipeline(model: Any) -> tuple[list, Any]:
    """The transforming parts in front of a (nested) Pipeline's final estimator, outermost
    first, and that estimator."""
    front = []
    while type(model).__name__ == "Pipeline":
        if len(model.steps) > 1:
            front.append(model[:-1])
        model = model.steps[-1][1]
    return front, model


def _final_estimator(model: Any) -> Any:
    return _split_pipeline(model)[1]


def _leaf_ids(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's own ``apply`` per row and tree, shape (rows, trees); pipeline steps transform first.

    GradientBoosting's (rows, stages, K) flattens stage-major, the encoder's tree order.
    """
    front, model = _split_pipeline(model)
    Z = frame
    for part in front:
        Z = part.transform(Z)
    if type(model).__name__ == "GradientBoostingClassifier" and isinstance(Z, pd.DataFrame):
        # GradientBoosting hands a frame to its unnamed regression trees, which then warn
        names = getattr(model, "feature_names_in_", None)
        Z = (Z[list(names)] if names is not None else Z).to_numpy()
    # GradientBoosting returns its node ids as floats
    return np.asarray(model.apply(Z)).reshape(len(frame), -1).astype(np.int64)


def _estimator_trees(final: Any) -> list:
    """The fitted sklearn trees of ``final`` in the encoder's order (one per column of ``_leaf_ids``)."""
    if hasattr(final, "tree_"):
        return [final]
    return list(np.asarray(final.estimators_, dtype=object).ravel())


class LeafSupportConstraint(PlausibilityConstraint):
    """In every tree, the counterfactual lands in a leaf that desired-class training rows reach.

    A leaf is supported when at least ``min_samples`` training rows of the desired class end
    in it (routed by the model's own ``apply``; for a Pipeline on the rows its steps
    transform). The counterfactual must lie in a supported leaf of every tree, so it sits
    inside the bounding boxes of leaf regions the data of that class actually occupies.

    Parameters
    ----------
    min_samples : int, default 1
        Desired-class training rows a leaf needs to be supported.
    data : DataFrame, optional
        Training rows over the schema's columns; default: ``Recourse(data=...)``.
    labels : array-like, optional
        The class of each row of ``data``; default: the model's prediction.

    Exact and free: the unsupported leaves' columns of the model's own encoding are fixed
    to 0 per person (no rows or columns are added). When some tree has no supported leaf
    the query is certified infeasible. Every answer is re-checked with ``apply``.

    Supported models: DecisionTree / ExtraTree, RandomForest / ExtraTrees and
    GradientBoosting classifiers, alone or at the end of a Pipeline. Other models raise
    ``ValueError`` naming the model when the Recourse binds the constraint.
    """

    def __init__(self, min_samples: int = 1, data: pd.DataFrame | None = None, labels: Any = None) -> None:
        if isinstance(min_samples, bool) or int(min_samples) != min_samples or min_samples < 1:
            raise ValueError(f"LeafSupportConstraint: min_samples must be a positive integer, got {min_samples!r}")
        self.min_samples = int(min_samples)
        self.data = data
        self.labels = labels

    def bind(self, model: Any, schema: Schema, cost: CostSpec, data: pd.DataFrame | None) -> "_LeafSupportBound":
        final = _final_estimator(model)
        name = type(final).__name__
        where = f"{name} (the final step of the Pipeline)" if final is not model else name
        if name in _RENUMBERED:
            raise ValueError(f"LeafSupportConstraint does not support {where} yet: its trees are read from "
                             "the booster and renumbered, so its own leaf ids cannot be matched with the "
                             f"encoded leaves; supported: {', '.join(_LEAF_MODELS)}")
        if name not in _LEAF_MODELS:
            raise ValueError(f"LeafSupportConstraint needs a tree model, but {where} has no tree leaves "
                             f"(supported: {', '.join(_LEAF_MODELS)}); use SupportConstraint or "
                             "IsolationForestConstraint for it")
        X = self._data(self.data if self.data is not None else data, schema)
        if self.labels is not None and len(self.labels) != len(X):
            raise ValueError(f"LeafSupportConstraint: {len(self.labels)} labels for {len(X)} training rows")
        return _LeafSupportBound(self, model, schema, X)


# ---------------------------------------------------------------------------------------
# fitted blocks (what compile_problem and Recourse talk to)


class _Bound:
    """A fitted plausibility block: prepared before, encoded after the model's encoding."""

    name = "plausibility"
    needs_points = False   # True: the exact point matters, not only its split intervals

    def prepare(self, milp: MILP, inputs: Mapping[str, Any]) -> None:
        """Before the model is encoded (e.g. reserve split levels to share)."""

    def encode(self, milp: MILP, inputs: Mapping[str, Any], fvars: Sequence[Any], encoding: Any) -> None:
        raise NotImplementedError

    def bound(self, q: Any, values: Mapping[str, Any], desired: Any, factor: float = 1.0) -> dict:
        """Per-person row and column bounds (in place on the query); returns what certify needs."""
        return {}

    def accepts(self, cf: pd.DataFrame, desired: Any) -> bool:
        raise NotImplementedError

    def report(self, cf: pd.DataFrame, desired: Any) -> dict:
        raise NotImplementedError

    def incumbent_ok(self, cf: pd.DataFrame, desired: Any) -> bool:
        return self.accepts(cf, desired)

    def incumbent(self, pruner: Any, values: Mapping[str, Any], desired: Any, q: Any) -> tuple[dict, float] | None:
        """The cheapest training row that the model and this block both accept (None: none reachable)."""
        return None

    def _repaired(self, pruner: Any, values: Mapping[str, Any], desired: Any, q: Any, mask: np.ndarray,
                  also: Any) -> tuple[dict, float] | None:
        """The pool rows in ``mask`` nearest the person, repaired while ``also`` (rows of a frame) holds."""
        if not mask.any():
            return None
        row = self.schema.frame_from_values(values, pruner.pool.iloc[[0]])
        return pruner.nearest_repaired(row, values, desired, q, mask, also=also)

    def prune(self, problem: Any, q: Any, values: Mapping[str, Any], budget: float) -> None:
        """Fix what cannot be part of an answer of cost <= ``budget`` (after the model's pruning)."""


class _IsolationBound(_Bound):
    name = "isolation_forest"

    def __init__(self, forests: dict, schema: Schema) -> None:
        self.forests = forests             # class (None: every class) -> (forest, columns)
        self.schema = schema
        self.defs = {c: read_isolation_forest(f) for c, (f, _) in forests.items()}
        self.rows: dict[Any, InlierEncoding] = {}

    def _inputs(self, inputs: Mapping[str, Any], cols: Sequence[str]) -> list:
        out = []
        for c in cols:
            inp = inputs.get(c)
            if not isinstance(inp, (NumericInput, DiscreteInput)):
                raise ValueError(f"IsolationForestConstraint: column {c!r} is not numeric; an isolation "
                                 "forest needs numeric (or one-hot) columns")
            out.append(inp)
        return out

    def prepare(self, milp: MILP, inputs: Mapping[str, Any]) -> None:
        for c, (_, cols) in self.forests.items():
            ins = self._inputs(inputs, cols)
            used: dict[int, set] = {}
            for tree in self.defs[c].trees.trees:
                for f, t in zip(tree.feature, tree.threshold):
                    if f >= 0:
                        used.setdefault(int(f), set()).add(float(t))
            for f, ts in used.items():
                if isinstance(ins[f], NumericInput):
                    reserve_splits(milp, ins[f], sorted(ts), strict=False)

    def encode(self, milp: MILP, inputs: Mapping[str, Any], fvars: Sequence[Any], encoding: Any) -> None:
        for k, (c, (_, cols)) in enumerate(self.forests.items()):
            enc = encode_isolation_forest(milp, self.defs[c], self._inputs(inputs, cols), name=f"iforest{k}")
            # splits the model does not share must still snap the decoded point
            encoding.cuts.extend(enc.encoding.cuts)
            self.rows[c] = enc

    def _forest(self, desired: Any):
        for c, (f, cols) in self.forests.items():
            if c is None or c == desired or str(c) == str(desired):
                return c, f, cols
        raise ValueError(f"IsolationForestConstraint: no forest for class {desired!r} (no training rows "
                         "predicted as it, or desired_class differs)")

    def bound(self, q: Any, values: Mapping[str, Any], desired: Any, factor: float = 1.0) -> dict:
        key, _, _ = self._forest(desired)
        for c, enc in self.rows.items():
            q.row_lo[enc.row] = enc.row_lower(factor) if c == key else -INF
        return {}

    def accepts(self, cf: pd.DataFrame, desired: Any) -> bool:
        _, f, cols = self._forest(desired)
        return bool(np.all(np.asarray(f.predict(cf[cols])) == 1))

    def prune(self, problem: Any, q: Any, values: Mapping[str, Any], budget: float) -> None:
        """Switch off the active forest's leaves whose box costs more than ``budget`` to reach.

        The same cost lower bound the model's leaves get (:meth:`mipcf.pruning.Pruner.leaf_lower_bounds`),
        applied to the forest's own leaf boxes; exact because every optimum costs <= budget.
        """
        from types import SimpleNamespace

        from .pruning import TOL, Pruner

        key, _, _ = self._forest(problem.encoding.classes[q.desired])
        enc = self.rows[key].encoding
        if enc.leaf_boxes is None:
            return
        cache = self.__dict__.setdefault("_leaf_bounds", {})
        if str(key) not in cache:
            lb = Pruner.__new__(Pruner)  # only its leaf-bound methods, over this forest's inputs
            lb.p = SimpleNamespace(fvars=problem.fvars, encoding=enc, cost=problem.cost)
            lb.maps = lb._input_maps()
            cache[str(key)] = lb
        lower = cache[str(key)].leaf_lower_bounds(q, values)
        q.ub[enc.leaf_boxes[0][lower > budget * (1 + TOL) + 1e-9]] = 0.0
        self._fix_short_leaves(key, q)

    def _fix_short_leaves(self, key: Any, q: Any) -> None:
        """Leaves too short to reach the path-length threshold, given what the other trees can add.

        With ``M_t`` the longest leaf tree ``t`` can still reach, a leaf of tree ``t`` with
        length ``h < need - sum_{s != t} M_s`` cannot be part of an inlier; fixing it lowers
        ``M_t``, so repeat until nothing changes.
        """
        enc = self.rows[key]
        lam, D = enc.path_length.idx, enc.path_length.coef
        tree = self.__dict__.setdefault("_leaf_tree", {})
        if str(key) not in tree:  # which tree each leaf column belongs to (each tree's leaves sum to 1)
            owner = np.zeros(lam.size, dtype=np.int64)
            at = 0
            order = {int(v): i for i, v in enumerate(lam)}
            for t, tr in enumerate(self.defs[key].trees.trees):
                n = int((tr.feature < 0).sum())
                owner[at:at + n] = t
                at += n
            cols = np.asarray(enc.encoding.leaf_boxes[0])
            tree[str(key)] = np.array([owner[k] for k in range(cols.size)]), cols, \
                np.array([order.get(int(c), -1) for c in cols])
        owner, cols, pos = tree[str(key)]
        h = np.where(pos >= 0, D[np.maximum(pos, 0)], 0.0)  # leaf path lengths, in leaf-column order
        need = q.row_lo[enc.row] + enc.path_length.const
        for _ in range(20):
            live = q.ub[cols] > 0
            best = np.full(owner.max() + 1, -np.inf)
            np.maximum.at(best, owner[live], h[live])
            if not np.all(np.isfinite(best)):
                return  # a tree with no leaf left: infeasible, the solver will certify it
            short = live & (h < need - (best.sum() - best[owner]) - 1e-9)
            if not short.any():
                return
            q.ub[cols[short]] = 0.0

    def incumbent(self, pruner: Any, values: Mapping[str, Any], desired: Any, q: Any) -> tuple[dict, float] | None:
        key, f, cols = self._forest(desired)
        cache = self.__dict__.setdefault("_inlier_pool", {})
        if str(key) not in cache:
            cache[str(key)] = np.asarray(f.predict(pruner.pool[cols])) == 1
        return self._repaired(pruner, values, desired, q, (pruner.pool_pred == desired) & cache[str(key)],
                              also=lambda frame: np.asarray(f.predict(frame[cols])) == 1)

    def report(self, cf: pd.DataFrame, desired: Any) -> dict:
        _, f, cols = self._forest(desired)
        score = float(np.asarray(f.decision_function(cf[cols]))[0])
        return {"kind": self.name, "score": score, "inlier": score >= 0}


class _SupportBound(_Bound):
    name = "support"
    needs_points = True

    def __init__(self, spec: SupportConstraint, model: Any, schema: Schema, cost: CostSpec, X: pd.DataFrame) -> None:
        self.spec, self.model, self.schema, self.cost = spec, model, schema, cost
        self.X = X
        self.labels = spec.labels
        self.values = feature_matrix(schema, X)
        self.pred = np.asarray(model.predict(X))
        self._pools: dict = {}
        self.fvars: list = []

    # ---- pools ------------------------------------------------------------------------
    def pool(self, desired: Any) -> tuple[np.ndarray, np.ndarray]:
        """(row ids of the desired class, per row: can it serve as an incumbent on its own)."""
        key = str(desired)
        if key not in self._pools:
            rows = np.nonzero(np.array([v == desired or str(v) == str(desired) for v in self.pred])
                              if self.labels is None else _class_rows(None, self.X, self.labels, desired))[0]
            # repeated training rows need no slot of their own beyond k copies
            P = np.column_stack([self.values[f.name][rows] for f in self.schema.features])
            _, first, inverse, mult = np.unique(P, axis=0, return_index=True, return_inverse=True,
                                                return_counts=True)
            inverse = inverse.ravel()
            rank = np.zeros(rows.size, dtype=np.int64)
            order = np.argsort(inverse, kind="stable")
            starts = np.r_[0, np.cumsum(mult)[:-1]]
            rank[order] = np.arange(rows.size) - np.repeat(starts, mult)
            keep = rank < self.spec.k
            ok = np.array([v == desired or str(v) == str(desired) for v in self.pred[rows]], dtype=bool)
            if self.spec.k > 1 and rows.size:
                uniq = self.X.iloc[rows[first]]
                within = self._within(pairwise_cost(self.schema, self.cost, uniq, uniq))
                supporters = (within * mult[None, :]).sum(axis=1)  # with multiplicity
                ok &= supporters[inverse] >= self.spec.k
            self._pools[key] = (rows[keep], ok[keep])
        return self._pools[key]

    def distances(self, cf: pd.DataFrame, desired: Any) -> np.ndarray:
        """Cost from ``cf`` to every training row of the desired class (the check, independent of slots)."""
        rows = self._desired_rows(desired)
        if rows.size == 0:
            return np.zeros(0)
        return pairwise_cost(self.schema, self.cost, cf[self.schema.columns], self.X.iloc[rows])[0]

    # ---- encoding ---------------------------------------------------------------------
    def encode(self, milp: MILP, inputs: Mapping[str, Any], fvars: Sequence[Any], encoding: Any) -> None:
        """``max_candidates`` slots; a slot's candidate point enters through row bounds only."""
        cost, S = self.cost, self.spec.max_candidates
        for fv in fvars:  # with an SCM the model sees other columns than the actions: not supported
            inp = inputs.get(fv.feature.name)
            if fv.var is not None and isinstance(inp, NumericInput) and inp.var != fv.var:
                raise ValueError("SupportConstraint does not support an SCM (the support distance would "
                                 f"be measured on the actions, not on the resulting {fv.feature.name!r})")
        self.fvars = list(fvars)
        F = len(fvars)
        # per feature: the largest weighted change between any allowed value and any training value
        tmax = np.zeros(F)
        for j, fv in enumerate(fvars):
            f, w = fv.feature, cost.weights[fv.feature.name]
            if f.is_numeric:
                v = self.values[f.name]
                lo, hi = min(f.lower, v.min(initial=f.lower)), max(f.upper, v.max(initial=f.upper))
                tmax[j] = w * (hi - lo)
            else:
                tmax[j] = w
        self.big = float((cost.l1 * tmax.sum() + cost.linf * tmax.max(initial=0.0)) / cost.divisor) + 1.0
        self.z = milp.add_binaries(S, name="support.use")
        self.t = milp.add_vars(S * F, 0.0, np.tile(tmax, S), name="support.t").reshape(S, F)
        self.m = milp.add_vars(S, 0.0, tmax.max(initial=0.0), name="support.max") if cost.linf else None
        self.rows_pos, self.rows_neg, self.rows_lvl = {}, {}, {}
        for j, fv in enumerate(fvars):
            f, w = fv.feature, cost.weights[fv.feature.name]
            tj = self.t[:, j]
            if f.type == "categorical":
                # t >= w (1 - b_l) for the candidate's level l: one row per level, one switched on
                self.rows_lvl[j] = np.stack([milp.add_exprs([LinExpr([int(tj[s]), int(b)], [1.0, w]) for s in range(S)],
                                                            -INF, INF, name=f"support.{f.name}.level")
                                             for b in fv.levels], axis=1)
                continue
            if f.is_numeric:
                val = LinExpr.var(fv.var, w)
            else:
                val = LinExpr(fv.levels, w * np.arange(len(f.levels)) / max(len(f.levels) - 1, 1))
            self.rows_pos[j] = milp.add_exprs([LinExpr.var(int(tj[s])) - val for s in range(S)], -INF, INF,
                                              name=f"support.{f.name}.pos")
            self.rows_neg[j] = milp.add_exprs([LinExpr.var(int(tj[s])) + val for s in range(S)], -INF, INF,
                                              name=f"support.{f.name}.neg")
        if self.m is not None:
            milp.add_rows(np.repeat(np.arange(S * F), 2),
                          np.c_[np.repeat(self.m, F), self.t.ravel()].ravel(),
                          np.tile([1.0, -1.0], S * F), 0.0, INF, n_rows=S * F, name="support.max.epigraph")
        dist = []
        for s in range(S):
            e = LinExpr(self.t[s], np.full(F, cost.l1 / cost.divisor))
            if self.m is not None:
                e = e + LinExpr.var(int(self.m[s]), cost.linf / cost.divisor)
            dist.append(e + LinExpr.var(int(self.z[s]), self.big))
        self.dist_rows = milp.add_exprs(dist, -INF, INF, name="support.radius")
        self.count_row = milp.add_ge(LinExpr(self.z, np.ones(S)), float(self.spec.k), name="support.count")

    # ---- per person -------------------------------------------------------------------
    def _reach_lower_bound(self, q: Any, cand: dict) -> np.ndarray:
        """Per candidate: the least cost from any allowed point (actionability bounds of ``q``) to it."""
        cols = []
        for fv in self.fvars:
            f, w = fv.feature, self.cost.weights[fv.feature.name]
            c = cand[f.name]
            if f.is_numeric:
                lo, hi = q.lb[fv.var], q.ub[fv.var]
                d = np.maximum(lo - c, 0.0) + np.maximum(c - hi, 0.0)
            else:
                allowed = q.ub[fv.levels] > 0.5
                if (q.lb[fv.levels] > 0.5).any():
                    allowed = q.lb[fv.levels] > 0.5
                pos = np.nonzero(allowed)[0].astype(float)
                gap = np.abs(c[:, None] - pos[None, :])
                if f.type == "categorical":
                    d = (gap.min(axis=1) > 0).astype(float)
                else:
                    d = gap.min(axis=1) / max(len(f.levels) - 1, 1)
            cols.append(w * d)
        return _total(np.column_stack(cols), self.cost)

    def bound(self, q: Any, values: Mapping[str, Any], desired: Any, factor: float = 1.0) -> dict:
        rows, ok = self.pool(desired)
        S, r = self.spec.max_candidates, self.spec.radius
        cand = {k: v[rows] for k, v in self.values.items()}
        x0 = {f.name: np.full(rows.size, float(values[f.name]) if f.is_numeric else float(f.level_index(values[f.name])))
              for f in self.schema.features}
        d0 = _total(_unit_changes(self.schema, x0, cand, self.cost), self.cost)
        reach = self._reach_lower_bound(q, cand) if rows.size else np.zeros(0)
        # a reachable training point the model accepts, with k supporters, is itself a valid answer
        eligible = ok & (reach <= 0.0)
        upper = float(d0[eligible].min()) if eligible.any() else INF
        keep = np.nonzero((reach <= r * (1 + 1e-12)) & (d0 <= (upper + r) * (1 + 1e-12)))[0]
        keep = keep[np.argsort(d0[keep], kind="stable")]
        used, left_out = keep[:S], keep[S:]
        # inclusive at first (a point exactly at the radius counts, as in the check); a retry
        # after the check rejected a solver point asks for a margin inside the radius
        margin = -1e-12 * max(1.0, r) if factor <= 1 else 1e-9 * max(1.0, r) * factor / 100.0
        # switch every slot off, then fill the used ones
        q.ub[self.z] = 0.0
        for j, fv in enumerate(self.fvars):
            for rr in (self.rows_pos, self.rows_neg, self.rows_lvl):
                if j in rr:
                    q.row_lo[np.ravel(rr[j])] = -INF
        q.row_lo[self.dist_rows] = -INF
        q.row_hi[self.dist_rows] = r - margin + self.big
        for s, i in enumerate(used):
            q.ub[self.z[s]] = 1.0
            for j, fv in enumerate(self.fvars):
                f, w = fv.feature, self.cost.weights[fv.feature.name]
                p = float(cand[f.name][i])
                if f.type == "categorical":
                    q.row_lo[self.rows_lvl[j][s, int(p)]] = w
                    continue
                val = w * (p if f.is_numeric else p / max(len(f.levels) - 1, 1))
                q.row_lo[self.rows_pos[j][s]] = -val
                q.row_lo[self.rows_neg[j][s]] = val
        excluded = float(d0[left_out].min()) if left_out.size else INF
        return {"candidates": int(used.size), "qualified": int(keep.size), "excluded_min": excluded,
                "upper": upper}

    def certified(self, cost: float, info: dict) -> bool:
        """True when no left-out candidate could support an answer cheaper than ``cost``."""
        return not cost + self.spec.radius >= info.get("excluded_min", INF) * (1 - 1e-12)

    def _within(self, d: np.ndarray) -> np.ndarray:
        # distances are float sums: one part in 1e12 is rounding, not distance
        return d <= self.spec.radius * (1 + 1e-12)

    def accepts(self, cf: pd.DataFrame, desired: Any) -> bool:
        return bool(self._supported(cf, desired)[0])

    def _desired_rows(self, desired: Any) -> np.ndarray:
        """Row ids of every training point of the desired class (cached per class)."""
        key = ("all", str(desired))
        if key not in self._pools:
            self._pools[key] = np.nonzero(_class_rows(self.model, self.X, self.labels, desired))[0]
        return self._pools[key]

    def _supported(self, frame: pd.DataFrame, desired: Any) -> np.ndarray:
        """Per row of ``frame``: within the radius of at least k desired-class training points."""
        rows = self._desired_rows(desired)
        if rows.size == 0:
            return np.zeros(len(frame), dtype=bool)
        d = pairwise_cost(self.schema, self.cost, frame[self.schema.columns], self.X.iloc[rows])
        return self._within(d).sum(axis=1) >= self.spec.k

    def incumbent(self, pruner: Any, values: Mapping[str, Any], desired: Any, q: Any) -> tuple[dict, float] | None:
        """The nearest reachable training points the model accepts, repaired toward the person
        while each step stays supported; without it a forest's MILP has no budget to prune at."""
        best = self._repaired(pruner, values, desired, q, pruner.pool_pred == desired,
                              also=lambda frame: self._supported(frame, desired))
        if best is None or not self.accepts(self.schema.frame_from_values(best[0], pruner.pool.iloc[[0]]), desired):
            return None  # the start itself was not supported (k > 1, or other support data)
        return best

    def report(self, cf: pd.DataFrame, desired: Any) -> dict:
        d = self.distances(cf, desired)
        return {"kind": self.name, "score": float(np.sort(d)[self.spec.k - 1]) if d.size >= self.spec.k else INF,
                "support": int(np.sum(self._within(d))), "radius": self.spec.radius, "k": self.spec.k}


class _LeafSupportBound(_Bound):
    name = "leaf_support"

    def __init__(self, spec: LeafSupportConstraint, model: Any, schema: Schema, X: pd.DataFrame) -> None:
        self.spec, self.model, self.schema, self.X = spec, model, schema, X
        self.trees = _estimator_trees(_final_estimator(model))
        self.n_nodes = max(int(t.tree_.node_count) for t in self.trees)
        self.train_leaves = _leaf_ids(model, X) if len(X) else np.zeros((0, len(self.trees)), dtype=np.int64)
        self._cache: dict = {}
        self.cols: np.ndarray | None = None

    # ---- counts -----------------------------------------------------------------------
    def counts(self, desired: Any) -> np.ndarray:
        """(trees, nodes): desired-class training rows ending in each node (labels, else predict)."""
        key = ("counts", str(desired))
        if key not in self._cache:
            rows = _class_rows(self.model, self.X, self.spec.labels, desired) if len(self.X) \
                else np.zeros(0, dtype=bool)
            L = self.train_leaves[rows]
            C = np.zeros((len(self.trees), self.n_nodes), dtype=np.int64)
            np.add.at(C, (np.broadcast_to(np.arange(len(self.trees)), L.shape), L), 1)
            self._cache[key] = C
        return self._cache[key]

    def leaf_counts(self, frame: pd.DataFrame, desired: Any) -> np.ndarray:
        """(rows, trees): desired-class training rows in the leaf each row of ``frame`` reaches."""
        L = _leaf_ids(self.model, frame[self.schema.columns])
        return self.counts(desired)[np.arange(len(self.trees))[None, :], L]

    def supported_rows(self, frame: pd.DataFrame, desired: Any) -> np.ndarray:
        return (self.leaf_counts(frame, desired) >= self.spec.min_samples).all(axis=1)

    # ---- encoding ---------------------------------------------------------------------
    def encode(self, milp: MILP, inputs: Mapping[str, Any], fvars: Sequence[Any], encoding: Any) -> None:
        """Nothing to add: remember the model's leaf columns and check they are sklearn's leaves."""
        if encoding.leaf_nodes is None:
            raise ValueError("LeafSupportConstraint: the model's encoding has no leaf columns")
        tree, node = encoding.leaf_nodes
        if tree.size and int(tree.max()) + 1 != len(self.trees):
            raise ArithmeticError(f"LeafSupportConstraint: the encoding has {int(tree.max()) + 1} trees, the "
                                  f"model {len(self.trees)}; please report this")
        for t, est in enumerate(self.trees):  # the leaf-id map rests on this: guard it
            if not np.array_equal(np.sort(node[tree == t]), np.nonzero(est.tree_.children_left < 0)[0]):
                raise ArithmeticError(f"LeafSupportConstraint: the encoded leaves of tree {t} are not the "
                                      "model's own; please report this")
        self.cols, self.leaf_tree, self.leaf_node = np.asarray(encoding.leaf_boxes[0]), tree, node

    def supported(self, desired: Any) -> np.ndarray:
        """Per leaf column: is the leaf supported for ``desired``."""
        key = ("supported", str(desired))
        if key not in self._cache:
            self._cache[key] = self.counts(desired)[self.leaf_tree, self.leaf_node] >= self.spec.min_samples
        return self._cache[key]

    def bare_trees(self, desired: Any) -> np.ndarray:
        """Trees with no supported leaf for ``desired`` (then no counterfactual exists)."""
        key = ("bare", str(desired))
        if key not in self._cache:
            self._cache[key] = np.setdiff1d(np.arange(len(self.trees)), self.leaf_tree[self.supported(desired)])
        return self._cache[key]

    # ---- per person -------------------------------------------------------------------
    def bound(self, q: Any, values: Mapping[str, Any], desired: Any, factor: float = 1.0) -> dict:
        q.ub[self.cols[~self.supported(desired)]] = 0.0
        bare = self.bare_trees(desired)
        if bare.size:  # the solver certifies it; say why
            return {"infeasible": f"no counterfactual lies in supported leaves: no leaf of tree {int(bare[0])} "
                                  f"({bare.size} of {len(self.trees)} trees) is reached by {self.spec.min_samples} "
                                  f"or more training rows of class {desired!r}"}
        return {}

    def accepts(self, cf: pd.DataFrame, desired: Any) -> bool:
        return bool(np.all(self.supported_rows(cf, desired)))

    def incumbent(self, pruner: Any, values: Mapping[str, Any], desired: Any, q: Any) -> tuple[dict, float] | None:
        # a desired-class row may still sit in an unsupported leaf (labels, or a mislabelled
        # row under min_samples > 1): test every pool row, and every repair of it
        key = ("pool", id(pruner), str(desired))
        if key not in self._cache:
            self._cache[key] = (pruner.pool_pred == desired) & self.supported_rows(pruner.pool, desired)
        return self._repaired(pruner, values, desired, q, self._cache[key],
                              also=lambda frame: self.supported_rows(frame, desired))

    def report(self, cf: pd.DataFrame, desired: Any) -> dict:
        c = self.leaf_counts(cf, desired)[0]
        return {"kind": self.name, "score": float(c.min()), "support": int(c.min()),
                "min_samples": self.spec.min_samples, "trees": len(self.trees)}


def bind(spec: PlausibilityConstraint | None, model: Any, schema: Schema, cost: CostSpec,
         data: pd.DataFrame | None) -> _Bound | None:
    """The fitted block of a specification (a copy: the user's object is left as given)."""
    if spec is None:
        return None
    if not isinstance(spec, PlausibilityConstraint):
        raise TypeError(f"plausibility must be an IsolationForestConstraint, SupportConstraint or "
                        f"LeafSupportConstraint, got {type(spec).__name__}")
    return copy.copy(spec).bind(model, schema, cost, data)


__all__ = ["PlausibilityConstraint", "IsolationForestConstraint", "SupportConstraint", "LeafSupportConstraint",
           "nearest_distance", "lof_scores", "iforest_scores", "inlier_share", "evaluate", "pairwise_cost", "bind"]
