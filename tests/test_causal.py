"""Causal recourse: SCMs, hard / additive interventions, robust recourse, the loan demo.

Oracles are independent of the MILP: hand-computed answers (DESIGN.md section 6), closed
forms for the robust margin, and brute force over integer grids with the structural
equations written out by hand in the test.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mipcf
from mipcf import SCM, SCMError, Schema

REL = 1e-6


def linear_model(columns, coef, intercept):
    """A LogisticRegression deciding ``coef . x + intercept > 0`` (weights set by hand)."""
    X = pd.DataFrame(np.eye(len(columns)) * 1.0, columns=columns)
    m = LogisticRegression().fit(pd.concat([X, -X]), [1] * len(columns) + [0] * len(columns))
    m.coef_ = np.array([coef], dtype=float)
    m.intercept_ = np.array([intercept], dtype=float)
    return m


# ---- salary / savings (DESIGN.md section 6) -------------------------------------------

@pytest.fixture(scope="module")
def salary():
    X = pd.DataFrame({"salary": [75000.0], "savings": [25000.0]})
    model = linear_model(["salary", "savings"], [1.0, 5.0], -225000.0)
    bounds = {"salary": (0.0, 200000.0), "savings": (0.0, 100000.0)}
    schema = Schema.from_frame(X, real=["salary", "savings"], not_actionable=["savings"], bounds=bounds)
    scm = SCM.linear({"savings": {"salary": 0.3}})
    return X, model, schema, scm


def test_salary_savings_causal_vs_blind(salary):
    X, model, schema, scm = salary
    assert model.predict(X)[0] == 0
    ex = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm).explain(X)
    assert ex.status == "optimal"
    assert ex.cost == pytest.approx(10000.0, rel=REL)
    cf = ex.counterfactual.iloc[0]
    assert cf["salary"] == pytest.approx(85000.0, rel=REL)
    assert cf["savings"] == pytest.approx(28000.0, rel=REL)
    assert cf["savings"] == pytest.approx(25000.0 + 0.3 * (cf["salary"] - 75000.0), rel=1e-12)
    assert list(ex.interventions["feature"]) == ["salary"]
    assert model.predict(ex.counterfactual)[0] == 1
    blind = mipcf.Recourse(model, schema, cost="l1", scale="none").explain(X)
    assert blind.cost == pytest.approx(25000.0, rel=REL)
    assert blind.counterfactual.iloc[0]["savings"] == 25000.0


def test_salary_savings_additive_equals_hard_for_a_root(salary):
    X, model, schema, scm = salary
    ex = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm, intervention="additive").explain(X)
    assert ex.cost == pytest.approx(10000.0, rel=REL)


@pytest.mark.parametrize("norm, increase", [("l2", 10000 + 559.01699437 / 2.5), ("linf", 10300.0),
                                            ("l1", 10200.0)])
def test_robust_margin_closed_form(salary, norm, increase):
    X, model, schema, scm = salary
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm, intervention="additive",
                         robust={"epsilon": 100, "norm": norm})
    ex = rec.explain(X)
    assert ex.status == "optimal"
    assert ex.cost == pytest.approx(increase, rel=REL)
    if norm == "l2":
        assert ex.cost == pytest.approx(10223.61, abs=0.01)
    # worst case over the ball ||du|| <= 100 in noise space, written out by hand:
    # x1 = u1, x2 = 0.3 x1 + u2, so d(score)/du = (1 + 5 * 0.3, 5) = (2.5, 5)
    v = np.array([2.5, 5.0])
    du = {"l2": -100 * v / np.linalg.norm(v), "linf": -100 * np.sign(v), "l1": np.array([0.0, -100.0])}[norm]
    delta = ex.counterfactual.iloc[0]["salary"] - 75000.0
    x1 = 75000.0 + du[0] + delta
    x2 = 25000.0 + du[1] + 0.3 * (du[0] + delta)
    assert x1 + 5 * x2 - 225000.0 == pytest.approx(0.0, abs=1e-2)       # exactly at the boundary
    # and every other point of the ball is approved (random sample, projected onto the ball)
    rng = np.random.default_rng(0)
    for d in rng.normal(size=(200, 2)):
        d = 100 * d / np.linalg.norm(d, ord={"l2": 2, "linf": np.inf, "l1": 1}[norm])
        s = (75000 + d[0] + delta) + 5 * (25000 + d[1] + 0.3 * (d[0] + delta)) - 225000
        assert s >= -1e-2


def test_robust_needs_additive_and_linear(salary):
    X, model, schema, scm = salary
    with pytest.raises(ValueError, match="additive"):
        mipcf.Recourse(model, schema, scm=scm, robust={"epsilon": 1}).explain(X)
    with pytest.raises(ValueError, match="norm"):
        mipcf.Recourse(model, schema, scm=scm, intervention="additive",
                       robust={"epsilon": 1, "norm": "l3"}).explain(X)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(
        pd.DataFrame({"salary": [0.0, 1e5, 2e5, 5e4], "savings": [0.0, 5e4, 1e5, 0.0]}), [0, 1, 1, 0])
    with pytest.raises(SCMError, match="linear"):
        mipcf.Recourse(tree, schema, scm=scm, intervention="additive", robust={"epsilon": 1}).explain(X)


def test_robust_without_scm_is_a_feature_ball(salary):
    X, model, schema, _ = salary
    s2 = schema.with_actionability(actionable=["savings"])
    ex = mipcf.Recourse(model, s2, cost="l1", scale="none", robust={"epsilon": 100, "norm": "l2"}).explain(X)
    # no causal links: cheapest is savings (weight 5): (25000 + 100 * ||(1, 5)||_2) / 5
    assert ex.cost == pytest.approx((25000 + 100 * np.sqrt(26)) / 5, rel=REL)


# ---- the blind nearest point is not a valid action (DESIGN.md section 6) ------------------

@pytest.fixture(scope="module")
def chain():
    X = pd.DataFrame({"x1": [0.0], "x2": [0.0]})
    model = linear_model(["x1", "x2"], [1.0, -2.0], -1.0)
    schema = Schema.from_frame(X, real=["x1", "x2"], not_actionable=["x2"],
                               bounds={"x1": (-5.0, 5.0), "x2": (-5.0, 5.0)})
    return X, model, schema, SCM.linear({"x2": {"x1": 1.0}})


@pytest.mark.parametrize("intervention", ["hard", "additive"])
def test_blind_nearest_fails_when_executed(chain, intervention):
    X, model, schema, scm = chain
    blind = mipcf.Recourse(model, schema, cost="l1", scale="none").explain(X)
    assert blind.counterfactual.iloc[0].tolist() == pytest.approx([1.0, 0.0], abs=1e-5)  # + the margin
    executed = pd.DataFrame({"x1": [1.0], "x2": [1.0 + 0.0]})  # do(x1 := 1): x2 = x1 + u2, u2 = 0
    assert model.predict(executed)[0] == 0
    ex = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm, intervention=intervention).explain(X)
    assert ex.status == "optimal" and ex.cost == pytest.approx(1.0, abs=1e-5)
    cf = ex.counterfactual.iloc[0]
    assert cf["x1"] == pytest.approx(-1.0, abs=1e-5) and cf["x2"] == cf["x1"]
    assert ex.interventions.to_dict("records") == [{"feature": "x1", "before": 0.0, "after": cf["x1"]}]


def test_holding_an_actionable_child_fixed_cuts_its_parents(chain):
    """x2 actionable: do(x2 := -0.5) (cost 0.5) beats moving x1; a hard intervention cuts x1 -> x2."""
    X, model, schema, scm = chain
    s2 = schema.with_actionability(actionable=["x2"])
    ex = mipcf.Recourse(model, s2, cost="l1", scale="none", scm=scm).explain(X)
    assert ex.cost == pytest.approx(0.5, abs=1e-5)
    assert list(ex.interventions["feature"]) == ["x2"]
    assert ex.counterfactual.iloc[0]["x1"] == 0.0


def test_scm_without_edges_is_the_nearest_counterfactual():
    from mipcf.demo import credit_data

    X, y = credit_data(n=300)
    X = X[["age", "sex", "income", "debt", "late_payments"]]
    model = LogisticRegression(max_iter=5000).fit(X, y)
    schema = Schema.from_frame(X, immutable=["sex"], increase_only=["age"], decrease_only=["late_payments"],
                               bounds={"income": (0.0, 20000.0), "debt": (0.0, 60000.0)})
    denied = X[model.predict(X) == 0].head(4)
    plain = mipcf.Recourse(model, schema, cost="l1")
    causal = mipcf.Recourse(model, schema, cost="l1", scm=SCM())
    for i in range(len(denied)):
        a, b = plain.explain(denied.iloc[[i]]), causal.explain(denied.iloc[[i]])
        assert a.status == b.status == "optimal"
        assert b.cost == pytest.approx(a.cost, rel=REL)
        pd.testing.assert_frame_equal(a.counterfactual, b.counterfactual, rtol=1e-6)


# ---- piecewise-linear equations, hand-computed -------------------------------------------

@pytest.mark.parametrize("equation, x1, cost", [
    ("0.5 * relu(x1 - 20)", 20.0, 20.0),            # savings respond above 20: x1 = 40
    ("2 * max(x1, 30) - 60", 20.0, 15.0),           # flat until 30, then slope 2: x1 = 35
    ("abs(x1 - 50)", 50.0, 10.0),                   # either way: x1 = 40 or 60
    ("table(x1, [[0, 0], [10, 5], [20, 5], [30, 35]])", 0.0, 20 + 5 / 3),  # flat, then 5 + 3 (x1 - 20)
    ("-min(x1 - 60, 0)", 60.0, 10.0),               # rises below 60: x1 = 50
])
def test_piecewise_equations(equation, x1, cost):
    X = pd.DataFrame({"x1": [x1], "x2": [0.0]})
    # x2 not actionable; the model looks at x2 only: approve iff x2 >= 10
    model = linear_model(["x1", "x2"], [0.0, 1.0], -10.0)
    schema = Schema.from_frame(X, real=["x1", "x2"], not_actionable=["x2"],
                               bounds={"x1": (0.0, 100.0), "x2": (-100.0, 100.0)})
    scm = SCM({"x2": equation})
    u2 = 0.0 - scm.equations["x2"].value({"x1": x1})
    ex = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm).explain(X)
    assert ex.status == "optimal" and ex.cost == pytest.approx(cost, rel=REL)
    cf = ex.counterfactual.iloc[0]
    assert cf["x2"] >= 10.0 and model.predict(ex.counterfactual)[0] == 1
    assert cf["x2"] == pytest.approx(scm.equations["x2"].value({"x1": cf["x1"]}) + u2, abs=1e-9)


def test_product_with_a_fixed_binary():
    """x2 := 2 g x1 + u2 with g immutable: x1 moves x2 only for g = 1."""
    X = pd.DataFrame({"g": [1, 0], "x1": [0.0, 0.0], "x2": [0.0, 0.0]})
    model = linear_model(["g", "x1", "x2"], [0.0, 1.0, 1.0], -6.0)  # approve iff x1 + x2 >= 6
    schema = Schema.from_frame(X, immutable=["g"], real=["x1", "x2"], not_actionable=["x2"],
                               bounds={"x1": (0.0, 10.0), "x2": (0.0, 30.0)})
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=SCM({"x2": "2 * g * x1"}))
    assert rec.explain(X.iloc[[0]]).cost == pytest.approx(2.0, rel=REL)  # x1 = 2, x2 = 4
    assert rec.explain(X.iloc[[1]]).cost == pytest.approx(6.0, rel=REL)  # x1 = 6, x2 = 0


@pytest.mark.parametrize("g, factor", [(1, 3.0), (0, 1.0)])
def test_robust_margin_with_a_fixed_binary_product(g, factor):
    """x2 := 2 g x1 + u2: J^T w = (1 + 2 g, 1), so shifting x1 by d adds (1 + 2 g) d."""
    X = pd.DataFrame({"g": [g], "x1": [0.0], "x2": [0.0]})
    model = linear_model(["g", "x1", "x2"], [0.0, 1.0, 1.0], -6.0)
    schema = Schema([mipcf.Feature("g", "binary", actionability="immutable"),
                     mipcf.Feature("x1", "real", -50.0, 50.0),
                     mipcf.Feature("x2", "real", -100.0, 100.0, actionability="not_actionable")])
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=SCM({"x2": "2 * g * x1"}),
                         intervention="additive", robust={"epsilon": 0.5, "norm": "l2"})
    ex = rec.explain(X, 1)
    assert ex.cost == pytest.approx((6 + 0.5 * np.hypot(factor, 1.0)) / factor, rel=REL)


def test_robust_on_a_piecewise_scm_names_the_term(loan):
    X, _, model, schema, scm = loan
    denied = X[model.predict(X) == 0].iloc[[0]]
    rec = mipcf.Recourse(model, schema, scm=scm, intervention="additive", robust={"epsilon": 1})
    with pytest.raises(SCMError, match="relu"):
        rec.explain(denied, 1)
    # the perturbation of loan amount and duration never reaches the relu: fine
    rec = mipcf.Recourse(model, schema, scm=scm, intervention="additive",
                         robust={"epsilon": 1, "features": ["loan_amount", "duration"]})
    assert rec.explain(denied, 1).status == "optimal"


# ---- trees and forests against brute force on an integer grid -----------------------------

GRID = range(0, 5)


def propagate_by_hand(x, do, additive):
    """The test's own SCM: x2 := x1 + u2 - 1, x3 := max(x2 - 2, 0) + abs(x1 - 2) + u3."""
    x1, x2, x3 = x
    u2 = x2 - (x1 - 1)
    u3 = x3 - (max(x2 - 2, 0) + abs(x1 - 2))
    if additive:
        n1 = x1 + do.get(0, 0)
        n2 = n1 - 1 + u2 + do.get(1, 0)
        n3 = max(n2 - 2, 0) + abs(n1 - 2) + u3 + do.get(2, 0)
        return n1, n2, n3
    n1 = do.get(0, x1)
    n2 = do[1] if 1 in do else n1 - 1 + u2
    n3 = do[2] if 2 in do else max(n2 - 2, 0) + abs(n1 - 2) + u3
    return n1, n2, n3


