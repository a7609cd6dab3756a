"""sklearn Pipelines / ColumnTransformer in front of a model, against independent oracles.

Oracles: (a) exhaustive grids over tiny integer domains judged by ``pipeline.predict``;
(b) the same estimator refitted on the pre-transformed data, with the transform written out
by hand in this file (closed form for logistic regression, enumeration of the hand-mapped
split points for trees); (c) bisection on raw float64 values with the pipeline's own
``predict`` for the exact side of a scaled split.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler, OneHotEncoder,
                                   OrdinalEncoder, PolynomialFeatures, RobustScaler, StandardScaler)
from sklearn.tree import DecisionTreeClassifier

import encoders
import mipcf
from encoders import MILP, NumericInput, UnsupportedModelError
from mipcf import Feature, Schema

LEVELS = ["free", "own", "rent"]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Tiny fits: BLAS threads only contend on the shared machine (20x slower LR fits)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):
        yield


# ---- helpers ------------------------------------------------------------------------------

def _int_data(seed: int, n: int = 160, levels=LEVELS) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.integers(0, 6, n), "b": rng.integers(0, 5, n), "h": rng.choice(levels, n)})
    bonus = df["h"].map({"own": 2.0, "rent": -1.0}).fillna(0.0)
    y = ((df["a"] - 1.2 * df["b"] + bonus + rng.normal(0, 1.0, n)) > 0.0).astype(int).to_numpy()
    return df, y


def _grid(schema: Schema, like: pd.DataFrame) -> pd.DataFrame:
    axes = []
    for f in schema.features:
        axes.append(list(range(int(f.lower), int(f.upper) + 1)) if f.is_numeric else list(f.levels))
    g = pd.DataFrame(list(itertools.product(*axes)), columns=schema.names)
    return g.astype(like.dtypes.to_dict())


def _grid_optimum(rc: mipcf.Recourse, pipe, row: pd.DataFrame, desired) -> float:
    """Cheapest grid point the pipeline gives ``desired`` that actionability allows."""
    schema = rc.schema
    g = _grid(schema, row)
    vals = schema.row_values(row.iloc[0])
    ok = np.asarray(pipe.predict(g)) == desired
    best = np.inf
    for _, r in g[ok].iterrows():
        after = schema.row_values(r)
        if any(f.actionability == "immutable" and after[f.name] != vals[f.name] for f in schema.features):
            continue
        best = min(best, rc.cost_spec.evaluate(schema, vals, after))
    return best


def _check_answer(ex, pipe, row: pd.DataFrame, oracle: float, levels=None) -> None:
    if not np.isfinite(oracle):
        assert ex.status == "infeasible", ex.message
        assert ex.counterfactual is None
        return
    assert ex.status == "optimal", ex.message
    assert ex.cost == pytest.approx(oracle, abs=1e-7)
    cf = ex.counterfactual
    assert pipe.predict(cf)[0] == ex.desired_class
    assert list(cf.dtypes) == list(row.dtypes)
    if levels is not None:
        assert isinstance(cf["h"].iloc[0], str) and cf["h"].iloc[0] in levels


def _maybe_skip_missing_encoder(exc: Exception) -> None:
    if "encoder is not available" in str(exc):
        pytest.skip(f"family encoder missing: {exc}")


# ---- (a) grid oracle over random pipelines ---------------------------------------------------

SCALERS = [StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler, lambda: "passthrough"]


def _random_pipeline(seed: int, model):
    rng = np.random.default_rng(100 + seed)
    sa, sb = (SCALERS[i]() for i in rng.integers(0, len(SCALERS), 2))
    cat = [OneHotEncoder(), OneHotEncoder(drop="first", sparse_output=False),
           OneHotEncoder(handle_unknown="ignore"), OrdinalEncoder(),
           OneHotEncoder(min_frequency=0.2, handle_unknown="infrequent_if_exist")][seed % 5]
    ct = ColumnTransformer([("sa", sa, ["a"]), ("sb", sb, ["b"]), ("cat", cat, ["h"])])
    return Pipeline([("pre", ct), ("clf", model)])


MODELS = {
    "logistic": lambda s: LogisticRegression(C=2.0),
    "tree": lambda s: DecisionTreeClassifier(max_depth=4, random_state=s),
    "forest": lambda s: RandomForestClassifier(n_estimators=6, max_depth=3, random_state=s),
}


@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize("seed", range(5))
def test_random_pipelines_match_grid(family, seed):
    df, y = _int_data(seed)
    levels = LEVELS + (["other"] if seed % 5 in (2, 4) else [])  # a schema level the encoder never saw
    pipe = _random_pipeline(seed, MODELS[family](seed)).fit(df, y)
    schema = Schema.from_frame(df)
    if len(levels) > len(LEVELS):
        schema = Schema([f if f.name != "h" else Feature("h", "categorical", levels=levels) for f in schema.features])
    cost = ["l1", "l0", "linf", {"l0": 1.0, "l1": 1.0}, "l1"][seed]
    if seed == 3:
        schema = schema.with_actionability(immutable=["b"])
    rc = mipcf.Recourse(pipe, schema, cost=cost, data=df if seed < 2 else None)  # pruning on / off
    pred = pipe.predict(df)
    rows = df[pred == 0].head(3)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        ex = rc.explain(row)
        _check_answer(ex, pipe, row, _grid_optimum(rc, pipe, row, 1), levels)


def test_unseen_level_is_all_zeros_under_ignore():
    """An 'other' level the OneHotEncoder never saw: sklearn gives it all zeros, so can we."""
    df, y = _int_data(7)
    pipe = Pipeline([("pre", ColumnTransformer([("oh", OneHotEncoder(handle_unknown="ignore"), ["h"])],
                                               remainder="passthrough")),
                     ("clf", LogisticRegression())]).fit(df, y)
    levels = LEVELS + ["other"]
    schema = Schema([Feature("a", "integer", 0, 5), Feature("b", "integer", 0, 5),
                     Feature("h", "categorical", levels=levels)])
    rc = mipcf.Recourse(pipe, schema, cost="l1")
    z = pipe[:-1].transform(pd.DataFrame({"a": [0], "b": [0], "h": ["other"]}))
    assert np.all(z[0, :3] == 0.0)
    rows = df[pipe.predict(df) == 0].head(4)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), levels)


def test_handle_unknown_error_refuses_unfitted_schema_level():
    df, y = _int_data(8)
    pipe = Pipeline([("pre", ColumnTransformer([("oh", OneHotEncoder(), ["h"])], remainder="passthrough")),
                     ("clf", LogisticRegression())]).fit(df, y)
    schema = Schema([Feature("a", "integer", 0, 5), Feature("b", "integer", 0, 5),
                     Feature("h", "categorical", levels=LEVELS + ["other"])])
    with pytest.raises(UnsupportedModelError, match=r"pre/oh.*other.*'h'"):
        mipcf.Recourse(pipe, schema).problem


def test_drop_first_and_if_binary_with_nested_pipelines_and_weights():
    """Nested Pipeline inside the ColumnTransformer, drop='first'/'if_binary', remainder
    passthrough, transformer weights and a sparse OneHotEncoder feeding StandardScaler(with_mean=False)."""
    rng = np.random.default_rng(11)
    n = 200
    df = pd.DataFrame({"a": rng.integers(0, 5, n), "g": rng.choice(["m", "f"], n), "h": rng.choice(LEVELS, n),
                       "c": rng.integers(0, 4, n)})
    y = ((df["a"] + (df["g"] == "m") * 2 - df["c"] + (df["h"] == "own") * 1.5 + rng.normal(0, 1, n)) > 1.5)
    y = y.astype(int).to_numpy()
    ct = ColumnTransformer([
        ("num", Pipeline([("mm", MinMaxScaler()), ("st", StandardScaler())]), ["a"]),
        ("bin", OneHotEncoder(drop="if_binary"), ["g"]),
        ("cat", Pipeline([("oh", OneHotEncoder(drop="first")), ("sc", StandardScaler(with_mean=False))]), ["h"]),
    ], remainder=RobustScaler(), transformer_weights={"num": 2.0, "cat": 0.5})
    schema = Schema.from_frame(df)
    for model in (LogisticRegression(), DecisionTreeClassifier(max_depth=5, random_state=0)):
        pipe = Pipeline([("pre", ct), ("clf", model)]).fit(df, y)
        rc = mipcf.Recourse(pipe, schema, cost="l1", data=df)
        rows = df[pipe.predict(df) == 0].head(4)
        for i in range(len(rows)):
            row = rows.iloc[[i]]
            _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1))


def test_sparse_matrix_scaling_uses_reciprocal_like_sklearn():
    """After a sparse ColumnTransformer, StandardScaler multiplies by 1/scale_; the
    self-check (exact equality with transform) would refuse the division form."""
    rng = np.random.default_rng(5)
    n = 150
    df = pd.DataFrame({"a": rng.integers(0, 7, n), "h": rng.choice(LEVELS, n)})
    y = ((df["a"] + (df["h"] == "rent") * 3 + rng.normal(0, 1, n)) > 4).astype(int).to_numpy()
    pipe = Pipeline([
        ("ct", ColumnTransformer([("oh", OneHotEncoder(), ["h"])], remainder="passthrough", sparse_threshold=1.0)),
        ("sc", StandardScaler(with_mean=False)),
        ("clf", DecisionTreeClassifier(max_depth=4, random_state=1)),
    ]).fit(df, y)
    assert hasattr(pipe[:-1].transform(df.head(2)), "toarray")  # really sparse
    schema = Schema.from_frame(df)
    rc = mipcf.Recourse(pipe, schema, cost="l1")
    rows = df[pipe.predict(df) == 0].head(4)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1))


def test_ordinal_text_feature_and_integer_onehot():
    """An ordinal text feature through OrdinalEncoder, an integer column through OneHotEncoder
    (its values enumerated), numpy-fitted columns selected by index and slice."""
    rng = np.random.default_rng(3)
    n = 200
    edu = ["basic", "high", "degree"]
    df = pd.DataFrame({"a": rng.integers(0, 4, n), "e": rng.choice(edu, n), "k": rng.integers(0, 3, n)})
    y = ((df["a"] + df["e"].map({"basic": 0, "high": 1, "degree": 2.5}) - (df["k"] == 1) * 2
          + rng.normal(0, 0.8, n)) > 2).astype(int).to_numpy()
    schema = Schema.from_frame(df, ordinal={"e": edu})
    pipe = Pipeline([("pre", ColumnTransformer([
        ("o", OrdinalEncoder(categories=[edu]), ["e"]),
        ("k", OneHotEncoder(), ["k"]),
        ("s", StandardScaler(), ["a"])])),
        ("clf", RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0))]).fit(df, y)
    rc = mipcf.Recourse(pipe, schema, cost="l1", data=df)
    rows = df[pipe.predict(df) == 0].head(4)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1))
    # numeric frame fitted as a numpy array: columns by position and slice
    X = df[["a", "k"]].astype(float)
    pos = Pipeline([("pre", ColumnTransformer([("s", StandardScaler(), slice(0, 1)), ("k", "passthrough", [1])])),
                    ("clf", DecisionTreeClassifier(max_depth=3, random_state=0))]).fit(X.to_numpy(), y)
    schema2 = Schema([Feature("a", "integer", 0, 3), Feature("k", "integer", 0, 2)])
    rc2 = mipcf.Recourse(pos, schema2, cost="l1")
    for i in np.nonzero(pos.predict(X.to_numpy()) == 0)[0][:3]:
        row = X.iloc[[i]]
        ex = rc2.explain(row)
        g = _grid(schema2, row)
        ok = pos.predict(g.to_numpy()) == 1
        vals = schema2.row_values(row.iloc[0])
        oracle = min((rc2.cost_spec.evaluate(schema2, vals, schema2.row_values(r)) for _, r in g[ok].iterrows()),
                     default=np.inf)
        assert ex.status == "optimal" and ex.cost == pytest.approx(oracle, abs=1e-9)


def test_mlp_behind_pipeline_matches_grid():
    pytest.importorskip("encoders.relu")
    from sklearn.neural_network import MLPClassifier
    df, y = _int_data(21)
    pipe = _random_pipeline(0, MLPClassifier((6,), max_iter=2000, random_state=0)).fit(df, y)
    schema = Schema.from_frame(df)
    try:
        rc = mipcf.Recourse(pipe, schema, cost="l1")
        rc.problem
    except UnsupportedModelError as exc:
        _maybe_skip_missing_encoder(exc)
        raise
    rows = df[pipe.predict(df) == 0].head(3)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), LEVELS)


# ---- (b) the same estimator on pre-transformed data, transform written by hand ----------------

def _real_data(seed: int, n: int = 240):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.uniform(-3, 7, n), "b": rng.uniform(10, 50, n), "h": rng.choice(LEVELS, n)})
    y = ((df["a"] - 0.2 * df["b"] + 2.5 * (df["h"] == "own") + rng.normal(0, 1.0, n)) > -3.0).astype(int).to_numpy()
    return df, y


def _hand_map(df: pd.DataFrame, mean, scale) -> np.ndarray:
    """StandardScaler and OneHotEncoder written out: [(a-m)/s, (b-m)/s, h==free, h==own, h==rent]."""
    num = (df[["a", "b"]].to_numpy(dtype=float) - mean) / scale
    return np.column_stack([num] + [(df["h"] == lv).to_numpy(dtype=float) for lv in LEVELS])


# per scaler: (forward, inverse) written out by hand from the fitted parameters
HAND = {
    "standard": (StandardScaler, lambda s: s.mean_, lambda s: s.scale_),
    "robust": (RobustScaler, lambda s: s.center_, lambda s: s.scale_),
    # x * scale_ + min_  ==  (x - (-min_ / scale_)) / (1 / scale_)
    "minmax": (MinMaxScaler, lambda s: -s.min_ / s.scale_, lambda s: 1 / s.scale_),
}


def _prep(kind: str = "standard"):
    return ColumnTransformer([("num", HAND[kind][0](), ["a", "b"]), ("cat", OneHotEncoder(), ["h"])])


def test_logistic_matches_closed_form_on_hand_mapped_model():
    """Fit LR on X_t, map its weights to raw units by hand, solve the l1 problem in closed form
    (fractional knapsack per level of h); the pipeline's optimum must agree."""
    df, y = _real_data(1)
    pre = _prep().fit(df)
    est_t = LogisticRegression(C=1.0).fit(pre.transform(df), y)
    pipe = Pipeline([("pre", pre), ("clf", clone(est_t).fit(pre.transform(df), y))])
    sc = pre.named_transformers_["num"]
    mean, scale = sc.mean_, sc.scale_
    w = est_t.coef_[0]
    w_raw = w[:2] / scale
    b_raw = est_t.intercept_[0] - np.sum(w[:2] * mean / scale)
    schema = Schema.from_frame(df)
    rc = mipcf.Recourse(pipe, schema, cost="l1")
    lo = np.array([schema["a"].lower, schema["b"].lower])
    hi = np.array([schema["a"].upper, schema["b"].upper])
    unit_cost = 1.0 / (hi - lo)
    rows = df[pipe.predict(df) == 0].head(8)
    assert len(rows) >= 5
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        x0 = row[["a", "b"]].to_numpy(dtype=float)[0]
        best = np.inf
        for k, lv in enumerate(LEVELS):
            deficit = -(w_raw @ x0 + b_raw + w[2 + k])  # score must rise above this
            c = 0.0 if lv == row["h"].iloc[0] else 1.0
            room = np.where(w_raw > 0, hi - x0, x0 - lo) * np.abs(w_raw)  # score gain available
            for j in np.argsort(unit_cost / np.abs(w_raw)):
                if deficit <= 0:
                    break
                take = min(deficit, room[j])
                c += take / abs(w_raw[j]) * unit_cost[j]
                deficit -= take
            if deficit <= 1e-12:
                best = min(best, c)
        ex = rc.explain(row)
        assert ex.status == "optimal", ex.message
        assert ex.cost == pytest.approx(best, rel=1e-5, abs=1e-6)
        assert pipe.predict(ex.counterfactual)[0] == 1


