"""Diverse explanations and max_changes against brute-force enumeration on tiny integer grids.

The oracle enumerates every point of the grid, asks the model for its class and computes
costs by hand. Ties are handled by conditioning: item ``i`` must cost exactly what the
cheapest point allowed by the solver's *own* earlier items costs, so any tie-break the solver
makes is accepted and every other deviation fails.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mipcf
from mipcf.diversity import NO_MORE

NAMES = ["a", "b", "c", "d"]
HI = 4
WEIGHTS = {"a": 1.0, "b": 1.3, "c": 0.7, "d": 1.9}


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, HI + 1, size=(300, 4)), columns=NAMES)
    X.iloc[0] = 0
    X.iloc[1] = HI
    score = X["a"] + 0.8 * X["b"] - 0.6 * X["c"] + 0.5 * X["d"] + rng.normal(0, 0.8, len(X))
    return X, (score > 4.0).astype(int).to_numpy()


def _schema(X: pd.DataFrame) -> mipcf.Schema:
    return mipcf.Schema.from_frame(X, integer=NAMES, increase_only=["d"])


def _models():
    X, y = _data()
    return X, {
        "tree": DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=5, max_depth=3, random_state=1).fit(X, y),
        "linear": LogisticRegression(max_iter=2000).fit(X, y),
    }


class Grid:
    """Every integer point of the box, its class and per-feature costs, for one person."""

    def __init__(self, model, x0: np.ndarray, desired: int, weights=WEIGHTS, l0: float = 0.0,
                 l1: float = 1.0) -> None:
        pts = np.array(list(itertools.product(range(HI + 1), repeat=4)), dtype=float)
        pts = pts[pts[:, 3] >= x0[3]]  # d is increase-only
        self.pts = pts
        self.ok = model.predict(pd.DataFrame(pts.astype(int), columns=NAMES)) == desired
        w = np.array([weights[n] for n in NAMES])
        self.w = w
        self.changed = pts != x0
        self.cost = l1 * (np.abs(pts - x0) * w).sum(axis=1) + l0 * self.changed.sum(axis=1)
        self.x0 = x0

    def best(self, allowed: np.ndarray) -> float | None:
        m = self.ok & allowed
        return float(self.cost[m].min()) if m.any() else None

    def support_mask(self, s: frozenset) -> np.ndarray:
        cols = [NAMES.index(n) for n in s]
        return self.changed[:, cols].all(axis=1)


def canonical(model, pts: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Tree models: each point replaced by the point of its split region nearest ``x0``."""
    trees = model.estimators_ if hasattr(model, "estimators_") else [model]
    out = pts.copy()
    for j in range(pts.shape[1]):
        th = np.unique(np.concatenate([t.tree_.threshold[t.tree_.feature == j] for t in trees]))
        side = pts[:, [j]] > th[None, :]
        grid = np.arange(HI + 1, dtype=float)
        gside = grid[:, None] > th[None, :]
        for i in range(len(pts)):
            same = (gside == side[i]).all(axis=1)
            cand = grid[same]
            out[i, j] = cand[np.argmin(np.abs(cand - x0[j]))]
    return out


def _denied(model, X, n=3):
    idx = np.nonzero(model.predict(X) == 0)[0]
    return [X.iloc[[i]] for i in idx[:n]]


def _vals(ex) -> np.ndarray:
    return ex.counterfactual[NAMES].to_numpy(dtype=float)[0]


def _check_items(model, exs, desired=1):
    for ex in exs:
        assert ex.status == "optimal", ex
        assert model.predict(ex.counterfactual)[0] == desired


X, MODELS = _models()


@pytest.mark.parametrize("kind", ["tree", "forest", "linear"])
def test_support_cuts_match_enumeration(kind):
    model = MODELS[kind]
    rec = mipcf.Recourse(model, _schema(X), cost="l1", scale=WEIGHTS, data=X)
    cases = 0
    for row in _denied(model, X):
        x0 = row.to_numpy(dtype=float)[0]
        grid = Grid(model, x0, 1)
        exs = rec.explain(row, k=4, diversity="support")
        _check_items(model, exs)
        allowed = np.ones(len(grid.pts), bool)
        for i, ex in enumerate(exs):
            assert ex.cost == pytest.approx(grid.best(allowed), abs=1e-6), (kind, i)
            s = exs.supports[i]
            assert s == frozenset(n for n, a, b in zip(NAMES, x0, _vals(ex)) if a != b)
            for earlier in exs.supports[:i]:
                assert not earlier <= s  # never a superset of an earlier support
            allowed &= ~grid.support_mask(s)
            cases += 1
        if len(exs) < 4:
            assert exs.stop_reason == NO_MORE and grid.best(allowed) is None
    assert cases >= 6