def brute_force(model, x, actionable, additive):
    """Cheapest l1 action over every intervention with values on the grid."""
    options = [[None] + (list(GRID) if a else []) for a in actionable]
    worlds, costs = [], []
    for choice in itertools.product(*options):
        if additive:
            do = {i: v - x[i] for i, v in enumerate(choice) if v is not None and v != x[i]}
        else:
            do = {i: v for i, v in enumerate(choice) if v is not None}
        w = propagate_by_hand(x, do, additive)
        if all(GRID.start <= c <= GRID.stop - 1 for c in w):
            worlds.append(w)
            costs.append(sum(abs(v - x[i]) for i, v in enumerate(choice) if v is not None))
    pred = model.predict(pd.DataFrame(worlds, columns=["x1", "x2", "x3"], dtype=float))
    ok = [c for c, p in zip(costs, pred) if p == 1]
    return min(ok) if ok else None


@pytest.fixture(scope="module")
def grid_data():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.integers(0, 5, size=(300, 3)), columns=["x1", "x2", "x3"])
    y = ((X.x1 + 2 * X.x2 + 1.5 * X.x3 + rng.normal(0, 1.5, 300)) > 8).astype(int)
    return X, y.to_numpy()


def check_against_brute_force(grid_data, kind, intervention, n_people):
    X, y = grid_data
    model = (DecisionTreeClassifier(max_depth=5, random_state=0) if kind == "tree"
             else RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)).fit(X, y)
    schema = Schema.from_frame(X, integer=["x1", "x2", "x3"], not_actionable=["x3"],
                               bounds={c: (0, 4) for c in X.columns})
    scm = SCM({"x2": "x1 - 1", "x3": "max(x2 - 2, 0) + abs(x1 - 2)"})
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm, intervention=intervention)
    people = [tuple(p) for p in itertools.product(GRID, repeat=3)]
    rng = np.random.default_rng(1)
    checked = 0
    for k in rng.permutation(len(people)):
        x = people[k]
        row = pd.DataFrame([x], columns=["x1", "x2", "x3"])
        if model.predict(row)[0] == 1:
            continue
        oracle = brute_force(model, x, [True, True, False], intervention == "additive")
        ex = rec.explain(row, 1)
        if oracle is None:
            assert ex.status == "infeasible"
        else:
            assert ex.status == "optimal", (x, ex)
            assert ex.cost == pytest.approx(oracle, rel=REL), (x, ex.interventions)
            assert model.predict(ex.counterfactual)[0] == 1
            do = {["x1", "x2", "x3"].index(r.feature): (r.after - r.before if intervention == "additive" else r.after)
                  for r in ex.interventions.itertuples()}
            world = propagate_by_hand(x, do, intervention == "additive")
            assert ex.counterfactual.iloc[0].tolist() == pytest.approx(list(world))
        checked += 1
        if checked == n_people:
            break
    return checked


