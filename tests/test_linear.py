"""Linear classifiers: optimum equals an LP solved independently (scipy) or a grid search."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog
from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
from sklearn.svm import LinearSVC

import mipcf
from oracles import grid_optimum

TOL = dict(rel=1e-5, abs=1e-5)


def _continuous_case(seed: int):
    rng = np.random.default_rng(seed)
    n, k = 200, 4
    X = pd.DataFrame(rng.normal(0, 1, (n, k)) * [1, 10, 100, 0.1], columns=list("abcd"))
    y = ((X.to_numpy() / [1, 10, 100, 0.1]) @ rng.normal(0, 1, k) + rng.normal(0, 0.3, n) > 0).astype(int)
    return X, y, rng


def lp_oracle(w, b, x0, lower, upper, weights, norm, free=None):
    """min cost s.t. w.(x0 + p - m) + b >= 0, lower <= x0 + p - m <= upper; p, m >= 0.

    ``free`` restricts which features may move (the others are fixed); linf adds t.
    """
    k = len(x0)
    free = np.ones(k, bool) if free is None else free
    ub_move_up = np.where(free, upper - x0, 0.0)
    ub_move_dn = np.where(free, x0 - lower, 0.0)
    bounds = [(0, u) for u in ub_move_up] + [(0, u) for u in ub_move_dn]
    A = [np.r_[-w, w]]
    rhs = [w @ x0 + b]
    if norm == "linf":
        c = np.r_[np.zeros(2 * k), 1.0]
        bounds.append((0, None))
        A = [np.r_[a, 0.0] for a in A]
        for j in range(k):  # weights_j (p_j + m_j) <= t  (p_j m_j = 0 at an optimum)
            row = np.zeros(2 * k + 1)
            row[j] = row[k + j] = weights[j]
            row[-1] = -1.0
            A.append(row)
            rhs.append(0.0)
    else:
        c = np.r_[weights, weights]
    res = linprog(c, A_ub=np.array(A), b_ub=np.array(rhs), bounds=bounds, method="highs")
    return res.fun if res.status == 0 else np.inf


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_lr_continuous_equals_lp(seed, norm):
    X, y, rng = _continuous_case(seed)
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X, real=list(X.columns))
    rec = mipcf.Recourse(model, schema, cost=norm, scale="range")
    lower = np.array([f.lower for f in schema.features])
    upper = np.array([f.upper for f in schema.features])
    weights = 1.0 / (upper - lower)
    denied = X[model.predict(X) == 0]
    for i in rng.choice(len(denied), 3, replace=False):
        x = denied.iloc[[i]]
        ex = rec.explain(x, desired_class=1)
        expected = lp_oracle(model.coef_[0], model.intercept_[0], x.to_numpy()[0], lower, upper, weights, norm)
        assert ex.status == "optimal"
        assert ex.cost == pytest.approx(expected, **TOL)
        assert model.predict(ex.counterfactual)[0] == 1


@pytest.mark.parametrize("seed", range(6))
def test_lr_continuous_l0_equals_subset_enumeration(seed):
    X, y, rng = _continuous_case(seed)
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X, real=list(X.columns), immutable=["a"])
    rec = mipcf.Recourse(model, schema, cost="l0")
    lower = np.array([f.lower for f in schema.features])
    upper = np.array([f.upper for f in schema.features])
    denied = X[model.predict(X) == 0]
    for i in rng.choice(len(denied), 3, replace=False):
        x = denied.iloc[[i]]
        x0 = x.to_numpy()[0]
        expected = np.inf
        for size in range(0, 4):
            for subset in itertools.combinations([1, 2, 3], size):
                free = np.isin(np.arange(4), subset)
                if np.isfinite(lp_oracle(model.coef_[0], model.intercept_[0] - 1e-9, x0, lower, upper,
                                         np.ones(4), "l1", free)):
                    expected = min(expected, size)
        ex = rec.explain(x, desired_class=1)
        if np.isfinite(expected):
            assert ex.status == "optimal" and ex.cost == expected
            assert float(ex.counterfactual.a.iloc[0]) == float(x.a.iloc[0])
        else:
            assert ex.status == "infeasible"


def _grid_case(seed: int, n_classes: int):
    rng = np.random.default_rng(seed)
    n = 150
    X = pd.DataFrame({"a": rng.integers(0, 6, n), "b": rng.integers(-3, 4, n), "c": rng.integers(0, 5, n)})
    s = X.to_numpy() @ rng.normal(0, 1, 3) + rng.normal(0, 0.5, n)
    y = np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y, rng


MODELS = {
    "lr": lambda: LogisticRegression(max_iter=1000),
    "svc": lambda: LinearSVC(),
    "sgd": lambda: SGDClassifier(random_state=0),
    "ridge": lambda: RidgeClassifier(),
}


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_integer_grid(seed, kind, n_classes):
    X, y, rng = _grid_case(seed, n_classes)
    model = MODELS[kind]().fit(X, y)
    actions = ["actionable", "increase_only", "decrease_only", "immutable"]
    act = [actions[int(rng.integers(0, 4))] if rng.random() < 0.4 else "actionable" for _ in range(3)]
    groups = {a: [c for c, aa in zip(X.columns, act) if aa == a] for a in actions[1:]}
    schema = mipcf.Schema.from_frame(X, **groups)
    ranges = [range(int(f.lower), int(f.upper) + 1) for f in schema.features]
    weights = np.array([1.0 / (f.upper - f.lower) for f in schema.features])
    norm = ("l0", "l1", "linf")[seed % 3]
    rec = mipcf.Recourse(model, schema, cost=norm)
    for i in rng.choice(len(X), 4, replace=False):
        x = X.iloc[[i]]
        desired = (model.predict(x)[0] + 1) % n_classes
        expected, _ = grid_optimum(model.predict, list(X.columns), x.to_numpy(float)[0], desired, ranges, act,
                                   weights, norm)
        ex = rec.explain(x, desired_class=desired)
        if not np.isfinite(expected):
            assert ex.status == "infeasible", ex
            continue
        assert ex.status == "optimal", ex
        assert ex.cost == pytest.approx(expected, **TOL)
        assert model.predict(ex.counterfactual)[0] == desired


def test_default_desired_class_is_the_other_one():
    X, y, _ = _grid_case(0, 2)
    model = LogisticRegression().fit(X, y)
    rec = mipcf.Recourse(model, mipcf.Schema.from_frame(X))
    x = X.iloc[[0]]
    ex = rec.explain(x)
    assert ex.desired_class == 1 - model.predict(x)[0]
    assert model.predict(ex.counterfactual)[0] == ex.desired_class


def test_already_desired_costs_nothing():
    X, y, _ = _grid_case(1, 2)
    model = LogisticRegression().fit(X, y)
    rec = mipcf.Recourse(model, mipcf.Schema.from_frame(X))
    x = X[model.predict(X) == 1].iloc[[0]]
    ex = rec.explain(x, desired_class=1)
    assert ex.status == "optimal" and ex.cost == 0.0 and ex.changes.empty