@pytest.mark.parametrize("kind,negate", [("tree", False), ("forest", False), ("tree", True)])
def test_trees_match_enumeration_of_hand_mapped_splits(kind, negate):
    _hand_mapped_tree_case(kind, negate, "standard", seed=2, n_rows=5)


@pytest.mark.slow
@pytest.mark.parametrize("scaler", sorted(HAND))
@pytest.mark.parametrize("seed", range(4))
def test_trees_match_hand_mapped_splits_many(scaler, seed):
    for kind, negate in (("tree", False), ("forest", False), ("forest", True)):
        _hand_mapped_tree_case(kind, negate, scaler, seed=10 + seed, n_rows=10, big=True)


def _hand_mapped_tree_case(kind: str, negate: bool, scaler: str, seed: int, n_rows: int, big: bool = False):
    """Fit the tree on X_t; map its thresholds to raw units by hand (t * scale + center) and
    enumerate the points just either side of each; the hand-mapped model judges them.
    ``negate``: the scaler's map made decreasing (larger raw values go left)."""
    df, y = _real_data(seed)
    pre = _prep(scaler).fit(df)
    num = pre.named_transformers_["num"]
    if negate:
        num.scale_ = -num.scale_
    Xt = pre.transform(df)
    depth, n_trees = (6, 15) if big else (4, 5)
    est = (DecisionTreeClassifier(max_depth=depth, random_state=3) if kind == "tree"
           else RandomForestClassifier(n_estimators=n_trees, max_depth=depth - 1, random_state=3))
    est_t = clone(est).fit(Xt, y)
    pipe = Pipeline([("pre", pre), ("clf", clone(est).fit(Xt, y))])
    mean, scale = HAND[scaler][1](num), HAND[scaler][2](num)
    schema = Schema.from_frame(df)
    rc = mipcf.Recourse(pipe, schema, cost="l1", data=df)
    trees = [est_t] if kind == "tree" else list(est_t.estimators_)
    raw_t = {0: set(), 1: set()}
    for t in trees:
        for f, thr in zip(t.tree_.feature, t.tree_.threshold):
            if f in (0, 1):
                raw_t[int(f)].add(float(thr) * scale[f] + mean[f])
    bounds = [(schema["a"].lower, schema["a"].upper), (schema["b"].lower, schema["b"].upper)]
    eps = [1e-7 * (u - l) for l, u in bounds]
    rows = df[pipe.predict(df) == 0].head(n_rows)
    assert len(rows) >= 3
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        x0 = row[["a", "b"]].to_numpy(dtype=float)[0]
        cands = []
        for f in (0, 1):
            c = {x0[f]} | {v + s * eps[f] for v in raw_t[f] for s in (-1, 1)}
            cands.append(sorted(v for v in c if bounds[f][0] <= v <= bounds[f][1]))
        pts = pd.DataFrame(list(itertools.product(cands[0], cands[1], LEVELS)), columns=["a", "b", "h"])
        ok = est_t.predict(_hand_map(pts, mean, scale)) == 1
        cost = (np.abs(pts["a"] - x0[0]) / (bounds[0][1] - bounds[0][0])
                + np.abs(pts["b"] - x0[1]) / (bounds[1][1] - bounds[1][0]) + (pts["h"] != row["h"].iloc[0]))
        oracle = float(cost[ok].min()) if ok.any() else np.inf
        ex = rc.explain(row)
        if not np.isfinite(oracle):
            assert ex.status == "infeasible", ex.message
            continue
        assert ex.status == "optimal", ex.message
        # the exact optimum sits on a split boundary, the oracle's point eps beyond it
        assert oracle - 3e-7 <= ex.cost <= oracle + 1e-9
        assert pipe.predict(ex.counterfactual)[0] == 1


