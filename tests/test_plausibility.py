"""Plausibility constraints against independent oracles.

Oracles: sklearn's own ``IsolationForest.predict`` / ``decision_function`` (for the reader),
brute-force enumeration of tiny integer grids (every point, filtered by ``model.predict``,
``iforest.predict``, a direct count of training points within the radius, or of
desired-class training rows sharing a leaf tree by tree through each sklearn tree's own
``apply``; minimum cost computed here with numpy), and enumeration of the float32 cells cut
out by the union of the model's and the forest's split thresholds for real-valued features.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mipcf
from encoders.isolation import read_isolation_forest
from mipcf import status as st
from mipcf.plausibility import evaluate, inlier_share, lof_scores, nearest_distance

HI = 5  # integer grid 0..HI per feature


# ---------------------------------------------------------------------------------------
# reader


@pytest.mark.parametrize("max_features", [1.0, 2, 0.5])
@pytest.mark.parametrize("contamination", ["auto", 0.1])
def test_reader_reproduces_sklearn_scores(max_features, contamination):
    rs = np.random.RandomState(3)
    X = rs.randn(300, 4) * [1, 10, 100, 0.01]
    forest = IsolationForest(n_estimators=15, max_samples=64, max_features=max_features,
                             contamination=contamination, random_state=1).fit(X)
    d = read_isolation_forest(forest)
    Z = np.r_[rs.randn(3000, 4) * [1.5, 15, 150, 0.015], X]
    assert np.array_equal(d.score_samples(Z), forest.score_samples(Z))
    assert np.array_equal(d.inlier(Z), forest.predict(Z) == 1)
    # the linear row: D >= threshold decides like predict except within rounding of the threshold
    D = d.path_length(Z)
    far = np.abs(D - d.threshold) > 1e-9 * abs(d.threshold)
    assert np.array_equal((D >= d.threshold)[far], (forest.predict(Z) == 1)[far])


# ---------------------------------------------------------------------------------------
# integer-grid oracle


def _data(seed: int, n: int = 160) -> tuple[pd.DataFrame, np.ndarray]:
    rs = np.random.RandomState(seed)
    # a correlated cloud: the desired class sits in a diagonal band, so the nearest
    # counterfactual is often off the band (an outlier)
    a = rs.randint(0, HI + 1, n)
    b = np.clip(a + rs.randint(-1, 2, n), 0, HI)
    c = rs.randint(0, HI + 1, n)
    X = pd.DataFrame({"a": a, "b": b, "c": c}).astype(float)
    y = ((X.a + X.b + 0.5 * X.c + rs.randn(n)) > 6).astype(int).to_numpy()
    return X, y


GRID = np.array(list(itertools.product(range(HI + 1), repeat=3)), dtype=float)


def _costs(x0: np.ndarray, G: np.ndarray, norm: str) -> np.ndarray:
    d = np.abs(G - x0) / HI  # scale="range": every feature spans 0..HI
    return {"l1": d.sum(axis=1), "linf": d.max(axis=1), "l0": (d > 0).sum(axis=1).astype(float)}[norm]


def _models(seed: int):
    return [DecisionTreeClassifier(max_depth=4, random_state=seed),
            RandomForestClassifier(n_estimators=5, max_depth=3, random_state=seed),
            LogisticRegression()]


def _iforest_cases(n_seeds: int, per_model: int):
    """Yield (model name, norm, recourse cost, oracle cost, unconstrained oracle cost, cf, forest, ...)."""
    for seed in range(n_seeds):
        X, y = _data(seed)
        schema = mipcf.Schema.from_frame(X, increase_only=["c"] if seed % 2 else [])
        for model in _models(seed):
            model.fit(X, y)
            G = pd.DataFrame(GRID, columns=X.columns)
            ok_model = model.predict(G) == 1
            norm = ["l1", "linf", "l0"][seed % 3]
            plaus = mipcf.IsolationForestConstraint(n_estimators=10, max_samples=32, random_state=seed,
                                                    desired_class=1)
            rec = mipcf.Recourse(model, schema, cost=norm, data=X, plausibility=plaus)
            plain = mipcf.Recourse(model, schema, cost=norm, data=X)
            forest = None
            denied = X[model.predict(X) == 0].drop_duplicates()
            for i in range(min(per_model, len(denied))):
                row = denied.iloc[[i]]
                ex = rec.explain(row, desired_class=1)
                if forest is None:
                    forest = rec._plaus.forests[1][0]
                    ok_forest = forest.predict(G) == 1
                x0 = row.to_numpy(dtype=float)[0]
                allowed = np.ones(len(G), bool) if seed % 2 == 0 else GRID[:, 2] >= x0[2]
                cost = _costs(x0, GRID, norm)
                best_plain = cost[ok_model & allowed].min(initial=np.inf)
                best = cost[ok_model & ok_forest & allowed].min(initial=np.inf)
                yield type(model).__name__, norm, ex, best, best_plain, forest, plain, row


def _check_iforest(n_seeds: int, per_model: int) -> tuple[int, int]:
    n, outliers = 0, 0
    for name, norm, ex, best, best_plain, forest, plain, row in _iforest_cases(n_seeds, per_model):
        n += 1
        if not np.isfinite(best):
            assert ex.status == st.INFEASIBLE, (name, norm, ex)
            continue
        assert ex.status == st.OPTIMAL, (name, norm, ex)
        assert forest.predict(ex.counterfactual)[0] == 1, (name, norm)
        assert ex.extra["plausibility"]["inlier"]
        assert ex.cost == pytest.approx(best, abs=1e-6), (name, norm, row)
        assert best >= best_plain - 1e-12  # never cheaper than the unconstrained optimum
        if best > best_plain + 1e-9:
            free = plain.explain(row, desired_class=1)
            assert free.cost == pytest.approx(best_plain, abs=1e-6)
            outliers += forest.predict(free.counterfactual)[0] == -1
    return n, outliers


def test_iforest_matches_grid_oracle():
    n, outliers = _check_iforest(n_seeds=3, per_model=6)
    assert n >= 40
    assert outliers >= 1  # the constraint bites: some unconstrained optimum is an outlier


@pytest.mark.slow
def test_iforest_matches_grid_oracle_many():
    n, outliers = _check_iforest(n_seeds=12, per_model=8)
    assert n >= 200
    assert outliers >= 5


# ---------------------------------------------------------------------------------------
# real-valued oracle: the float32 cells of the union of both models' thresholds


def _thresholds(trees, feature_map=None) -> dict[int, set]:
    out: dict[int, set] = {}
    for k, est in enumerate(trees):
        t = est.tree_
        for node in np.nonzero(t.children_left >= 0)[0]:
            f = int(t.feature[node])
            if feature_map is not None:
                f = int(feature_map[k][f])
            out.setdefault(f, set()).add(float(t.threshold[node]))
    return out


def _last_left(t: float) -> float:
    """Largest float64 whose float32 rounding is <= t (by bisection on float64 values)."""
    lo, hi = t - 1e-3 * max(1.0, abs(t)), t + 1e-3 * max(1.0, abs(t))
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if float(np.float32(mid)) <= t:
            lo = mid
        else:
            hi = mid
    return lo


def _cell_points(x0: float, ts: list[float], lo: float, hi: float) -> list[float]:
    """Per float32 cell between thresholds: its point nearest x0 (within [lo, hi])."""
    edges = [_last_left(t) for t in sorted(ts)]
    pts = []
    bounds = [lo] + [np.nextafter(e, np.inf) for e in edges]
    tops = edges + [hi]
    for a, b in zip(bounds, tops):
        a, b = max(a, lo), min(b, hi)
        if a <= b:
            pts.append(min(max(x0, a), b))
    return pts


def test_iforest_real_valued_cells_oracle():
    rs = np.random.RandomState(7)
    n = 200
    a = rs.rand(n)
    X = pd.DataFrame({"a": a, "b": np.clip(a + 0.15 * rs.randn(n), 0, 1), "c": rs.rand(n)})
    y = ((X.a + X.b + 0.3 * X.c + 0.2 * rs.randn(n)) > 1.1).astype(int).to_numpy()
    model = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X, immutable=["c"])
    plaus = mipcf.IsolationForestConstraint(n_estimators=6, max_samples=32, random_state=0, desired_class=1)
    rec = mipcf.Recourse(model, schema, cost="l1", data=X, plausibility=plaus)
    denied = X[model.predict(X) == 0]
    checked = 0
    for i in range(12):
        row = denied.iloc[[i]]
        ex = rec.explain(row, desired_class=1)
        forest = rec._plaus.forests[1][0]
        ts = _thresholds(model.estimators_)
        for f, s in _thresholds(forest.estimators_).items():
            ts.setdefault(f, set()).update(s)
        x0 = row.to_numpy(dtype=float)[0]
        axes = [_cell_points(x0[j], sorted(ts.get(j, ())), float(X.iloc[:, j].min()), float(X.iloc[:, j].max()))
                if j < 2 else [x0[j]] for j in range(3)]
        G = pd.DataFrame(list(itertools.product(*axes)), columns=X.columns)
        ok = (model.predict(G) == 1) & (forest.predict(G) == 1)
        span = (X.max() - X.min()).to_numpy()
        cost = (np.abs(G.to_numpy() - x0) / span).sum(axis=1)
        best = cost[ok].min(initial=np.inf)
        if not np.isfinite(best):
            assert ex.status == st.INFEASIBLE
            continue
        assert ex.status == st.OPTIMAL, ex
        assert forest.predict(ex.counterfactual)[0] == 1 and model.predict(ex.counterfactual)[0] == 1
        assert ex.cost == pytest.approx(best, abs=1e-6)
        checked += 1
    assert checked >= 8


def test_mlp_counterfactuals_are_inliers():
    relu = pytest.importorskip("encoders.relu")
    assert hasattr(relu, "encode_relu")
    from sklearn.neural_network import MLPClassifier

    X, y = _data(1)
    model = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2000, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    rec = mipcf.Recourse(model, schema, cost="l1", data=X, plausibility=mipcf.IsolationForestConstraint(
        n_estimators=8, max_samples=32, random_state=0, desired_class=1))
    G = pd.DataFrame(GRID, columns=X.columns)
    denied = X[model.predict(X) == 0].drop_duplicates()
    for i in range(min(5, len(denied))):
        row = denied.iloc[[i]]
        ex = rec.explain(row, desired_class=1)
        forest = rec._plaus.forests[1][0]
        best = _costs(row.to_numpy(float)[0], GRID, "l1")[(model.predict(G) == 1) & (forest.predict(G) == 1)].min(
            initial=np.inf)
        if not np.isfinite(best):
            assert ex.status == st.INFEASIBLE
            continue
        assert ex.ok and forest.predict(ex.counterfactual)[0] == 1
        assert ex.cost == pytest.approx(best, abs=1e-6)


def test_user_forest_and_errors():
    X, y = _data(2)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    forest = IsolationForest(n_estimators=5, max_samples=32, random_state=0).fit(X)
    rec = mipcf.Recourse(model, schema, data=X, plausibility=mipcf.IsolationForestConstraint(forest=forest))
    row = X[model.predict(X) == 0].iloc[[0]]
    ex = rec.explain(row, desired_class=1)
    assert ex.ok and forest.predict(ex.counterfactual)[0] == 1
    assert "plausibility" in ex.summary() and ex.summary()["inlier"]
    with pytest.raises(ValueError, match="needs training data"):
        mipcf.Recourse(model, schema, plausibility=mipcf.IsolationForestConstraint()).explain(row, 1)
    other = IsolationForest(n_estimators=3, random_state=0).fit(X.rename(columns={"a": "zz"}))
    with pytest.raises(ValueError, match="zz"):
        mipcf.Recourse(model, schema, data=X, plausibility=mipcf.IsolationForestConstraint(forest=other)).explain(row, 1)
    with pytest.raises(ValueError, match="l0"):
        mipcf.Recourse(model, schema, cost="l0", data=X, plausibility=mipcf.SupportConstraint()).explain(row, 1)
    with pytest.raises(ValueError, match="radius"):
        mipcf.SupportConstraint(radius=0)


# ---------------------------------------------------------------------------------------
# support constraint


def _check_support(seeds, per_model: int) -> int:
    n = truncated = 0
    for seed in seeds:
        X, y = _data(seed)
        schema = mipcf.Schema.from_frame(X, immutable=["c"] if seed % 2 else [])
        for model in _models(seed):
            model.fit(X, y)
            norm = ["l1", "linf"][seed % 2]
            k, r = [(1, 0.2), (2, 0.25), (3, 0.4)][seed % 3]
            rec = mipcf.Recourse(model, schema, cost=norm, data=X,
                                 plausibility=mipcf.SupportConstraint(k=k, radius=r, max_candidates=60))
            G = pd.DataFrame(GRID, columns=X.columns)
            ok_model = model.predict(G) == 1
            P = X.to_numpy(float)[model.predict(X) == 1]
            # supporters of each grid point: training points of the class within r (cost computed here)
            D = np.abs(GRID[:, None, :] - P[None, :, :]) / HI
            dist = D.sum(axis=2) if norm == "l1" else D.max(axis=2)
            ok_support = (dist <= r + 1e-12).sum(axis=1) >= k
            denied = X[model.predict(X) == 0].drop_duplicates()
            for i in range(min(per_model, len(denied))):
                row = denied.iloc[[i]]
                x0 = row.to_numpy(float)[0]
                allowed = np.ones(len(G), bool) if seed % 2 == 0 else GRID[:, 2] == x0[2]
                cost = _costs(x0, GRID, norm)
                best = cost[ok_model & ok_support & allowed].min(initial=np.inf)
                ex = rec.explain(row, desired_class=1)
                n += 1
                if not np.isfinite(best):
                    assert ex.status == st.INFEASIBLE, (seed, type(model).__name__, ex)
                    continue
                if ex.status == st.FEASIBLE and "support candidates" in ex.message:
                    truncated += 1  # honest: optimal over the slots only, never below the optimum
                    assert ex.cost >= best - 1e-9
                else:
                    assert ex.status == st.OPTIMAL, (seed, type(model).__name__, ex)
                    assert ex.cost == pytest.approx(best, abs=1e-6), (seed, type(model).__name__, norm, k, r)
                cf = ex.counterfactual.to_numpy(float)[0]
                dd = np.abs(P - cf) / HI
                dcf = dd.sum(axis=1) if norm == "l1" else dd.max(axis=1)
                assert (dcf <= r + 1e-12).sum() >= k
                assert ex.extra["plausibility"]["support"] >= k
    assert truncated <= n // 10
    return n


def test_support_matches_grid_oracle():
    assert _check_support(range(3), per_model=5) >= 40


@pytest.mark.slow
def test_support_matches_grid_oracle_many():
    assert _check_support(range(12), per_model=8) >= 200


def test_support_truncated_candidates_is_honest():
    X, y = _data(4)
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    row = X[model.predict(X) == 0].iloc[[0]]
    full = mipcf.Recourse(model, schema, data=X, plausibility=mipcf.SupportConstraint(k=1, radius=0.05,
                                                                                      max_candidates=200))
    tiny = mipcf.Recourse(model, schema, data=X, plausibility=mipcf.SupportConstraint(k=1, radius=0.05,
                                                                                      max_candidates=1))
    a, b = full.explain(row, 1), tiny.explain(row, 1)
    assert a.status == st.OPTIMAL
    assert b.ok and b.cost >= a.cost - 1e-9
    if b.cost > a.cost + 1e-9:  # the one slot missed the optimum: it must not claim a proof
        assert b.status == st.FEASIBLE


# ---------------------------------------------------------------------------------------
# measures


def test_measures_against_direct_computation():
    X, y = _data(5)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    cost = mipcf.make_cost(schema, "l1", "range")
    cfs = pd.DataFrame(GRID[::17], columns=X.columns)
    P = X.to_numpy(float)[model.predict(X) == 1]
    want = (np.abs(cfs.to_numpy()[:, None, :] - P[None]) / HI).sum(axis=2).min(axis=1)
    got = nearest_distance(cfs, X, schema, cost, model=model, desired=1)
    assert np.allclose(got, want)
    forest = IsolationForest(n_estimators=10, random_state=0).fit(X[model.predict(X) == 1])
    assert inlier_share(cfs, forest) == pytest.approx(np.mean(forest.predict(cfs) == 1))
    score, inl = lof_scores(cfs, X[model.predict(X) == 1])
    assert score.shape == (len(cfs),) and inl.dtype == bool
    table = evaluate(cfs, X, schema, cost, model, 1, forest=forest)
    assert np.allclose(table["nearest_distance"], want)
    assert list(table["iforest_inlier"]) == list(forest.predict(cfs) == 1)


def _both_solvers(n_rows: int, n_trees: int) -> None:
    rs = np.random.RandomState(11)
    a = rs.rand(150)
    X = pd.DataFrame({"a": a, "b": np.clip(a + 0.1 * rs.randn(150), 0, 1), "c": rs.rand(150)})
    y = ((X.a + X.b + 0.2 * rs.randn(150)) > 1.0).astype(int).to_numpy()
    model = LogisticRegression().fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    for plaus in (mipcf.IsolationForestConstraint(n_estimators=n_trees, max_samples=32, random_state=0,
                                                  desired_class=1),
                  mipcf.SupportConstraint(k=2, radius=0.1)):
        recs = [mipcf.Recourse(model, schema, data=X, plausibility=plaus, solver=s) for s in ("highs", "ortools")]
        plain = mipcf.Recourse(model, schema, data=X)
        for i in range(n_rows):
            row = X[model.predict(X) == 0].iloc[[i]]
            ea, eb = (r.explain(row, desired_class=1) for r in recs)
            assert ea.status == eb.status == st.OPTIMAL, (ea, eb)
            assert ea.cost == pytest.approx(eb.cost, rel=1e-6, abs=1e-7)
            assert ea.cost >= plain.explain(row, desired_class=1).cost - 1e-9
            assert recs[0]._plaus.accepts(ea.counterfactual, 1) and recs[1]._plaus.accepts(eb.counterfactual, 1)


def test_real_valued_linear_model_same_optimum_on_both_solvers():
    """No grid exists for real features under a linear model: OR-Tools is the independent check."""
    _both_solvers(n_rows=2, n_trees=4)


@pytest.mark.slow
def test_real_valued_linear_model_same_optimum_on_both_solvers_many():
    _both_solvers(n_rows=8, n_trees=10)


# ---------------------------------------------------------------------------------------
# leaf-region support: grid oracle with leaves counted tree by tree through sklearn's apply


def _sklearn_trees(model):
    """(transform to the trees' inputs, fitted sklearn trees) of a model or Pipeline."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return model[:-1].transform, _sklearn_trees(model[-1])[1]
    est = getattr(model, "estimators_", None)
    return (lambda Z: Z), ([model] if est is None else list(np.asarray(est, dtype=object).ravel()))


def _leaf_support_counts(model, X: pd.DataFrame, cls: np.ndarray, Z: pd.DataFrame) -> np.ndarray:
    """(rows of Z, trees): training rows with ``cls`` True that share Z's leaf, tree by tree."""
    transform, trees = _sklearn_trees(model)
    A, B = np.asarray(transform(X), dtype=np.float32), np.asarray(transform(Z), dtype=np.float32)
    out = np.zeros((len(Z), len(trees)), dtype=np.int64)
    for t, tree in enumerate(trees):
        names = getattr(tree, "feature_names_in_", None)  # a bare tree fitted on a frame wants one
        a, b = (A, B) if names is None else (pd.DataFrame(A, columns=names), pd.DataFrame(B, columns=names))
        train, grid = tree.apply(a[cls]), tree.apply(b)
        out[:, t] = (grid[:, None] == train[None, :]).sum(axis=1)
    return out


def _leaf_models(seed: int, n_classes: int):
    from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # <= 5 trees of depth <= 3; a 3-class GB is one stage of 3 trees; the scaler moves the thresholds
    return [DecisionTreeClassifier(max_depth=3, random_state=seed),
            RandomForestClassifier(n_estimators=5, max_depth=3, random_state=seed),
            GradientBoostingClassifier(n_estimators=5 if n_classes == 2 else 1, max_depth=2, random_state=seed),
            make_pipeline(StandardScaler(), ExtraTreesClassifier(n_estimators=3, max_depth=3, random_state=seed))]


def _leaf_data(seed: int, n_features: int, n_classes: int) -> tuple[pd.DataFrame, np.ndarray]:
    X, y = _data(seed)
    X = X[list("abc")[:n_features]]
    if n_classes == 3:  # a third class on the far corner
        y = np.where(X.a.to_numpy() + X.b.to_numpy() >= 8, 2, y)
    return X, y


def _check_leaf_support(seed: int, per_model: int, break_encoding=None) -> tuple[int, int, int]:
    """Every case: MILP optimum == grid minimum over predict == desired and supported leaves.

    Returns (cases, infeasible cases, cases where the constraint raised the cost).
    """
    n_features, n_classes = [3, 2, 3, 3][seed % 4], [2, 2, 2, 3][seed % 4]
    X, y = _leaf_data(seed, n_features, n_classes)
    G = pd.DataFrame(np.array(list(itertools.product(range(HI + 1), repeat=n_features)), float), columns=X.columns)
    up_a, fixed_c = seed % 3 == 1, seed % 5 == 4 and n_features == 3
    schema = mipcf.Schema.from_frame(X, increase_only=["a"] if up_a else [], immutable=["c"] if fixed_c else [])
    n = infeasible = bites = 0
    for m, model in enumerate(_leaf_models(seed, n_classes)):
        model.fit(X, y)
        norm = ["l1", "linf", "l0"][(seed + m) % 3]
        min_samples = [1, 2, 5, 12, 40][(seed + 2 * m) % 5]
        labels = y if (seed + m) % 2 else None  # the class of a training row: labels, else predict
        desired = [1, 1, 2][(seed + m) % 3] if n_classes == 3 else 1
        spec = mipcf.LeafSupportConstraint(min_samples=min_samples, labels=labels)
        rec = mipcf.Recourse(model, schema, cost=norm, data=X, plausibility=spec, prune=(seed + m) % 4 != 3)
        if break_encoding is not None:
            break_encoding(rec)
        cls = (model.predict(X) if labels is None else labels) == desired
        support = _leaf_support_counts(model, X, cls, G).min(axis=1)
        ok = (model.predict(G) == desired) & (support >= min_samples)
        plain_ok = model.predict(G) == desired
        denied = X[model.predict(X) != desired].drop_duplicates()
        for i in range(min(per_model, len(denied))):
            row = denied.iloc[[i]]
            x0 = row.to_numpy(float)[0]
            allowed = np.ones(len(G), bool)
            if up_a:
                allowed &= G.a.to_numpy() >= x0[0]
            if fixed_c:
                allowed &= G.c.to_numpy() == x0[2]
            cost = _costs(x0, G.to_numpy(), norm)
            best = cost[ok & allowed].min(initial=np.inf)
            ex = rec.explain(row, desired_class=desired)
            n += 1
            case = (seed, type(model).__name__, norm, min_samples, labels is not None, i)
            if not np.isfinite(best):
                assert ex.status == st.INFEASIBLE, (case, ex)
                infeasible += 1
                continue
            assert ex.status == st.OPTIMAL, (case, ex)
            assert ex.cost == pytest.approx(best, abs=1e-6), case
            cf = ex.counterfactual
            assert model.predict(cf)[0] == desired, case
            got = _leaf_support_counts(model, X, cls, cf[X.columns])[0]
            assert got.min() >= min_samples, case
            assert ex.extra["plausibility"]["support"] == got.min(), case
            bites += best > cost[plain_ok & allowed].min() + 1e-9
    return n, infeasible, bites


@pytest.mark.parametrize("seed", range(8))
def test_leaf_support_matches_grid_oracle(seed):
    n, _, _ = _check_leaf_support(seed, per_model=4)
    assert n >= 14  # 8 seeds: >= 112 cases (128 when written)


def test_leaf_support_oracle_is_not_vacuous():
    """Over a few seeds the constraint raises some optimum and makes some query infeasible."""
    totals = np.sum([_check_leaf_support(seed, per_model=3)[1:] for seed in (0, 2, 4)], axis=0)
    assert totals[0] >= 1 and totals[1] >= 1, totals


def test_leaf_support_moves_the_optimum_out_of_an_unsupported_leaf():
    X, y = _data(0)
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    plain = mipcf.Recourse(model, schema, cost="l1", data=X)
    rec = mipcf.Recourse(model, schema, cost="l1", data=X, plausibility=mipcf.LeafSupportConstraint(min_samples=5))
    cls = model.predict(X) == 1
    moved = raised = 0
    for i in range(12):
        row = X[model.predict(X) == 0].iloc[[i]]
        free, ex = plain.explain(row, desired_class=1), rec.explain(row, desired_class=1)
        assert free.status == ex.status == st.OPTIMAL
        assert ex.cost >= free.cost - 1e-9
        assert model.predict(ex.counterfactual)[0] == 1
        assert _leaf_support_counts(model, X, cls, ex.counterfactual).min() >= 5
        assert rec._plaus.accepts(ex.counterfactual, 1)
        if _leaf_support_counts(model, X, cls, free.counterfactual).min() < 5:
            assert not rec._plaus.accepts(free.counterfactual, 1)
            moved += 1  # the unconstrained optimum lands in an unsupported leaf
            raised += ex.cost > free.cost + 1e-9  # (else a supported point ties with it)
    assert moved >= 1 and raised >= 1, (moved, raised)


def test_leaf_support_incumbent_skips_rows_the_model_mislabels():
    """With labels, a row the model gives the desired class can sit in an unsupported leaf."""
    X, y = _data(1)
    model = DecisionTreeClassifier(max_depth=3, random_state=1).fit(X, y)
    schema = mipcf.Schema.from_frame(X)
    # labels that disagree with the model on the leaf of the first person's unconstrained
    # incumbent: no labelled row supports that leaf, though the model gives it class 1
    first = X[model.predict(X) == 0].iloc[[0]]
    plain = mipcf.Recourse(model, schema, cost="l1", data=X)
    v0 = mipcf.problem.factual_values(schema, first.iloc[0])
    naive = plain._pruner_for().incumbent(first, v0, 1, plain.problem.query(v0, 1))
    bad = model.apply(schema.frame_from_values(naive[0], first))[0]
    labels = np.where(model.apply(X) == bad, 0, y)
    rec = mipcf.Recourse(model, schema, cost="l1", data=X, plausibility=mipcf.LeafSupportConstraint(labels=labels))
    pl, pruner = rec.problem.extra["plausibility"], rec._pruner_for()
    G = pd.DataFrame(GRID, columns=X.columns)
    ok = (model.predict(G) == 1) & (_leaf_support_counts(model, X, labels == 1, G).min(axis=1) >= 1)
    naive_wrong = 0
    for i in range(6):
        row = X[model.predict(X) == 0].iloc[[i]]
        values = mipcf.problem.factual_values(schema, row.iloc[0])
        q = rec.problem.query(values, rec.problem.encoding.class_index(1))
        naive = pruner.incumbent(row, values, 1, q)  # the model's nearest class-1 row, repaired
        naive_wrong += not pl.incumbent_ok(schema.frame_from_values(naive[0], row), 1)
        inc = pl.incumbent(pruner, values, 1, q)
        assert inc is not None
        frame = schema.frame_from_values(inc[0], row)
        assert model.predict(frame)[0] == 1 and pl.accepts(frame, 1)
        assert _leaf_support_counts(model, X, labels == 1, frame).min() >= 1
        ex = rec.explain(row, desired_class=1)
        best = _costs(row.to_numpy(float)[0], GRID, "l1")[ok].min()
        assert ex.status == st.OPTIMAL and ex.cost == pytest.approx(best, abs=1e-6)
        assert ex.cost <= inc[1] + 1e-9
    assert naive_wrong >= 1  # the plausibility incumbent was needed


def test_leaf_support_errors_and_messages():
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(2)
    schema = mipcf.Schema.from_frame(X)
    row = X.iloc[[0]]
    for model, name in ((LogisticRegression(), "LogisticRegression"),
                        (MLPClassifier(hidden_layer_sizes=(3,), max_iter=50, random_state=0), "MLPClassifier"),
                        (make_pipeline(StandardScaler(), LogisticRegression()), "LogisticRegression")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the MLP's convergence does not matter here
            model.fit(X, y)
        rec = mipcf.Recourse(model, schema, data=X, plausibility=mipcf.LeafSupportConstraint())
        with pytest.raises(ValueError, match=f"{name}.*no tree leaves"):
            rec.explain(row, desired_class=1)
    with pytest.raises(ValueError, match="min_samples"):
        mipcf.LeafSupportConstraint(min_samples=0)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="labels"):
        mipcf.Recourse(model, schema, data=X, plausibility=mipcf.LeafSupportConstraint(labels=y[:5])).explain(row, 1)
    with pytest.raises(ValueError, match="needs training data"):
        mipcf.Recourse(model, schema, plausibility=mipcf.LeafSupportConstraint()).explain(row, 1)
    # more desired-class rows than exist: no leaf of any tree is supported -> certified infeasible, saying so
    rec = mipcf.Recourse(model, schema, data=X, plausibility=mipcf.LeafSupportConstraint(min_samples=len(X) + 1))
    ex = rec.explain(X[model.predict(X) == 0].iloc[[0]], desired_class=1)
    assert ex.status == st.INFEASIBLE and "supported leaves" in ex.message


def test_leaf_support_refuses_renumbered_boosters():
    xgboost = pytest.importorskip("xgboost")
    X, y = _data(3)
    model = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
    rec = mipcf.Recourse(model, mipcf.Schema.from_frame(X), data=X, plausibility=mipcf.LeafSupportConstraint())
    with pytest.raises(ValueError, match="does not support XGBClassifier"):
        rec.explain(X.iloc[[0]], desired_class=1)


def test_support_at_a_time_limit_returns_a_supported_incumbent():
    """With data=, a time limit under SupportConstraint still ends with a verified, supported answer."""
    from mipcf.demo import credit_data, credit_schema

    X, y = credit_data(n=400)
    model = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0).fit(X, y)
    spec = mipcf.SupportConstraint(k=1, radius=0.05)
    rec = mipcf.Recourse(model, credit_schema(X), cost="l1", time_limit=0.05, data=X, plausibility=spec)
    P = X[model.predict(X) == 1]
    answered = 0
    for i in range(3):
        ex = rec.explain(X[model.predict(X) == 0].iloc[[i]], desired_class=1)
        assert ex.status in ("optimal", "feasible"), ex
        assert model.predict(ex.counterfactual)[0] == 1
        assert ex.extra["plausibility"]["support"] >= 1
        d = mipcf.plausibility.pairwise_cost(rec.schema, rec.cost_spec, ex.counterfactual[X.columns], P)
        assert d.min() <= 0.05 + 1e-12  # within the radius of a favourable training row, costed here
        answered += 1
    assert answered == 3