@pytest.mark.parametrize("kind", ["forest", "linear"])
def test_disjoint_cuts_share_no_feature(kind):
    model = MODELS[kind]
    rec = mipcf.Recourse(model, _schema(X), cost="l1", scale=WEIGHTS, data=X)
    for row in _denied(model, X):
        x0 = row.to_numpy(dtype=float)[0]
        grid = Grid(model, x0, 1)
        exs = rec.explain(row, k=4, diversity="disjoint")
        _check_items(model, exs)
        used: set = set()
        for i, ex in enumerate(exs):
            allowed = ~grid.changed[:, [NAMES.index(n) for n in used]].any(axis=1) if used else \
                np.ones(len(grid.pts), bool)
            assert ex.cost == pytest.approx(grid.best(allowed), abs=1e-6)
            assert not (exs.supports[i] & used)
            used |= exs.supports[i]
        if len(exs) < 4:
            allowed = ~grid.changed[:, [NAMES.index(n) for n in used]].any(axis=1)
            assert exs.stop_reason == NO_MORE and grid.best(allowed) is None


@pytest.mark.parametrize("kind", ["tree", "forest", "linear"])
def test_distance_cuts_keep_min_distance(kind):
    model = MODELS[kind]
    delta = 1.5
    rec = mipcf.Recourse(model, _schema(X), cost="l1", scale=WEIGHTS, data=X)
    for row in _denied(model, X, n=2):
        x0 = row.to_numpy(dtype=float)[0]
        grid = Grid(model, x0, 1)
        # tree answers are the cheapest point of their split region (see mipcf.diversity)
        pts = grid.pts if kind == "linear" else canonical(model, grid.pts, x0)
        cost = (np.abs(pts - x0) * grid.w).sum(axis=1)
        exs = rec.explain(row, k=3, diversity="distance", min_distance=delta)
        _check_items(model, exs)
        got = [_vals(ex) for ex in exs]
        allowed = np.ones(len(pts), bool)
        for i, ex in enumerate(exs):
            m = grid.ok & allowed
            assert ex.cost == pytest.approx(cost[m].min(), abs=1e-6)
            for g in got[:i]:
                assert (np.abs(got[i] - g) * grid.w).sum() >= delta - 1e-9
            allowed &= (np.abs(pts - got[i]) * grid.w).sum(axis=1) >= delta - 1e-9
        if len(exs) < 3:
            assert exs.stop_reason == NO_MORE and not (grid.ok & allowed).any()


@pytest.mark.parametrize("kind,cost", [("forest", "l1"), ("linear", "l1"), ("forest", "l0"), ("tree", "linf")])
def test_max_changes_equals_grid_oracle(kind, cost):
    model = MODELS[kind]
    for m in (1, 2):
        rec = mipcf.Recourse(model, _schema(X), cost=cost, scale=WEIGHTS, data=X, max_changes=m)
        for row in _denied(model, X, n=2):
            x0 = row.to_numpy(dtype=float)[0]
            grid = Grid(model, x0, 1)
            d = np.abs(grid.pts - x0) * grid.w
            c = {"l1": d.sum(axis=1), "l0": grid.changed.sum(axis=1), "linf": d.max(axis=1)}[cost]
            ex = rec.explain(row)
            allowed = grid.ok & (grid.changed.sum(axis=1) <= m)
            if not allowed.any():
                assert ex.status == "infeasible"
                continue
            assert ex.status == "optimal"
            assert model.predict(ex.counterfactual)[0] == 1
            assert len(ex.changes) <= m
            assert ex.cost == pytest.approx(c[allowed].min(), abs=1e-6)