# ---- (c) float-exact routing of splits on scaled values ---------------------------------------

def _naive_wrong_case():
    """A StandardScaler + depth-1 tree whose naive inverse t * scale_ + mean_ (and the next
    float64 above it) still goes left under the model's float32 comparison."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 1000, 60)
        y = (x > 500).astype(int)
        X = pd.DataFrame({"x": x})
        pipe = Pipeline([("sc", StandardScaler()), ("clf", DecisionTreeClassifier(max_depth=1))]).fit(X, y)
        sc, tree = pipe[0], pipe[-1]
        t = float(tree.tree_.threshold[0])
        naive = float(np.nextafter(t * sc.scale_[0] + sc.mean_[0], np.inf))
        left_cls = tree.classes_[np.argmax(tree.tree_.value[tree.tree_.children_left[0], 0])]
        if pipe.predict(pd.DataFrame({"x": [naive]}))[0] == left_cls:
            return pipe, X, naive, left_cls
    pytest.fail("no seed gives a naive inverse on the wrong float side")


def test_scaled_split_routes_exactly_where_naive_inverse_fails():
    pipe, X, naive, left_cls = _naive_wrong_case()
    right_cls = 1 - left_cls
    # oracle: bisection on raw float64 values with the pipeline's own predict
    lo, hi = float(X["x"].min()), float(X["x"].max())
    pred = lambda v: pipe.predict(pd.DataFrame({"x": [v]}))[0]  # noqa: E731
    a, b = (lo, hi) if pred(lo) == left_cls else (hi, lo)
    ia, ib = np.float64(a).view(np.int64), np.float64(b).view(np.int64)
    while abs(int(ib) - int(ia)) > 1:  # positive floats: integer order is float order
        m = np.int64((int(ia) + int(ib)) // 2)
        if pred(float(m.view(np.float64))) == left_cls:
            ia = m
        else:
            ib = m
    boundary = float(np.int64(ib).view(np.float64))  # first raw value routed right
    assert naive < boundary or pred(naive) == left_cls
    schema = Schema([Feature("x", "real", lo, hi)])
    rc = mipcf.Recourse(pipe, schema, cost="l1")
    start = X[pipe.predict(X) == left_cls].iloc[[0]]
    ex = rc.explain(start, desired_class=right_cls)
    assert ex.status == "optimal", ex.message
    assert pipe.predict(ex.counterfactual)[0] == right_cls
    assert float(ex.counterfactual["x"].iloc[0]) == boundary  # exactly the first accepted float
    # the encoder's own cut agrees with the bisection
    t = float(pipe[-1].tree_.threshold[0])
    sc = pipe[0]
    inp = NumericInput(0, lo, hi, a=1 / sc.scale_[0], b=-sc.mean_[0] / sc.scale_[0],
                       transform=lambda v: (v - sc.mean_[0]) / sc.scale_[0])
    left_max, right_min = inp.cut(t)
    assert right_min == boundary and pred(left_max) == left_cls


# ---- decreasing maps (negative scale) ----------------------------------------------------------

@pytest.mark.parametrize("family", ["logistic", "tree"])
def test_negative_scale_is_handled(family):
    df, y = _int_data(4)
    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("oh", OneHotEncoder(), ["h"])]).fit(df)
    num = ct.named_transformers_["num"]
    num.scale_ = -num.scale_  # a decreasing map: trees see larger raw values on the left
    Xt = ct.transform(df)
    assert np.all(np.diff(ct.transform(df.sort_values("a"))[:, 0]) <= 0)
    model = LogisticRegression() if family == "logistic" else DecisionTreeClassifier(max_depth=4, random_state=0)
    pipe = Pipeline([("pre", ct), ("clf", model.fit(Xt, y))])
    schema = Schema.from_frame(df)
    rc = mipcf.Recourse(pipe, schema, cost="l1", data=df)
    rows = df[pipe.predict(df) == 0].head(4)
    assert len(rows)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), LEVELS)


# ---- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("step,cls,model,says", [
    (PolynomialFeatures(2), "PolynomialFeatures", LogisticRegression(), "supported steps: Pipeline"),
    (FunctionTransformer(np.tanh), "FunctionTransformer", LogisticRegression(), "supported steps: Pipeline"),
    (PCA(1), "PCA", DecisionTreeClassifier(max_depth=2), "only in front of linear models and MLPs")])
def test_unsupported_step_is_named(step, cls, model, says):
    df, y = _int_data(0)
    pipe = Pipeline([("pre", ColumnTransformer([("num", Pipeline([("sc", StandardScaler()), ("odd", step)]),
                                                 ["a", "b"]), ("oh", OneHotEncoder(), ["h"])])),
                     ("clf", model)]).fit(df, y)
    with pytest.raises(UnsupportedModelError, match=rf"'pre/num/odd' \({cls}\).*{says}"):
        mipcf.Recourse(pipe, Schema.from_frame(df))
    milp = MILP()
    inputs = {c: NumericInput(milp.add_var(0, 5, True), 0, 5, True, name=c) for c in ("a", "b")}
    inputs["h"] = encoders.CategoryInput(LEVELS, [encoders.LinExpr.var(milp.add_var(0, 1, True)) for _ in LEVELS])
    with pytest.raises(UnsupportedModelError, match=rf"'pre/num/odd' \({cls}\).*{says}"):
        encoders.encode_model(milp, pipe, inputs, ["a", "b", "h"])


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_in_front_of_linear_and_mlp_matches_grid(whiten):
    """PCA is an affine map: exact (up to rounding, covered by the margin) for linear models
    and ReLU networks; the grid judges with the pipeline's predict."""
    df, y = _int_data(13)
    models = [LogisticRegression()]
    try:
        import encoders.relu  # noqa: F401
        from sklearn.neural_network import MLPClassifier
        models.append(MLPClassifier((5,), max_iter=3000, random_state=0))
    except ImportError:
        pass
    for model in models:
        pipe = Pipeline([("pre", ColumnTransformer([
            ("num", Pipeline([("sc", StandardScaler()), ("pca", PCA(2, whiten=whiten))]), ["a", "b"]),
            ("oh", OneHotEncoder(), ["h"])])), ("sc2", StandardScaler()), ("clf", model)]).fit(df, y)
        schema = Schema.from_frame(df)
        rc = mipcf.Recourse(pipe, schema, cost="l1")
        rows = df[pipe.predict(df) == 0].head(3)
        assert len(rows)
        for i in range(len(rows)):
            row = rows.iloc[[i]]
            _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), LEVELS)


