"""Decision trees: the MILP optimum equals brute force over leaf boxes (>= 200 cases)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import mipcf
from oracles import ACTIONS, tree_optimum

NORMS = ("l0", "l1", "linf")


def _case(seed: int, n_classes: int = 2):
    rng = np.random.default_rng(seed)
    n = 300
    X = pd.DataFrame({
        "a": rng.normal(0, 1, n),
        "b": rng.integers(0, 12, n),
        "c": rng.uniform(-3, 3, n) * 1000.0,   # large magnitudes: float32 rounding matters
        "d": rng.integers(-5, 6, n),
    })
    score = X.a + 0.2 * X.b - X.c / 1000.0 + 0.3 * X.d + rng.normal(0, 0.7, n)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    y = np.digitize(score, edges)
    depth = int(rng.integers(2, 7))
    model = DecisionTreeClassifier(max_depth=depth, random_state=seed).fit(X, y)
    actions = {c: ACTIONS[int(rng.integers(0, 4))] if rng.random() < 0.5 else "actionable" for c in X.columns}
    groups = {k: [c for c, a in actions.items() if a == k] for k in ACTIONS[1:]}
    schema = mipcf.Schema.from_frame(X, **groups)
    return X, model, schema, rng


def _oracle_features(schema):
    out = []
    for f in schema.features:
        span = f.upper - f.lower
        out.append((f.lower, f.upper, f.type != "real", f.actionability, 1.0 / span if span > 0 else 1.0))
    return out


CASES = [(seed, NORMS[seed % 3], 2 + (seed % 5 == 0)) for seed in range(70)]


@pytest.mark.parametrize("seed,norm,n_classes", CASES)
def test_tree_optimum_equals_leaf_enumeration(seed, norm, n_classes):
    X, model, schema, rng = _case(seed, n_classes)
    rec = mipcf.Recourse(model, schema, cost=norm, scale="range")
    feats = _oracle_features(schema)
    rows = rng.choice(len(X), 3, replace=False)
    for i in rows:
        x = X.iloc[[i]]
        current = model.predict(x)[0]
        desired = (current + 1) % n_classes
        expected = tree_optimum(model, x.to_numpy(dtype=float)[0], int(desired), feats, norm)
        ex = rec.explain(x, desired_class=desired)
        if not np.isfinite(expected):
            assert ex.status == "infeasible", (ex, expected)
            continue
        assert ex.status == "optimal", ex
        assert ex.cost == pytest.approx(expected, rel=1e-6, abs=1e-6)
        cf = ex.counterfactual
        assert model.predict(cf)[0] == desired
        assert list(cf.columns) == list(x.columns) and (cf.dtypes == x.dtypes).all()
        for f in schema.features:
            before, after = float(x[f.name].iloc[0]), float(cf[f.name].iloc[0])
            assert f.lower <= after <= f.upper
            if f.actionability == "immutable":
                assert after == before
            elif f.actionability == "increase_only":
                assert after >= before
            elif f.actionability == "decrease_only":
                assert after <= before


def test_float32_boundary_is_routed_like_predict():
    """A threshold between two float32 values: the answer must land on the model's side."""
    X = pd.DataFrame({"x": [0.1, 0.1000003]})
    y = np.array([0, 1])
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X, real=["x"])
    ex = mipcf.Recourse(model, schema, cost="l1", scale="none").explain(X.iloc[[0]], desired_class=1)
    assert ex.status == "optimal"
    after = float(ex.counterfactual.x.iloc[0])
    assert model.predict(ex.counterfactual)[0] == 1
    t = float(model.tree_.threshold[0])
    assert 0.1 < t < 0.1000003
    assert np.float32(after) > t and np.float32(np.nextafter(np.float32(after), np.float32(0))) <= t