@pytest.mark.parametrize("kind, n_people", [("tree", 12), ("forest", 6)])
@pytest.mark.parametrize("intervention", ["hard", "additive"])
def test_tree_models_against_brute_force(grid_data, kind, n_people, intervention):
    assert check_against_brute_force(grid_data, kind, intervention, n_people) == n_people


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tree", "forest"])
@pytest.mark.parametrize("intervention", ["hard", "additive"])
def test_tree_models_against_brute_force_every_denied_person(grid_data, kind, intervention):
    assert check_against_brute_force(grid_data, kind, intervention, 125) > 20


@pytest.mark.slow
def test_loan_forest_real_valued_children():
    """Real-valued recomputed inputs meet float32 splits: every world must pass predict."""
    from mipcf.loan import loan_data, loan_spec

    schema, scm, _ = loan_spec()
    X, y = loan_data(n=600)
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    denied = X[model.predict(X) == 0].head(6)
    for intervention in ("hard", "additive"):
        rec = mipcf.Recourse(model, schema, scm=scm, intervention=intervention, time_limit=120)
        other = mipcf.Recourse(model, schema, scm=scm, intervention=intervention, time_limit=120,
                               solver="ortools")
        for i in range(len(denied)):
            row = denied.iloc[[i]]
            ex = rec.explain(row, 1)
            assert ex.status == "optimal", ex
            assert model.predict(ex.counterfactual)[0] == 1
            before = row.iloc[0].astype(float).to_dict()
            acts = dict(zip(ex.interventions.feature, ex.interventions.after))
            world = (scm.propagate(before, do=acts) if intervention == "hard"
                     else scm.propagate(before, shift={k: v - before[k] for k, v in acts.items()}))
            assert ex.counterfactual.iloc[0].astype(float).to_dict() == pytest.approx(world, rel=1e-9)
            assert other.explain(row, 1).cost == pytest.approx(ex.cost, rel=1e-5)