def test_text_column_reaching_the_model_is_refused():
    df, y = _int_data(0)
    pipe = Pipeline([("pre", ColumnTransformer([("sc", StandardScaler(), ["a", "b"])], remainder="passthrough")),
                     ("clf", DecisionTreeClassifier(max_depth=2))])
    pipe.fit(df.assign(h=(df["h"] == "own").astype(float)), y)  # fitted on a numeric h
    with pytest.raises(UnsupportedModelError, match=r"'h'.*text levels.*OneHotEncoder"):
        mipcf.Recourse(pipe, Schema.from_frame(df)).problem


def test_clipping_scaler_refused_only_when_it_bites():
    df, y = _int_data(0)
    for wide, ok in ((False, True), (True, False)):
        pipe = Pipeline([("pre", ColumnTransformer([("mm", MinMaxScaler(clip=True), ["a", "b"]),
                                                    ("oh", OneHotEncoder(), ["h"])])),
                         ("clf", LogisticRegression())]).fit(df, y)
        hi = 9 if wide else int(df["a"].max())
        schema = Schema([Feature("a", "integer", 0, hi), Feature("b", "integer", 0, 4),
                         Feature("h", "categorical", levels=LEVELS)])
        if ok:
            mipcf.Recourse(pipe, schema).problem
        else:
            with pytest.raises(UnsupportedModelError, match=r"'pre/mm' \(MinMaxScaler, clip=True\).*'a'"):
                mipcf.Recourse(pipe, schema).problem


