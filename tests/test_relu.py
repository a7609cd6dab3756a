"""ReLU networks (MLPClassifier): reader, bound soundness, and exact optima against brute force.

Oracles are independent of the encoder: exhaustive enumeration of integer grids with the
model's own ``predict``, a hand-written forward pass over ``coefs_`` for the score margin,
a fine 1-D scan refined by bisection for a real-valued feature, and the second solver.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import mipcf
from encoders import MILP, DiscreteInput, LinExpr, NumericInput, UnsupportedModelError
from encoders.relu import NetworkDef, affine_bounds, encode_relu, read_mlp
from mipcf import Feature, Schema


# ---- helpers ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Tiny matrices: BLAS threads only fight over the shared cores (3x slower training)."""
    with threadpool_limits(1):
        yield


def _fit(seed: int, hidden: tuple, ranges: list[int], n_classes: int = 2, activation: str = "relu"):
    """An MLP trained on random integer points labelled by a random teacher network."""
    return _fit_cached(seed, tuple(hidden), tuple(ranges), n_classes, activation)


@functools.lru_cache(maxsize=None)  # several tests share a network; training dominates their time
def _fit_cached(seed, hidden, ranges, n_classes, activation):
    ranges = list(ranges)
    rng = np.random.default_rng(seed)
    cols = [f"x{i}" for i in range(len(ranges))]
    X = np.column_stack([rng.integers(0, r + 1, 400) for r in ranges]).astype(float)
    T1 = rng.normal(size=(len(ranges), 8))
    T2 = rng.normal(size=(8, n_classes))
    centred = (X - np.array(ranges) / 2.0) / np.maximum(np.array(ranges), 1)
    y = np.argmax(np.maximum(centred @ T1 + rng.normal(scale=0.3, size=8), 0) @ T2
                  + rng.normal(scale=0.1, size=(400, n_classes)), axis=1)
    if np.unique(y).size < n_classes:  # make sure every class is present
        y[:n_classes] = np.arange(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(hidden, activation=activation, solver="lbfgs", max_iter=150,
                              random_state=seed).fit(pd.DataFrame(X, columns=cols), y)
    return model, cols


def _scores(model: MLPClassifier, X: np.ndarray) -> np.ndarray:
    """The last affine layer, computed here from ``coefs_`` (independent of the encoder)."""
    if hasattr(model, "steps"):  # a Pipeline: its own preprocessing, then the network
        X = model[:-1].transform(pd.DataFrame(np.asarray(X, dtype=float), columns=model.feature_names_in_))
        model = model[-1]
    h = np.asarray(X, dtype=float)
    for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        h = h @ W + b
        if k < len(model.coefs_) - 1 and model.activation == "relu":
            h = np.maximum(h, 0.0)
    return h


def _grid(ranges: list[int]) -> np.ndarray:
    axes = [np.arange(r + 1) for r in ranges]
    return np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(ranges), -1).T.astype(float)


def _norm(D: np.ndarray, norm: str) -> np.ndarray:
    return {"l0": (D > 0).sum(axis=1), "l1": D.sum(axis=1), "linf": D.max(axis=1)}[norm].astype(float)


def _oracle(model, grid, x0, desired, norm, actions, margin):
    """Brute-force optimum over the grid: (min over all accepted points, min over points
    accepted with the encoder's margin). The MILP optimum must lie between the two."""
    pred = model.predict(pd.DataFrame(grid, columns=model.feature_names_in_))
    ok = pred == desired
    for j, act in enumerate(actions):
        if act == "immutable":
            ok &= grid[:, j] == x0[j]
        elif act == "increase_only":
            ok &= grid[:, j] >= x0[j]
        elif act == "decrease_only":
            ok &= grid[:, j] <= x0[j]
    if not ok.any():
        return None, None
    s = _scores(model, grid)
    if s.shape[1] == 1:
        robust = s[:, 0] >= margin if desired == model.classes_[1] else s[:, 0] <= -margin
    else:
        c = int(np.nonzero(model.classes_ == desired)[0][0])
        others = np.delete(s, c, axis=1)
        robust = s[:, c] - others.max(axis=1) >= margin
    cost = _norm(np.abs(grid - x0), norm)
    best_all = cost[ok].min()
    best_robust = cost[ok & robust].min() if (ok & robust).any() else np.inf
    return best_all, best_robust