def test_ortools_agrees_on_a_causal_instance(grid_data):
    X, y = grid_data
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, y)
    schema = Schema.from_frame(X, integer=["x1", "x2", "x3"], not_actionable=["x3"],
                               bounds={c: (0, 4) for c in X.columns})
    scm = SCM({"x2": "x1 - 1", "x3": "max(x2 - 2, 0) + abs(x1 - 2)"})
    row = pd.DataFrame([(0, 1, 1)], columns=["x1", "x2", "x3"])
    a = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm).explain(row, 1)
    b = mipcf.Recourse(model, schema, cost="l1", scale="none", scm=scm, solver="ortools").explain(row, 1)
    assert a.status == b.status == "optimal" and a.cost == pytest.approx(b.cost, rel=REL)


# ---- the loan demo -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def loan():
    from mipcf.loan import loan_data, loan_model, loan_spec

    schema, scm, _ = loan_spec()
    X, y = loan_data(n=400)
    return X, y, loan_model(X, y), schema, scm


def test_loan_data_follow_the_scm(loan):
    X, _, _, schema, scm = loan
    assert list(X.columns) == ["gender", "age", "education", "loan_amount", "duration", "income", "savings"]
    assert scm.fixed_variables(schema) == {"gender", "age"}
    # hand-written equations: abducted noise reproduces every row
    row = X.iloc[7].astype(float)
    u = scm.abduct(row.to_dict())
    assert u["duration"] == pytest.approx(row.duration - (6 + 0.1 * row.age + 1.2 * row.loan_amount))
    assert u["savings"] == pytest.approx(row.savings - (1 + 0.4 * max(row.income - 20, 0)))
    from mipcf.loan import loan_data
    X2, _ = loan_data(n=400)
    pd.testing.assert_frame_equal(X, X2)  # deterministic


