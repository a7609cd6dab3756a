"""HiGHS and OR-Tools agree on the optimum; statuses and options behave as documented."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mipcf
from mipcf.demo import credit_data, credit_schema


def _data(seed):
    rng = np.random.default_rng(seed)
    n = 200
    X = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.integers(0, 8, n), "c": rng.uniform(0, 10, n)})
    y = (X.a + 0.4 * X.b - 0.3 * X.c + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y


MODELS = {
    "lr": lambda s: LogisticRegression(),
    "dt": lambda s: DecisionTreeClassifier(max_depth=4, random_state=s),
    "rf": lambda s: RandomForestClassifier(n_estimators=4, max_depth=3, random_state=s),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("norm", ["l0", "l1", "linf", {"l0": 0.5, "l1": 1.0}])
def test_highs_and_ortools_agree(kind, norm):
    X, y = _data(3)
    model = MODELS[kind](3).fit(X, y)
    schema = mipcf.Schema.from_frame(X, increase_only=["b"])
    highs = mipcf.Recourse(model, schema, cost=norm, solver="highs")
    ortools = mipcf.Recourse(model, schema, cost=norm, solver="ortools")
    denied = X[model.predict(X) == 0]
    for i in range(4):
        x = denied.iloc[[i]]
        a, b = highs.explain(x, desired_class=1), ortools.explain(x, desired_class=1)
        assert a.status == b.status
        if a.status == "optimal":
            assert a.cost == pytest.approx(b.cost, rel=1e-6, abs=1e-7)
            assert b.solver == "ortools"
            assert model.predict(b.counterfactual)[0] == 1


def test_demo_forest_agrees_across_solvers():
    X, y = credit_data(n=300)
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    schema = credit_schema(X)
    denied = X[model.predict(X) == 0].head(3)
    costs = {}
    for solver in ("highs", "ortools"):
        rec = mipcf.Recourse(model, schema, cost="l1", solver=solver)
        costs[solver] = [rec.explain(denied.iloc[[i]], desired_class=1).cost for i in range(3)]
    assert np.allclose(costs["highs"], costs["ortools"], rtol=1e-6)


def test_unknown_solver_is_named():
    X, y = _data(0)
    model = LogisticRegression().fit(X, y)
    rec = mipcf.Recourse(model, mipcf.Schema.from_frame(X), solver="gurobi")
    with pytest.raises(ValueError, match="gurobi"):
        rec.explain(X[model.predict(X) == 0].iloc[[0]], desired_class=1)


def test_time_limit_gives_honest_status():
    """A tiny time limit on a large forest ends in 'feasible' with a bound, or 'optimal'/'error' — never silent."""
    X, y = credit_data(n=400)
    model = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0).fit(X, y)
    rec = mipcf.Recourse(model, credit_schema(X), cost="l1", time_limit=0.05, prune=False)
    ex = rec.explain(X[model.predict(X) == 0].iloc[[0]], desired_class=1)
    assert ex.status in ("optimal", "feasible", "error")
    if ex.status == "feasible":
        assert ex.bound <= ex.cost and ex.gap > 0 and model.predict(ex.counterfactual)[0] == 1
    if ex.status == "error":
        assert ex.counterfactual is None and "time limit" in ex.message


def test_results_reproducible_for_fixed_seed():
    X, y = _data(5)
    model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    denied = X[model.predict(X) == 0].head(3)
    runs = [mipcf.Recourse(model, schema, seed=7).explain_many(denied, desired_class=1) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0][list(X.columns)], runs[1][list(X.columns)])


@pytest.mark.parametrize("kind", ["lr", "dt", "rf"])
def test_pyomo_route_agrees_with_highspy(kind):
    """solver='pyomo:appsi_highs' (the Pyomo export) and the exported model solve to the same cost."""
    import pyomo.environ as pyo

    X, y = _data(4)
    model = MODELS[kind](4).fit(X, y)
    schema = mipcf.Schema.from_frame(X, decrease_only=["c"])
    direct = mipcf.Recourse(model, schema, cost="l1")
    via = mipcf.Recourse(model, schema, cost="l1", solver="pyomo:appsi_highs")
    denied = X[model.predict(X) == 0]
    for i in range(3):
        x = denied.iloc[[i]]
        a, b = direct.explain(x, desired_class=1), via.explain(x, desired_class=1)
        assert (a.status, b.status) == ("optimal", "optimal")
        assert a.cost == pytest.approx(b.cost, rel=1e-6, abs=1e-7)
        m = direct.to_pyomo(x, desired_class=1)
        res = pyo.SolverFactory("appsi_highs").solve(m, options=mipcf.Recourse.PYOMO_HIGHS_OPTIONS)
        assert str(res.solver.termination_condition) == "optimal"
        assert pyo.value(m.obj) == pytest.approx(a.cost, rel=1e-6, abs=1e-7)


def test_pyomo_model_takes_user_constraints():
    """A user constraint on the exported model (feature 'a' may not move) changes the optimum."""
    import pyomo.environ as pyo

    X, y = _data(6)
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    x = X[model.predict(X) == 0].iloc[[0]]
    m = mipcf.Recourse(model, schema).to_pyomo(x, desired_class=1)
    opt = pyo.SolverFactory("appsi_highs")
    opt.solve(m, options=mipcf.Recourse.PYOMO_HIGHS_OPTIONS)
    free = pyo.value(m.obj)
    j = m.col_names.index("a")
    m.user = pyo.Constraint(expr=m.x[j] == float(x.a.iloc[0]))
    opt.solve(m, options=mipcf.Recourse.PYOMO_HIGHS_OPTIONS)
    frozen = mipcf.Recourse(model, schema.with_actionability(immutable=["a"])).explain(x, desired_class=1)
    assert pyo.value(m.obj) == pytest.approx(frozen.cost, rel=1e-6) and frozen.cost >= free


def test_time_limit_with_training_rows_returns_the_verified_incumbent():
    """With data=, a time limit never ends without an answer: the repaired training point stands."""
    X, y = credit_data(n=400)
    model = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0).fit(X, y)
    rec = mipcf.Recourse(model, credit_schema(X), cost="l1", time_limit=0.05, data=X)
    for i in range(2):
        ex = rec.explain(X[model.predict(X) == 0].iloc[[i]], desired_class=1)
        assert ex.status in ("optimal", "feasible"), ex
        assert model.predict(ex.counterfactual)[0] == 1
        assert 0.0 <= ex.bound <= ex.cost + 1e-12


def _option(h, name):
    v = h.getOptionValue(name)
    return v[1] if isinstance(v, tuple) else v


def test_highs_branching_and_heuristic_options_reach_highs_and_keep_the_optimum():
    from mipcf.solvers import SolverOptions, make_solver

    X, y = _data(5)
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=5).fit(X, y)
    rec = mipcf.Recourse(model, mipcf.Schema.from_frame(X), cost="l1")
    arrays = rec.problem.milp.arrays(rec.problem.c)
    # a forest: no strong-branching LPs, no restart, no cuts below the root
    assert (rec.options.strong_branching, rec.options.restarts, rec.options.node_cuts) == (False,) * 3
    lean = make_solver("highs", arrays, rec.options)
    full = make_solver("highs", arrays, SolverOptions(strong_branching=True, sub_mip_heuristics=True))
    assert _option(lean._new_highs(), "mip_pscost_minreliable") == 0
    assert _option(lean._new_highs(), "mip_heuristic_run_root_reduced_cost") is False
    assert _option(lean._new_highs(), "mip_allow_restart") is False
    assert _option(lean._new_highs(), "mip_allow_cut_separation_at_nodes") is False
    assert _option(full._new_highs(), "mip_pscost_minreliable") > 0
    assert _option(full._new_highs(), "mip_heuristic_run_root_reduced_cost") is True
    assert _option(full._new_highs(), "mip_allow_restart") is True
    assert _option(full._new_highs(), "mip_allow_cut_separation_at_nodes") is True
    denied = X[model.predict(X) == 0]
    for i in range(5):
        x = denied.iloc[[i]]
        a = rec.explain(x, desired_class=1)
        rec._solver = full  # the same queries with HiGHS's defaults for branching and sub-MIPs
        b = rec.explain(x, desired_class=1)
        rec._solver = lean
        assert a.status == b.status == "optimal" and a.cost == pytest.approx(b.cost, rel=1e-6, abs=1e-9)