def test_max_changes_zero_is_certified_infeasible():
    model = MODELS["linear"]
    rec = mipcf.Recourse(model, _schema(X), max_changes=0)
    assert rec.explain(_denied(model, X, 1)[0]).status == "infeasible"
    with pytest.raises(ValueError, match="max_changes"):
        mipcf.Recourse(model, _schema(X), max_changes=-1)


def test_pure_l0_support_list_with_pruning_shortcut():
    """Pure l0 on a forest takes the exhaustive single-change shortcut; cuts must still hold."""
    model = MODELS["forest"]
    rec = mipcf.Recourse(model, _schema(X), cost="l0", data=X)
    for row in _denied(model, X, n=2):
        x0 = row.to_numpy(dtype=float)[0]
        grid = Grid(model, x0, 1, l0=1.0, l1=0.0)
        exs = rec.explain(row, k=5, diversity="support")
        _check_items(model, exs)
        allowed = np.ones(len(grid.pts), bool)
        for i, ex in enumerate(exs):
            assert ex.cost == pytest.approx(grid.best(allowed))
            allowed &= ~grid.support_mask(exs.supports[i])
        if len(exs) < 5:
            assert grid.best(allowed) is None


@pytest.mark.parametrize("kind,div,md", [("forest", "support", None), ("linear", "distance", 1.5),
                                         pytest.param("forest", "distance", 1.5, marks=pytest.mark.slow)])
def test_ortools_gives_the_same_cost_sequences(kind, div, md):
    """Rows added to the loaded solver (support) and a private augmented model (distance)."""
    model = MODELS[kind]
    row = _denied(model, X, 1)[0]
    a = mipcf.Recourse(model, _schema(X), scale=WEIGHTS).explain(row, k=3, diversity=div, min_distance=md)
    b = mipcf.Recourse(model, _schema(X), scale=WEIGHTS, solver="ortools").explain(
        row, k=3, diversity=div, min_distance=md)
    assert a.costs == pytest.approx(b.costs, abs=1e-6)


def test_explanations_object_and_validation():
    model = MODELS["linear"]
    rec = mipcf.Recourse(model, _schema(X), scale=WEIGHTS)
    row = _denied(model, X, 1)[0]
    single = rec.explain(row)          # k=1 compiled without indicators, then k=3 recompiles
    exs = rec.explain(row, k=3)
    assert isinstance(single, mipcf.Explanation) and exs[0].cost == pytest.approx(single.cost)
    frame = exs.to_frame()
    assert list(frame.index) == list(range(1, len(exs) + 1))
    assert list(frame["cost"]) == pytest.approx(exs.costs)
    assert exs.costs == sorted(exs.costs)
    assert rec.explain(row).cost == pytest.approx(single.cost)  # cut rows were removed again
    with pytest.raises(ValueError, match="min_distance"):
        rec.explain(row, k=2, diversity="distance")
    with pytest.raises(ValueError, match="diversity"):
        rec.explain(row, k=2, diversity="nope")
    with pytest.raises(ValueError, match="k must"):
        rec.explain(row, k=0)
    accepted = X[model.predict(X) == 1].iloc[[0]]
    done = rec.explain(accepted, desired_class=1, k=3)
    assert len(done) == 1 and done[0].cost == 0.0 and "already" in done.stop_reason


# ---- percentile costs and cost tables -------------------------------------------------

def _pct_data():
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.integers(0, 5, size=(250, 2)), columns=["a", "b"])
    X["r"] = np.round(rng.normal(0, 1, len(X)) * 2) / 2  # a real column with few distinct values
    X.iloc[0] = [0, 0, X["r"].min()]
    X.iloc[1] = [4, 4, X["r"].max()]
    y = ((X["a"] + 0.7 * X["b"] + X["r"] + rng.normal(0, 0.8, len(X))) > 3.5).astype(int).to_numpy()
    return X, y


PX, PY = _pct_data()
P_MODELS = {"linear": LogisticRegression(max_iter=2000).fit(PX, PY),
            "forest": RandomForestClassifier(n_estimators=5, max_depth=3, random_state=2).fit(PX, PY)}


def _ecdf(col: str, v):
    train = PX[col].to_numpy(dtype=float)
    return np.mean(train[None, :] <= np.asarray(v, dtype=float)[:, None], axis=1)