def test_imputer_without_missing_values_is_identity():
    df, y = _int_data(9)
    pipe = Pipeline([("pre", ColumnTransformer([
        ("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), ["a", "b"]),
        ("cat", Pipeline([("imp", SimpleImputer(strategy="most_frequent")), ("oh", OneHotEncoder())]), ["h"])])),
        ("clf", DecisionTreeClassifier(max_depth=4, random_state=0))]).fit(df, y)
    schema = Schema.from_frame(df)
    rc = mipcf.Recourse(pipe, schema, cost="l1")
    rows = df[pipe.predict(df) == 0].head(3)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), LEVELS)
    bad = Pipeline([("imp", SimpleImputer(missing_values=0, strategy="mean")),
                    ("clf", LogisticRegression())]).fit(df[["a", "b"]], y)
    with pytest.raises(UnsupportedModelError, match=r"'imp' \(SimpleImputer\).*0"):
        mipcf.Recourse(bad, Schema.from_frame(df[["a", "b"]])).problem


# ---- the self-check against sklearn's transform ----------------------------------------------

def _pipelines_for_check():
    df, y = _int_data(12)
    out = []
    for seed in range(5):
        out.append((_random_pipeline(seed, LogisticRegression()).fit(df, y), df))
    sparse = Pipeline([
        ("ct", ColumnTransformer([("oh", OneHotEncoder(), ["h"])], remainder="passthrough", sparse_threshold=1.0)),
        ("sc", StandardScaler(with_mean=False)), ("clf", LogisticRegression())]).fit(df, y)
    out.append((sparse, df))
    return out