def _check_against_grid(model, cols, ranges, actions, norm, persons, solver="highs", options=None,
                        desired_of=None, data=None):
    schema = Schema([Feature(c, "integer", 0, r, actionability=a) for c, r, a in zip(cols, ranges, actions)])
    rec = mipcf.Recourse(model, schema, cost=norm, scale="none", solver=solver, encoder_options=options,
                         data=data)
    grid = _grid(ranges)
    margin = rec.problem.encoding.margin
    exact = 0
    for x0 in persons:
        row = pd.DataFrame([x0], columns=cols).astype(int)
        current = model.predict(row)[0]
        targets = [c for c in model.classes_ if c != current] if desired_of is None else [desired_of(current)]
        for desired in targets:
            ex = rec.explain(row, desired_class=desired)
            best_all, best_robust = _oracle(model, grid, np.asarray(x0, float), desired, norm, actions, margin)
            if best_all is None:
                assert ex.status == "infeasible", (x0, desired, ex)
                exact += 1
                continue
            assert ex.status == "optimal", (x0, desired, ex.status, ex.message)
            cf = ex.counterfactual[cols].to_numpy(dtype=float)[0]
            assert model.predict(ex.counterfactual)[0] == desired
            assert ex.cost == pytest.approx(_norm(np.abs(cf - x0)[None, :], norm)[0], abs=1e-9)
            assert best_all - 1e-9 <= ex.cost <= best_robust + 1e-9, (x0, desired, ex.cost, best_all, best_robust)
            exact += ex.cost == pytest.approx(best_all, abs=1e-9)
    return exact, rec


# ---- reader ------------------------------------------------------------------------------

@pytest.mark.parametrize("hidden,n_classes,activation", [((5,), 2, "relu"), ((6, 4), 2, "relu"),
                                                         ((4, 4, 3), 3, "relu"), ((5,), 4, "identity")])
def test_definition_predicts_like_the_model(hidden, n_classes, activation):
    model, cols = _fit(3, hidden, [5, 7, 4], n_classes, activation)
    d = read_mlp(model)
    Z = np.random.default_rng(1).uniform(-2, 9, size=(20000, 3))
    assert np.array_equal(d.predict(Z), model.predict(pd.DataFrame(Z, columns=cols)))
    assert d.hidden_sizes == list(hidden)
    assert np.allclose(d.decision_function(Z), _scores(model, Z))


def test_unsupported_activation_is_named():
    model, cols = _fit(0, (4,), [3, 3], activation="tanh")
    with pytest.raises(UnsupportedModelError, match="tanh"):
        read_mlp(model)
    schema = Schema([Feature(c, "integer", 0, 3) for c in cols])
    rec = mipcf.Recourse(model, schema, cost="l1")
    with pytest.raises(UnsupportedModelError, match="tanh"):
        rec.explain(pd.DataFrame([[0, 0]], columns=cols))


def test_multilabel_output_is_rejected():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(60, 2)).astype(float)
    Y = np.column_stack([X[:, 0] > 1, X[:, 1] > 2]).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((3,), max_iter=50, random_state=0).fit(X, Y)
    with pytest.raises(UnsupportedModelError, match="multi-label"):
        read_mlp(model)


def test_bad_option_is_named():
    model, cols = _fit(0, (3,), [2, 2])
    milp = MILP()
    inputs = [NumericInput(milp.add_var(0, 2, True, name=c), 0, 2, True, name=c) for c in cols]
    with pytest.raises(ValueError, match="bound_tightening"):
        encode_relu(milp, read_mlp(model), inputs, bound_tightening="exact")
    with pytest.raises(ValueError, match="person_bounds"):
        encode_relu(milp, read_mlp(model), inputs, person_bounds="milp")


# ---- exact optima on integer grids --------------------------------------------------------

GRID_CASES = [  # seed, hidden layers, ranges, actionability
    (0, (4,), [5, 5], ["actionable", "actionable"]),
    (1, (6,), [4, 6, 3], ["actionable", "actionable", "actionable"]),
    (2, (5, 4), [5, 4, 4], ["actionable", "increase_only", "actionable"]),
    (3, (6, 6), [6, 3, 5], ["immutable", "actionable", "actionable"]),
    (4, (3, 5), [7, 7], ["actionable", "decrease_only"]),
    (5, (6, 5), [4, 4, 4], ["actionable", "actionable", "immutable"]),
]