@pytest.mark.parametrize("kind", ["linear", "forest"])
@pytest.mark.parametrize("cost", ["percentile", "percentile_max"])
def test_percentile_costs_equal_direct_computation_on_the_grid(kind, cost):
    model = P_MODELS[kind]
    schema = mipcf.Schema.from_frame(PX, integer=["a", "b"])
    rec = mipcf.Recourse(model, schema, cost=cost, data=PX)
    grids = {"a": np.arange(5.0), "b": np.arange(5.0), "r": np.unique(PX["r"])}
    for i in np.nonzero(model.predict(PX) == 0)[0][:3]:
        row = PX.iloc[[i]]
        x0 = row.to_numpy(dtype=float)[0]
        axes = [np.union1d(grids[c], [x0[j]]) for j, c in enumerate(PX.columns)]
        pts = np.array(list(itertools.product(*axes)))
        ok = model.predict(pd.DataFrame(pts, columns=PX.columns).astype(PX.dtypes)) == 1
        d = np.column_stack([np.abs(_ecdf(c, pts[:, j]) - _ecdf(c, [x0[j]])[0]) for j, c in enumerate(PX.columns)])
        total = d.sum(axis=1) if cost == "percentile" else d.max(axis=1)
        ex = rec.explain(row)
        assert ex.status == "optimal"
        assert model.predict(ex.counterfactual)[0] == 1
        assert ex.cost == pytest.approx(total[ok].min(), abs=1e-9)
        cf = ex.counterfactual.to_numpy(dtype=float)[0]
        for j, c in enumerate(PX.columns):  # the answer sits on the grid (or at the factual)
            assert cf[j] in axes[j]


def test_user_cost_tables_restrict_values_and_price_them():
    model = MODELS["linear"]
    table = {0: 0.4, 2: 0.25, 4: 2.0}
    rec = mipcf.Recourse(model, _schema(X), cost="l1", scale="none", cost_tables={"a": table})
    for row in _denied(model, X, n=3):
        x0 = row.to_numpy(dtype=float)[0]
        grid = Grid(model, x0, 1, weights={n: 1.0 for n in NAMES})
        a_ok = (grid.pts[:, 0] == x0[0]) | np.isin(grid.pts[:, 0], list(table))
        a_cost = np.array([0.0 if a == x0[0] else table[int(a)] if a in table else np.inf for a in grid.pts[:, 0]])
        total = a_cost + np.abs(grid.pts[:, 1:] - x0[1:]).sum(axis=1)
        ex = rec.explain(row)
        m = grid.ok & a_ok
        if not m.any():
            assert ex.status == "infeasible"
            continue
        assert ex.status == "optimal" and ex.cost == pytest.approx(total[m].min(), abs=1e-9)
        a1 = float(ex.counterfactual["a"].iloc[0])
        assert a1 == x0[0] or a1 in table
    with pytest.raises(ValueError, match="outside"):
        mipcf.Recourse(model, _schema(X), cost_tables={"a": {9: 1.0}})
    with pytest.raises(ValueError, match="unknown feature"):
        mipcf.Recourse(model, _schema(X), cost_tables={"zz": {1: 1.0}})
    with pytest.raises(ValueError, match="training data"):
        mipcf.Recourse(model, _schema(X), cost="percentile")


def test_percentile_with_max_changes_and_support_cuts():
    model = P_MODELS["forest"]
    schema = mipcf.Schema.from_frame(PX, integer=["a", "b"])
    rec = mipcf.Recourse(model, schema, cost="percentile", data=PX, max_changes=1)
    row = PX.iloc[[int(np.nonzero(model.predict(PX) == 0)[0][0])]]
    exs = rec.explain(row, k=3)
    assert len(exs) >= 1
    for i, ex in enumerate(exs):
        assert ex.status == "optimal" and len(ex.changes) <= 1
        assert model.predict(ex.counterfactual)[0] == 1
        for earlier in exs.supports[:i]:
            assert not earlier <= exs.supports[i]