def test_loan_causal_answers(loan):
    X, _, model, schema, scm = loan
    denied = X[model.predict(X) == 0].head(3)
    causal = mipcf.Recourse(model, schema, cost="l1", scm=scm)
    blind = mipcf.Recourse(model, schema, cost="l1")
    for i in range(len(denied)):
        row = denied.iloc[[i]]
        ex, nb = causal.explain(row, 1), blind.explain(row, 1)
        assert ex.status == "optimal" and nb.status == "optimal"
        before, after = row.iloc[0].astype(float), ex.counterfactual.iloc[0].astype(float)
        do = dict(zip(ex.interventions.feature, ex.interventions.after))
        touched = set(do) | {d for v in do for d in scm.descendants(v)}
        for v in X.columns:  # non-descendants keep their factual values
            if v not in touched:
                assert after[v] == before[v], v
        world = scm.propagate(before.to_dict(), do=do)  # the world is the SCM's own consequence
        assert after.to_dict() == pytest.approx(world)
        # the causal world is feasible for the blind problem, so the nearest point is no farther
        distance = causal.cost_spec.evaluate(schema, before.to_dict(), after.to_dict())
        assert nb.cost <= distance * (1 + REL)
        # costs are on the interventions: the cost of the set values alone
        assert ex.cost == pytest.approx(sum(abs(do[v] - before[v]) * causal.cost_spec.weights[v] for v in do),
                                        rel=REL)