@pytest.mark.parametrize("norm", ["l0", "l1", "linf"])
@pytest.mark.parametrize("case", GRID_CASES, ids=lambda c: f"seed{c[0]}-{'x'.join(map(str, c[1]))}")
def test_grid_optimum_equals_brute_force(case, norm):
    seed, hidden, ranges, actions = case
    model, cols = _fit(seed, hidden, ranges)
    rng = np.random.default_rng(100 + seed)
    grid = _grid(ranges)
    persons = grid[rng.choice(len(grid), 7, replace=False)]
    exact, _ = _check_against_grid(model, cols, ranges, actions, norm, persons)
    assert exact >= 6  # margin-excluded optima are allowed, but rare (checked bounds above)


@pytest.mark.parametrize("norm", ["l0", "l1", "linf"])
@pytest.mark.parametrize("case", GRID_CASES[1:4:2], ids=lambda c: f"seed{c[0]}")
def test_grid_optimum_with_incumbent_pruning(case, norm):
    """With training data, Recourse starts from a repaired data point and tightens the
    network over the cost box that point allows; the optimum must not move."""
    seed, hidden, ranges, actions = case
    model, cols = _fit(seed, hidden, ranges)
    grid = _grid(ranges)
    rng = np.random.default_rng(200 + seed)
    # a small pool: incumbents are often worse than the optimum, so the proof has to come from the MILP
    data = pd.DataFrame(grid[rng.choice(len(grid), 12, replace=False)], columns=cols).astype(int)
    persons = grid[rng.choice(len(grid), 6, replace=False)]
    exact, rec = _check_against_grid(model, cols, ranges, actions, norm, persons, data=data)
    assert rec._pruner is not None
    assert exact >= 5


@pytest.mark.parametrize("norm", ["l1", "linf"])
def test_grid_optimum_with_person_lp_bounds(norm):
    """Per-person LP tightening (person_bounds="lp") keeps the brute-force optimum."""
    seed, hidden, ranges, actions = GRID_CASES[3]
    model, cols = _fit(seed, hidden, ranges)
    grid = _grid(ranges)
    rng = np.random.default_rng(300)
    persons = grid[rng.choice(len(grid), 6, replace=False)]
    data = pd.DataFrame(grid[rng.choice(len(grid), 12, replace=False)], columns=cols).astype(int)
    exact, rec = _check_against_grid(model, cols, ranges, actions, norm, persons, data=data,
                                     options={"person_bounds": "lp"})
    assert exact >= 5 and rec.problem.encoding.tighten.person_lp_solves > 0


def test_poor_incumbent_does_not_prove_l0_optimality():
    """A network can flip on one numeric change the incumbent search never tries: a
    two-change incumbent must not be declared optimal by an 'at least two changes' bound."""
    model, cols = _fit(1, (6,), [4, 6, 3])
    ranges = [4, 6, 3]
    schema = Schema([Feature(c, "integer", 0, r) for c, r in zip(cols, ranges)])
    grid = _grid(ranges)
    pred = model.predict(pd.DataFrame(grid, columns=cols))
    tried = 0
    for x0 in grid[np.random.default_rng(0).permutation(len(grid))]:
        desired = [c for c in model.classes_ if c != model.predict(pd.DataFrame([x0], columns=cols))[0]][0]
        ok = pred == desired
        changes = (grid != x0).sum(axis=1)
        if not (ok & (changes == 1)).any():
            continue
        # an accepted point two or more changes away that no single reset towards x0 repairs
        for p in grid[ok & (changes >= 2)]:
            resets = np.array([np.where(np.arange(3) == j, x0, p) for j in range(3) if p[j] != x0[j]])
            if not np.any(model.predict(pd.DataFrame(resets, columns=cols)) == desired):
                break
        else:
            continue
        rec = mipcf.Recourse(model, schema, cost="l0", scale="none",
                             data=pd.DataFrame([p], columns=cols).astype(int))
        ex = rec.explain(pd.DataFrame([x0], columns=cols).astype(int), desired_class=desired)
        assert ex.status == "optimal" and ex.cost == 1.0, (x0, p, ex)
        tried += 1
        if tried == 3:
            break
    assert tried >= 1