# ---- linked features ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tree", "forest", "linear"])
def test_links_match_grid_oracle(kind):
    """a changes => c changes; d moves with b (factor 1); then d not actionable, factor 2."""
    model = MODELS[kind]
    base = _schema(X).link("a", "c")
    variants = [(base.link("b", "d", factor=1.0), 1.0, True),
                (mipcf.Schema.from_frame(X, integer=NAMES, not_actionable=["d"]).link("a", "c")
                 .link("b", "d", factor=2.0), 2.0, False)]
    for schema, factor, d_increase_only in variants:
        rec = mipcf.Recourse(model, schema, cost="l1", scale=WEIGHTS, data=X)
        for row in _denied(model, X, n=3):
            x0 = row.to_numpy(dtype=float)[0]
            pts = np.array(list(itertools.product(range(HI + 1), repeat=4)), dtype=float)
            keep = ((pts[:, 0] == x0[0]) | (pts[:, 2] != x0[2])) & \
                (pts[:, 3] - x0[3] == factor * (pts[:, 1] - x0[1]))
            if d_increase_only:
                keep &= pts[:, 3] >= x0[3]
            pts = pts[keep]
            ok = model.predict(pd.DataFrame(pts.astype(int), columns=NAMES)) == 1
            cost = (np.abs(pts - x0) * np.array([WEIGHTS[n] for n in NAMES])).sum(axis=1)
            ex = rec.explain(row)
            if not ok.any():
                assert ex.status == "infeasible"
                continue
            assert ex.status == "optimal" and ex.cost == pytest.approx(cost[ok].min(), abs=1e-9)
            cf = _vals(ex)
            assert cf[0] == x0[0] or cf[2] != x0[2]
            assert cf[3] - x0[3] == factor * (cf[1] - x0[1])


def test_links_round_trip_and_validation():
    from mipcf.demo import credit_data
    Xc, yc = credit_data(n=300)
    schema = mipcf.Schema.from_frame(Xc, categorical={"housing": ["housing_rent", "housing_mortgage", "housing_own"]},
                                     ordinal={"education": [0, 1, 2, 3]})
    linked = schema.link("income", "housing").link("income", "debt", factor=0.5).link("age", "income",
                                                                                   min_change=100.0)
    again = mipcf.Schema.from_json(linked.to_json())
    assert again.links == linked.links and len(again.links) == 3
    assert linked.with_actionability(immutable=["sex"]).links == linked.links
    with pytest.raises(mipcf.SchemaError, match="min_change"):  # "r changes" needs a size
        mipcf.Schema.from_frame(PX, integer=["a", "b"]).link("a", "r")
    with pytest.raises(mipcf.SchemaError, match="numeric"):
        schema.link("housing", "income", factor=2.0)
    with pytest.raises(mipcf.SchemaError, match="no feature"):
        schema.link("income", "nope")
    # a categorical target: income changes => housing changes, checked on the answers
    # only income and housing may move, so every answer changes income and thus housing
    model = DecisionTreeClassifier(max_depth=5, random_state=0).fit(Xc, yc)
    only = schema.with_actionability(immutable=[n for n in schema.names if n not in ("income", "housing")])
    free = mipcf.Recourse(model, only, cost="l1")
    rec = mipcf.Recourse(model, only.link("income", "housing"), cost="l1")
    both = 0
    for i in np.nonzero(model.predict(Xc) == 0)[0][:6]:
        ex, ex0 = rec.explain(Xc.iloc[[i]]), free.explain(Xc.iloc[[i]])
        assert ex.status in ("optimal", "infeasible")
        if ex.ok:
            ch = set(ex.changes["feature"])
            assert "income" not in ch or ch & {"housing_rent", "housing_mortgage", "housing_own"}
            assert ex.cost >= ex0.cost - 1e-9  # the link only removes options
            both += "income" in ch
    assert both >= 1


# ---- categorical (one-hot) and ordinal features ----------------------------------------

def _mixed():
    rng = np.random.default_rng(11)
    n = 300
    df = pd.DataFrame({"a": rng.integers(0, 4, n), "b": rng.integers(0, 4, n), "o": rng.integers(0, 4, n)})
    cat = rng.integers(0, 3, n)
    for i, lv in enumerate(["x", "y", "z"]):
        df[f"cat_{lv}"] = (cat == i).astype(int)
    df.iloc[0, :3] = 0
    df.iloc[1, :3] = 3
    score = df["a"] + 0.8 * df["b"] + 0.9 * df["o"] + 1.5 * df["cat_z"] - 0.5 * df["cat_x"] + rng.normal(0, .7, n)
    schema = mipcf.Schema.from_frame(df, integer=["a", "b"], ordinal={"o": [0, 1, 2, 3]},
                                     categorical={"cat": ["cat_x", "cat_y", "cat_z"]})
    return df, (score > 4.0).astype(int).to_numpy(), schema