def _inputs_for(milp: MILP, schema: Schema) -> dict:
    from mipcf.problem import _feature_block
    inputs = {}
    for f in schema.features:
        inputs.update(_feature_block(milp, f)[1])
    return inputs


def test_self_check_runs_and_catches_a_wrong_column_order(monkeypatch):
    import encoders.pipeline as ep
    ran = []
    real = ep._self_check
    monkeypatch.setattr(ep, "_self_check", lambda *a: ran.append(real(*a)) or ran[-1])
    for pipe, df in _pipelines_for_check():
        milp = MILP()
        schema = Schema.from_frame(df)
        ep.pipeline_inputs(milp, pipe, _inputs_for(milp, schema), schema.columns)
    assert ran and all(ran)  # never skipped on these pipelines
    # a deliberately wrong walk (ColumnTransformer outputs reversed) is caught
    real_ct = ep._Walk.column_transformer
    monkeypatch.setattr(ep._Walk, "column_transformer",
                        lambda self, *a: (lambda r: (r[0][::-1], r[1]))(real_ct(self, *a)))
    pipe, df = _pipelines_for_check()[0]
    milp = MILP()
    schema = Schema.from_frame(df)
    with pytest.raises(ArithmeticError, match="disagrees with the pipeline's transform"):
        ep.pipeline_inputs(milp, pipe, _inputs_for(milp, schema), schema.columns)