def test_grid_optimum_with_lp_bounds_and_identity_network():
    model, cols = _fit(7, (5, 3), [5, 5, 3])
    grid = _grid([5, 5, 3])
    persons = grid[np.random.default_rng(7).choice(len(grid), 6, replace=False)]
    exact, rec = _check_against_grid(model, cols, [5, 5, 3], ["actionable"] * 3, "l1", persons,
                                     options={"bound_tightening": "lp"})
    assert exact >= 5 and rec.problem.encoding.tighten.lp_solves > 0
    lin, cols = _fit(8, (4,), [6, 6], activation="identity")
    grid = _grid([6, 6])
    exact, rec = _check_against_grid(lin, cols, [6, 6], ["actionable"] * 2, "l1", grid[::9])
    assert exact >= len(grid[::9]) - 1
    assert all(np.all(ly.z < 0) and np.all(ly.state == 1) for ly in rec.problem.encoding.tighten.layers)


@pytest.mark.parametrize("scaler", ["standard", "minmax"])
def test_scaler_pipeline_grid_optimum(scaler):
    """A scaler in front of the network folds into the first layer's affine map."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    ranges = [6, 5, 4]
    net, cols = _fit(2, (5, 4), ranges)
    grid = _grid(ranges)
    X = pd.DataFrame(grid, columns=cols)
    y = net.predict(X)  # a teacher with a non-trivial boundary; the pipeline learns it afresh
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make_pipeline(StandardScaler() if scaler == "standard" else MinMaxScaler(),
                              MLPClassifier((6, 4), solver="lbfgs", max_iter=150, random_state=0)).fit(X, y)
    persons = grid[np.random.default_rng(4).choice(len(grid), 6, replace=False)]
    exact, _ = _check_against_grid(model, cols, ranges, ["actionable"] * 3, "l1", persons)
    assert exact >= 5


def test_multiclass_grid_optimum():
    model, cols = _fit(11, (6, 5), [5, 5, 4], n_classes=3)
    assert len(model.classes_) == 3
    grid = _grid([5, 5, 4])
    persons = grid[np.random.default_rng(3).choice(len(grid), 5, replace=False)]
    for norm in ("l1", "linf"):
        exact, _ = _check_against_grid(model, cols, [5, 5, 4], ["actionable"] * 3, norm, persons)
        assert exact >= 9  # 5 persons x 2 other classes


def test_highs_and_ortools_agree():
    model, cols = _fit(2, (5, 4), [5, 4, 4])
    schema = Schema([Feature(c, "integer", 0, r) for c, r in zip(cols, [5, 4, 4])])
    grid = _grid([5, 4, 4])
    persons = grid[np.random.default_rng(5).choice(len(grid), 3, replace=False)]
    for norm in ("l1", "linf"):
        a = mipcf.Recourse(model, schema, cost=norm, scale="none", solver="highs")
        b = mipcf.Recourse(model, schema, cost=norm, scale="none", solver="ortools")
        for x0 in persons:
            row = pd.DataFrame([x0], columns=cols).astype(int)
            ea, eb = a.explain(row), b.explain(row)
            assert ea.status == eb.status == "optimal"
            assert ea.cost == pytest.approx(eb.cost, abs=1e-6)


# ---- real-valued features -------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _real_model(seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, size=(500, 2))
    y = (np.sin(1.3 * X[:, 0]) + 0.4 * X[:, 1] > 0.2).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier((8,), solver="lbfgs", max_iter=200, random_state=seed).fit(
            pd.DataFrame(X, columns=["u", "v"]), y)


def _logit(model, u: np.ndarray, v: float) -> np.ndarray:
    return _scores(model, np.column_stack([u, np.full(u.size, v)]))[:, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_real_feature_matches_fine_scan(seed):
    """One free real feature: the optimum is the nearest boundary crossing on a line."""
    model = _real_model(seed)
    schema = Schema([Feature("u", "real", -3, 3), Feature("v", "real", -3, 3, actionability="immutable")])
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none")
    margin = rec.problem.encoding.margin
    grid = np.linspace(-3, 3, 60001)
    rng = np.random.default_rng(seed)
    checked = 0
    for u0, v0 in rng.uniform(-2.5, 2.5, size=(6, 2)):
        row = pd.DataFrame([[u0, v0]], columns=["u", "v"])
        current = model.predict(row)[0]
        pred = model.predict(pd.DataFrame({"u": grid, "v": v0}))
        hits = np.nonzero(pred != current)[0]
        ex = rec.explain(row)
        if hits.size == 0:
            assert ex.status == "infeasible"
            continue
        # nearest accepted scan point, refined by bisection towards its neighbour on the x0 side
        k = hits[np.argmin(np.abs(grid[hits] - u0))]
        inside, outside = grid[k], grid[k - 1] if grid[k] > u0 else grid[k + 1]
        if model.predict(pd.DataFrame({"u": [outside], "v": [v0]}))[0] != current:
            outside = u0  # the scan point is the first one past x0
        # bisection on the hand-computed logit (class 1 iff logit > 0, as predict decides)
        flipped = (lambda u: _logit(model, np.array([u]), v0)[0] > 0) if current == model.classes_[0] \
            else (lambda u: _logit(model, np.array([u]), v0)[0] <= 0)
        assert flipped(inside) and not flipped(outside)
        for _ in range(50):
            mid = 0.5 * (inside + outside)
            if flipped(mid):
                inside = mid
            else:
                outside = mid
        assert model.predict(pd.DataFrame({"u": [inside], "v": [v0]}))[0] != current
        best = abs(inside - u0)
        slope = abs(_logit(model, np.array([inside + 1e-4]), v0)[0] - _logit(model, np.array([inside - 1e-4]), v0)[0]) / 2e-4
        assert ex.status == "optimal", ex.message
        assert model.predict(ex.counterfactual)[0] != current
        assert ex.counterfactual["v"].iloc[0] == v0
        assert best - 1e-7 <= ex.cost <= best + 2 * margin / max(slope, 1e-3) + 1e-6, (u0, v0, ex.cost, best)
        checked += 1
    assert checked >= 3


def test_two_real_features_not_beaten_by_a_fine_grid():
    model = _real_model(4)
    schema = Schema([Feature("u", "real", -3, 3), Feature("v", "real", -3, 3)])
    g = np.linspace(-3, 3, 301)
    U, V = np.meshgrid(g, g)
    G = np.column_stack([U.ravel(), V.ravel()])
    pred = model.predict(pd.DataFrame(G, columns=["u", "v"]))
    for norm in ("l1", "linf"):
        rec = mipcf.Recourse(model, schema, cost=norm, scale="none")
        for x0 in np.random.default_rng(9).uniform(-2, 2, size=(3, 2)):
            row = pd.DataFrame([x0], columns=["u", "v"])
            current = model.predict(row)[0]
            ex = rec.explain(row)
            assert ex.status == "optimal"
            assert model.predict(ex.counterfactual)[0] != current
            grid_best = _norm(np.abs(G - x0)[pred != current], norm).min()
            assert ex.cost <= grid_best + 1e-9  # the exact optimum is never worse than any grid point


# ---- bounds ------------------------------------------------------------------------------------

def _random_network(seed: int, sizes: list[int], n_in: int) -> NetworkDef:
    rng = np.random.default_rng(seed)
    layers, prev = [], n_in
    for n in sizes + [1]:
        layers.append((rng.normal(size=(prev, n)), rng.normal(scale=0.5, size=n)))
        prev = n
    return NetworkDef(layers, "relu", np.array([0, 1]), "logistic")


def _mixed_inputs(milp: MILP):
    """Two real columns, one integer column and a 3-level categorical as one-hot binaries."""
    x = milp.add_var(-2.0, 3.0, name="x")
    y = milp.add_var(0.0, 1.5, name="y")
    n = milp.add_var(0.0, 4.0, True, name="n")
    b = milp.add_binaries(3, name="cat")
    milp.add_eq(LinExpr(b, np.ones(3)), 1.0, name="cat.one")
    milp.add_var(0.0, 10.0, name="unrelated")
    inputs = [NumericInput(x, -2.0, 3.0, name="x"), NumericInput(y, 0.0, 1.5, a=2.0, b=-1.0, name="y"),
              NumericInput(n, 0.0, 4.0, True, name="n"),
              DiscreteInput(np.array([-1.0, 0.5, 2.0]), [LinExpr.var(int(v)) for v in b], name="cat")]
    return inputs, (x, y, n, b)


def _sample(rng, lb, ub, cols, size):
    x, y, n, b = cols
    X = rng.uniform(lb[x], ub[x], size)
    Y = rng.uniform(lb[y], ub[y], size)
    N = rng.integers(int(lb[n]), int(ub[n]) + 1, size)
    allowed = np.nonzero(ub[b] >= 0.5)[0]
    if (lb[b] >= 0.5).any():
        allowed = np.nonzero(lb[b] >= 0.5)[0]
    L = rng.choice(allowed, size)
    # extremes of the box too, where bounds are tight
    X[: size // 4] = rng.choice([lb[x], ub[x]], size // 4)
    Y[: size // 4] = rng.choice([lb[y], ub[y]], size // 4)
    Z = np.column_stack([X, 2.0 * Y - 1.0, N, np.array([-1.0, 0.5, 2.0])[L]])
    return Z


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bounds_contain_every_pre_activation(seed):
    net = _random_network(seed, [7, 6, 5], 4)
    rng = np.random.default_rng(seed)
    found = {}
    for mode in ("interval", "lp"):
        milp = MILP()
        inputs, cols = _mixed_inputs(milp)
        enc = encode_relu(milp, net, inputs, bound_tightening=mode, person_bounds=mode)
        layers = enc.tighten.layers
        Z = _sample(rng, milp.lb, milp.ub, cols, 4000)
        pre = net.pre_activations(Z)
        for ly, a in zip(layers, pre):
            assert np.all(a >= ly.lo[None, :] - 1e-12) and np.all(a <= ly.hi[None, :] + 1e-12)
            # a column's bounds are the neuron's bounds
            alive = ly.pre >= 0
            assert np.all(milp.lb[ly.pre[alive]] == ly.lo[alive])
        found[mode] = layers
        # per person: a smaller box, tightened in place, still contains every pre-activation
        lb, ub = milp.lb.copy(), milp.ub.copy()
        x, y, n, b = cols
        lb[x], ub[x] = 0.5, 0.5
        lb[n] = 2.0
        ub[b[0]] = 0.0
        enc.tighten(lb, ub)
        Zp = _sample(rng, lb, ub, cols, 4000)
        for ly, a in zip(layers, net.pre_activations(Zp)):
            alive = ly.pre >= 0
            assert np.all(a[:, alive] >= lb[ly.pre[alive]] - 1e-12)
            assert np.all(a[:, alive] <= ub[ly.pre[alive]] + 1e-12)
            uns = ly.state < 0
            on, off = lb[ly.z[uns]] == 1.0, ub[ly.z[uns]] == 0.0
            assert np.all(a[:, uns][:, on] >= -1e-12) and np.all(a[:, uns][:, off] <= 1e-12)
        assert enc.tighten.fixed_last > 0
        assert (enc.tighten.person_lp_solves > 0) == (mode == "lp")
    # LP bounds are never looser than interval bounds, and tighter somewhere past layer 1
    tighter = 0
    for li, (ly_i, ly_l) in enumerate(zip(found["interval"], found["lp"])):
        live = ly_l.state != 0
        assert np.all(ly_l.lo[live] >= ly_i.lo[live] - 1e-9) and np.all(ly_l.hi[live] <= ly_i.hi[live] + 1e-9)
        tighter += int(np.sum((ly_l.hi[live] < ly_i.hi[live] - 1e-6) | (ly_l.lo[live] > ly_i.lo[live] + 1e-6)))
    assert tighter > 0


def test_first_layer_bounds_are_exact_over_a_box_with_one_hot_group():
    """Layer 1 is affine: its bounds over the box (one level per group) are attained."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 4))
    c = rng.normal(size=5)
    lo, hi = np.array([-1.0, 0.0, 0.0, 0.0]), np.array([2.0, 1.0, 1.0, 1.0])
    low, high = affine_bounds(M, c, lo, hi, [np.array([1, 2, 3])])
    corners = np.array([[x, *np.eye(3)[k]] for x in (-1.0, 2.0) for k in range(3)])
    vals = corners @ M.T + c
    assert np.allclose(low, vals.min(axis=0)) and np.allclose(high, vals.max(axis=0))