MX, MY, MSCHEMA = _mixed()
MW = {"a": 1.0, "b": 1.3, "o": 0.9, "cat": 0.8}


@pytest.mark.parametrize("kind", ["forest", "linear"])
@pytest.mark.parametrize("div", ["support", "distance"])
def test_one_hot_and_ordinal_features_in_cuts(kind, div):
    model = (RandomForestClassifier(n_estimators=5, max_depth=3, random_state=3) if kind == "forest"
             else LogisticRegression(max_iter=3000)).fit(MX, MY)
    rec = mipcf.Recourse(model, MSCHEMA, cost="l1", scale=MW, data=MX)
    pts = np.array(list(itertools.product(range(4), range(4), range(4), range(3))), dtype=float)
    frame = pd.DataFrame(pts[:, :3].astype(int), columns=["a", "b", "o"])
    for i, lv in enumerate(["x", "y", "z"]):
        frame[f"cat_{lv}"] = (pts[:, 3] == i).astype(int)
    ok = model.predict(frame[MX.columns]) == 1
    w = np.array([MW["a"], MW["b"], MW["o"] / 3])

    def dist(p, q):  # per-feature distances of the cost: |da|, |db|, |do|/3, cat changed
        return (np.abs(p[..., :3] - q[..., :3]) * w).sum(axis=-1) + MW["cat"] * (p[..., 3] != q[..., 3])

    for r in np.nonzero(model.predict(MX) == 0)[0][:2]:
        row = MX.iloc[[r]]
        x0 = np.r_[row[["a", "b", "o"]].to_numpy(dtype=float)[0], np.argmax(row[["cat_x", "cat_y", "cat_z"]].to_numpy()[0])]
        P = pts if kind == "linear" else np.c_[canonical_mixed(model, pts, x0), pts[:, 2:]]
        cost = dist(P, x0)
        exs = rec.explain(row, k=3, diversity=div, min_distance=1.2 if div == "distance" else None)
        allowed = np.ones(len(P), bool)
        for ex in exs:
            assert ex.status == "optimal" and model.predict(ex.counterfactual)[0] == 1
            assert ex.cost == pytest.approx(cost[ok & allowed].min(), abs=1e-9)
            cf = ex.counterfactual
            got = np.r_[cf[["a", "b", "o"]].to_numpy(dtype=float)[0], np.argmax(cf[["cat_x", "cat_y", "cat_z"]].to_numpy()[0])]
            if div == "support":
                changed = P != x0
                s = got != x0
                allowed &= ~changed[:, s].all(axis=1)
            else:
                allowed &= dist(P, got) >= 1.2 - 1e-9
        if len(exs) < 3:
            assert not (ok & allowed).any()


def canonical_mixed(model, pts, x0):
    """Columns a, b of tree answers: the point of the split region nearest the factual."""
    out = pts[:, :2].copy()
    for j in range(2):
        th = np.unique(np.concatenate([t.tree_.threshold[t.tree_.feature == j] for t in model.estimators_]))
        grid = np.arange(4.0)
        gside = grid[:, None] > th[None, :]
        side = pts[:, [j]] > th[None, :]
        for i in range(len(pts)):
            cand = grid[(gside == side[i]).all(axis=1)]
            out[i, j] = cand[np.argmin(np.abs(cand - x0[j]))]
    return out


# ---- min_changes: at least m changed features -------------------------------------------

MIN_CHANGES_CASES = [("tree", "l1"), ("tree", "l0"), ("tree", "linf"), ("forest", "l1"), ("forest", "linf"),
                     ("linear", "l1"), ("linear", "l0"), ("linear", "linf")]