# ---- boosting behind a pipeline ------------------------------------------------------------

def _boosting_models():
    from sklearn.ensemble import GradientBoostingClassifier
    out = {"gb": lambda: GradientBoostingClassifier(n_estimators=8, max_depth=2, random_state=0)}
    try:
        import xgboost
        out["xgb"] = lambda: xgboost.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1)
    except ImportError:
        pass
    try:
        import lightgbm
        out["lgbm"] = lambda: lightgbm.LGBMClassifier(n_estimators=8, max_depth=2, n_jobs=1, verbose=-1,
                                                      min_child_samples=5)
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("name", ["gb", "xgb", "lgbm"])
def test_boosting_behind_pipeline_matches_grid(name):
    models = _boosting_models()
    if name not in models:
        pytest.skip(f"{name} not installed")
    for seed in (1, 2):
        df, y = _int_data(seed)
        pipe = _random_pipeline(seed, models[name]()).fit(df, y)
        schema = Schema.from_frame(df)
        try:
            rc = mipcf.Recourse(pipe, schema, cost="l1", data=df if seed == 1 else None)
        except UnsupportedModelError as exc:
            _maybe_skip_missing_encoder(exc)
            raise
        rows = df[pipe.predict(df) == 0].head(3)
        for i in range(len(rows)):
            row = rows.iloc[[i]]
            _check_answer(rc.explain(row), pipe, row, _grid_optimum(rc, pipe, row, 1), LEVELS + ["other"])