def test_person_tightening_is_cached_and_fixes_stable_neurons():
    model, cols = _fit(3, (6, 6), [6, 3, 5])
    schema = Schema([Feature(c, "integer", 0, r, actionability=a)
                     for c, r, a in zip(cols, [6, 3, 5], ["immutable", "immutable", "actionable"])])
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none")
    tight = rec.problem.encoding.tighten
    row = pd.DataFrame([[1, 2, 3]], columns=cols)
    values = {c: int(row[c].iloc[0]) for c in cols}
    q1 = rec.problem.query(values, 1)
    hits = tight.hits
    q2 = rec.problem.query(values, 1)
    assert tight.hits == hits + 1
    assert np.array_equal(q1.lb, q2.lb) and np.array_equal(q1.ub, q2.ub)
    fixed = sum(int(np.sum(q1.lb[ly.z[ly.state < 0]] == q1.ub[ly.z[ly.state < 0]])) for ly in tight.layers)
    assert fixed > 0  # with two of three inputs fixed, some neurons are stable for this person


def test_margin_covers_the_solver_tolerance():
    model, cols = _fit(1, (6,), [4, 6, 3])
    schema = Schema([Feature(c, "integer", 0, r) for c, r in zip(cols, [4, 6, 3])])
    enc = mipcf.Recourse(model, schema, cost="l1").problem.encoding
    assert enc.margin >= 1e-6
    # a binary off integral by 1e-7 lets one unstable neuron's output move by big-M * 1e-7,
    # which the output weight carries to the score: the full bound covers it, and the
    # widest retry (x1e4, mipcf.recourse.MARGIN_RETRIES) reaches the full bound
    from mipcf.recourse import MARGIN_RETRIES
    W2 = np.abs(model.coefs_[1][:, 0])
    ly = enc.tighten.layers[0]
    uns = ly.state < 0
    one = 1e-7 * np.max(W2[uns] * np.maximum(-ly.lo[uns], ly.hi[uns]))
    assert enc.tighten.safe_margin >= 2 * one
    assert enc.margin * MARGIN_RETRIES[-1] >= enc.tighten.safe_margin * (1 - 1e-12)