@pytest.mark.parametrize("kind,cost", MIN_CHANGES_CASES)
def test_min_changes_equals_grid_oracle(kind, cost):
    """The optimum over grid points the model accepts with >= m changed features (0 if none)."""
    model = MODELS[kind]
    cases = 0
    for m in (1, 2, 3):
        rec = mipcf.Recourse(model, _schema(X), cost=cost, scale=WEIGHTS, data=X, min_changes=m)
        for row in _denied(model, X, n=2):
            x0 = row.to_numpy(dtype=float)[0]
            grid = Grid(model, x0, 1)
            d = np.abs(grid.pts - x0) * grid.w
            c = {"l1": d.sum(axis=1), "l0": grid.changed.sum(axis=1), "linf": d.max(axis=1)}[cost]
            ex = rec.explain(row)
            allowed = grid.ok & (grid.changed.sum(axis=1) >= m)
            cases += 1
            if not allowed.any():
                assert ex.status == "infeasible", (kind, cost, m, x0)
                continue
            assert ex.status == "optimal", (kind, cost, m, x0, ex.message)
            got = _vals(ex)
            assert model.predict(ex.counterfactual)[0] == 1
            assert (got != x0).sum() >= m and len(ex.changes) >= m
            assert got[3] >= x0[3]  # d stays increase-only
            assert ex.cost == pytest.approx(c[allowed].min(), abs=1e-6), (kind, cost, m, x0)
    assert cases == 6


def test_min_changes_more_than_actionable_is_certified_infeasible():
    model = MODELS["forest"]
    schema = mipcf.Schema.from_frame(X, integer=NAMES, immutable=["a", "b"], increase_only=["d"])
    row = _denied(model, X, 1)[0]
    assert mipcf.Recourse(model, schema, min_changes=3).explain(row).status == "infeasible"
    # two actionable features: m = 2 is possible exactly when some accepted point moves both
    x0 = row.to_numpy(dtype=float)[0]
    grid = Grid(model, x0, 1)
    both = grid.ok & (grid.pts[:, 0] == x0[0]) & (grid.pts[:, 1] == x0[1]) & grid.changed[:, 2] & grid.changed[:, 3]
    ex = mipcf.Recourse(model, schema, min_changes=2).explain(row)
    assert ex.status == ("optimal" if both.any() else "infeasible")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="min_changes"):
            mipcf.Recourse(model, _schema(X), min_changes=bad)


def _real_case():
    rng = np.random.default_rng(3)
    R = pd.DataFrame({"a": rng.integers(0, 5, 400), "r": rng.uniform(0.0, 10.0, 400)})
    y = (R["a"] >= 3).astype(int).to_numpy()
    return R, y


@pytest.mark.parametrize("kind", ["tree", "linear"])
def test_min_changes_moves_a_real_feature_by_its_step(kind):
    """Only ``a`` matters to the model; m = 2 must also move ``r`` by exactly its step, even
    where the tree sees ``r`` only through splits far away (a move decoding would undo)."""
    R, y = _real_case()
    model = (DecisionTreeClassifier(max_depth=3, random_state=0) if kind == "tree"
             else LogisticRegression(max_iter=2000)).fit(R, y)
    schema = mipcf.Schema.from_frame(R, integer=["a"], real=["r"], bounds={"a": (0, 4), "r": (0.0, 10.0)})
    row = pd.DataFrame({"a": [0], "r": [5.0]})
    assert model.predict(row)[0] == 0
    base = mipcf.Recourse(model, schema, cost="l1", scale="none").explain(row)
    for step, expect in ((None, 1e-2), (0.25, 0.25), ({"r": 0.5}, 0.5)):
        rec = mipcf.Recourse(model, schema, cost="l1", scale="none", data=R, min_changes=2, min_change_step=step)
        ex = rec.explain(row)
        assert ex.status == "optimal", ex.message
        assert model.predict(ex.counterfactual)[0] == 1
        moved = abs(float(ex.counterfactual["r"].iloc[0]) - 5.0)
        assert moved >= expect * (1 - 1e-9)
        # no model point needs r: the cheapest second change is r by exactly its step, if that
        # keeps the base fix (checked by brute force along r)
        a1 = int(ex.counterfactual["a"].iloc[0])
        assert a1 != 0
        rs = 5.0 + np.array([-expect, expect])
        ok = model.predict(pd.DataFrame({"a": [int(base.counterfactual["a"].iloc[0])] * 2, "r": rs})) == 1
        if ok.any():
            assert ex.cost == pytest.approx(base.cost + expect, abs=1e-6)
            assert moved == pytest.approx(expect, abs=1e-7)
    with pytest.raises(mipcf.SchemaError, match="'a'"):
        mipcf.Recourse(model, schema, min_changes=1, min_change_step={"a": 1.0})
    with pytest.raises(mipcf.SchemaError, match="'zz'"):
        mipcf.Recourse(model, schema, min_changes=1, min_change_step={"zz": 1.0})
    with pytest.raises(mipcf.SchemaError, match="'r'"):
        mipcf.Recourse(model, schema, min_changes=1, min_change_step=0.0)