def test_category_dtype_columns_and_column_selectors():
    """pandas category / bool columns, columns picked by make_column_selector; the
    counterfactual keeps every dtype (the category column stays a category column)."""
    from sklearn.compose import make_column_selector
    rng = np.random.default_rng(0)
    n = 160
    df = pd.DataFrame({"a": rng.integers(0, 6, n), "h": pd.Categorical(rng.choice(LEVELS, n)),
                       "ok": rng.random(n) > 0.5})
    y = ((df["a"] + 3 * (df["h"] == "rent") + df["ok"] + rng.normal(0, 1, n)) > 5).astype(int).to_numpy()
    pipe = Pipeline([("ct", ColumnTransformer([
        ("n", StandardScaler(), make_column_selector(dtype_include="number")),
        ("c", OneHotEncoder(), make_column_selector(dtype_include="category"))], remainder="passthrough")),
        ("clf", DecisionTreeClassifier(max_depth=4, random_state=0))]).fit(df, y)
    schema = Schema.from_frame(df)
    assert [f.type for f in schema.features] == ["integer", "categorical", "binary"]
    rc = mipcf.Recourse(pipe, schema, cost="l1", data=df)
    rows = df[pipe.predict(df) == 0].head(3)
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        ex = rc.explain(row)
        oracle = _grid_optimum(rc, pipe, row, 1)
        assert ex.status == "optimal" and ex.cost == pytest.approx(oracle, abs=1e-9)
        assert ex.counterfactual.dtypes.to_dict() == row.dtypes.to_dict()
        assert pipe.predict(ex.counterfactual)[0] == 1