def _step_network(bias: float) -> MLPClassifier:
    """score(x) = relu(x) + bias on one integer input: class 1 exactly where the score is > 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((1,), max_iter=5, random_state=0).fit(
            pd.DataFrame({"x": [0, 10]}), [0, 1])
    model.coefs_ = [np.array([[1.0]]), np.array([[1.0]])]
    model.intercepts_ = [np.array([0.0]), np.array([bias])]
    return model


def test_point_accepted_inside_the_margin_is_proven_optimal():
    """The cheapest point predict accepts has a score below the decision margin: the MILP
    cannot return it, the repaired training row finds it, and the margin-relaxed MILP proves
    it optimal (before, it was reported 'feasible, best known')."""
    schema = Schema([Feature("x", "integer", 0, 10)])
    data = pd.DataFrame({"x": np.arange(11)})
    margin = mipcf.Recourse(_step_network(-5.0), schema, cost="l1", scale="none").problem.encoding.margin
    model = _step_network(-5.0 + margin / 10)
    grid = pd.DataFrame({"x": np.arange(11)})
    accepted = grid.x[model.predict(grid) == 1]
    assert accepted.min() == 5  # oracle: predict itself on every point of the domain
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", data=data)
    assert rec.problem.encoding.margin > margin / 10  # x = 5 lies inside the margin
    ex = rec.explain(pd.DataFrame({"x": [0]}), desired_class=1)
    assert ex.status == "optimal", ex.message
    assert ex.cost == pytest.approx(5.0) and ex.counterfactual.x.iloc[0] == 5
    assert "margin" in ex.message
    without = mipcf.Recourse(model, schema, cost="l1", scale="none").explain(pd.DataFrame({"x": [0]}), desired_class=1)
    assert without.cost == pytest.approx(6.0)  # no training rows, no incumbent: the margin's optimum