def test_loan_demo_prints_both_answers(capsys):
    from mipcf.loan import run_causal_demo

    table = run_causal_demo(n_people=2)
    out = capsys.readouterr().out
    assert "causal (optimal)" in out and "nearest counterfactual" in out
    assert len(table) == 2 and table.causal_status.eq("optimal").all()


def test_loan_json_round_trip(tmp_path):
    from mipcf.loan import SPEC

    scm = SCM.from_json(SPEC)  # the file holds {"schema", "scm", "noise"}
    path = tmp_path / "scm.json"
    scm.to_json(path)
    again = SCM.from_json(path)
    assert again.order == scm.order
    x = {"gender": 1, "age": 41, "education": 2, "loan_amount": 12.0, "duration": 30.0, "income": 35.0,
         "savings": 9.0}
    assert again.propagate(x, do={"income": 50.0}) == pytest.approx(scm.propagate(x, do={"income": 50.0}))
    assert scm.propagate(x, do={"income": 50.0})["savings"] == pytest.approx(9.0 + 0.4 * 30 - 0.4 * 15)
    assert json.loads(scm.to_json())["format"] == "mipcf.scm/1"


# ---- bad input ---------------------------------------------------------------------------

def test_cycle_is_named():
    with pytest.raises(SCMError, match="cycle: b -> c -> a -> b"):
        SCM({"b": "a", "c": "b", "a": "2 * c"})
    with pytest.raises(SCMError, match="cycle"):
        SCM({"a": "a + 1"})


@pytest.mark.parametrize("spec, message", [
    ({"variables": {"a": None, "b": "a + z"}}, "unknown variable 'z'"),
    ({"variables": {"a": None, "b": {"equation": "a", "parents": ["c"]}}}, "declared parents"),
    ({"variables": {"a": None, "b": "a +"}}, "cannot parse"),
    ({"variables": {"a": None, "b": "sin(a)"}}, "unsupported function"),
    ({"variables": {"a": None, "b": "a.real"}}, "unsupported syntax"),
    ({"variables": {"a": None, "b": "__import__('os')"}}, "unsupported function"),
    ({"format": "other", "variables": {}}, "format"),
    ({"variables": {"a": None, "b": "table(a, [[0, 1], [0, 2]])"}}, "increasing"),
])
def test_bad_scm_specs(spec, message):
    with pytest.raises(SCMError, match=message):
        SCM.from_dict(spec)


@pytest.mark.parametrize("equations, message", [
    ({"b": "a * b2", "b2": "a"}, "non-linear product"),
    ({"b": "a ** 2"}, "non-linear expression"),
    ({"b": "exp(a)"}, "non-linear expression"),
    ({"g": "a"}, "immutable"),
    ({"b": "q"}, "not a feature"),
])
def test_scm_against_schema_errors(equations, message):
    X = pd.DataFrame({"g": [0, 1], "a": [0.0, 1.0], "b": [0.0, 1.0], "b2": [0.0, 1.0]})
    schema = Schema.from_frame(X, immutable=["g"], real=["a", "b", "b2"])
    with pytest.raises(SCMError, match=message):
        SCM(equations).validate(schema)
    # a function of variables that cannot change is fine (constant for a person)
    SCM({"b": "exp(g) + g ** 2 + a"}).validate(schema)


def test_recourse_rejects_bad_intervention(salary):
    X, model, schema, scm = salary
    with pytest.raises(ValueError, match="intervention"):
        mipcf.Recourse(model, schema, scm=scm, intervention="soft")