@pytest.mark.parametrize("kind", ["forest", "linear"])
def test_min_changes_with_one_hot_and_ordinal_features(kind):
    """A one-hot categorical counts once it takes another level, an ordinal one level away."""
    model = (RandomForestClassifier(n_estimators=5, max_depth=3, random_state=3) if kind == "forest"
             else LogisticRegression(max_iter=3000)).fit(MX, MY)
    pts = np.array(list(itertools.product(range(4), range(4), range(4), range(3))), dtype=float)
    frame = pd.DataFrame(pts[:, :3].astype(int), columns=["a", "b", "o"])
    for i, lv in enumerate(["x", "y", "z"]):
        frame[f"cat_{lv}"] = (pts[:, 3] == i).astype(int)
    ok = model.predict(frame[MX.columns]) == 1
    w = np.array([MW["a"], MW["b"], MW["o"] / 3])
    for m in (2, 4):
        rec = mipcf.Recourse(model, MSCHEMA, cost="l1", scale=MW, data=MX, min_changes=m)
        for r in np.nonzero(model.predict(MX) == 0)[0][:2]:
            row = MX.iloc[[r]]
            x0 = np.r_[row[["a", "b", "o"]].to_numpy(dtype=float)[0],
                       np.argmax(row[["cat_x", "cat_y", "cat_z"]].to_numpy()[0])]
            cost = (np.abs(pts[:, :3] - x0[:3]) * w).sum(axis=1) + MW["cat"] * (pts[:, 3] != x0[3])
            allowed = ok & ((pts != x0).sum(axis=1) >= m)
            ex = rec.explain(row)
            if not allowed.any():
                assert ex.status == "infeasible"
                continue
            assert ex.status == "optimal" and model.predict(ex.counterfactual)[0] == 1
            cf = ex.counterfactual
            got = np.r_[cf[["a", "b", "o"]].to_numpy(dtype=float)[0],
                        np.argmax(cf[["cat_x", "cat_y", "cat_z"]].to_numpy()[0])]
            assert (got != x0).sum() >= m
            assert ex.cost == pytest.approx(cost[allowed].min(), abs=1e-9)


def test_tie_with_the_previous_explanation_is_proven_by_its_cost():
    """Class 1 iff a >= 3 or b >= 3; from (2, 2) both single steps cost 1. The second
    explanation meets the first one's cost, which bounds it from below (the cut problem is a
    restriction), and the message says so rather than quoting an l0 count it did not use."""
    grid = pd.DataFrame(list(itertools.product(range(5), repeat=2)), columns=["a", "b"])
    y = ((grid.a >= 3) | (grid.b >= 3)).astype(int)
    model = DecisionTreeClassifier(random_state=0).fit(grid, y)
    assert (model.predict(grid) == y).all()
    schema = mipcf.Schema.from_frame(grid, integer=["a", "b"])
    rec = mipcf.Recourse(model, schema, cost="l1", scale="none", data=grid)
    exs = rec.explain(pd.DataFrame({"a": [2], "b": [2]}), desired_class=1, k=2)
    assert [e.status for e in exs] == ["optimal", "optimal"]
    assert [e.cost for e in exs] == [pytest.approx(1.0), pytest.approx(1.0)]
    moved = [tuple(e.counterfactual[["a", "b"]].iloc[0]) for e in exs]
    assert sorted(moved) == [(2, 3), (3, 2)]
    assert "l0" not in (exs[1].message or "")
