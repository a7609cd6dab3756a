"""Adapters for peer counterfactual tools (benchmarks/peers.py).

A small synthetic problem (200 rows; age, income, a one-hot colour, an ordinal edu) with a
LogisticRegression and a 5-tree RandomForest. MO is checked for what it promises; each
installed peer must return a one-row frame shaped like the factual, or a message; peers
that are not installed here are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import (  # noqa: E402
    DicePeer,
    MinimumObservable,
    PeerResult,
    _DiceCodec,
    _features,
    available_peers,
    feature_distance,
    peer_status,
)

SCHEMA = {"format": "mipcf.schema/1", "features": [
    {"name": "age", "type": "integer", "lower": 18, "upper": 70, "actionability": "increase_only"},
    {"name": "income", "type": "real", "lower": 0, "upper": 120, "actionability": "actionable"},
    {"name": "colour", "type": "categorical", "levels": ["red", "green", "blue"],
     "columns": {"red": "colour_red", "green": "colour_green", "blue": "colour_blue"},
     "actionability": "immutable"},
    {"name": "edu", "type": "ordinal", "levels": [0, 1, 2, 3], "actionability": "increase_only"},
]}
COLOUR = ["colour_red", "colour_green", "colour_blue"]
PEERS = ["dice-random", "dice-genetic", "dice-kdtree", "ar", "ocean"]


def make_data(seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 71, n)
    income = rng.normal(50, 15, n).clip(0, 120).round(2)
    colour = rng.integers(0, 3, n)
    edu = rng.integers(0, 4, n)
    X = pd.DataFrame({"age": age.astype("int64"), "income": income,
                      "colour_red": (colour == 0).astype("int64"),
                      "colour_green": (colour == 1).astype("int64"),
                      "colour_blue": (colour == 2).astype("int64"),
                      "edu": edu.astype("int64")})
    logit = (0.05 * (age - 44) + 0.08 * (income - 50) + 0.8 * (colour == 1) - 0.5 * (colour == 2)
             + 0.6 * (edu - 1.5))
    y = (logit + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def problem():
    X, y = make_data()
    models = {"lr": LogisticRegression(max_iter=1000).fit(X, y),
              "rf": RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)}
    return X, y, models


def factuals(model, X, k=3):
    idx = np.flatnonzero(model.predict(X) == 0)
    assert idx.size >= k
    return [X.iloc[[i]] for i in idx[:k]]


def respects_actionability(x: pd.DataFrame, cf: pd.DataFrame) -> bool:
    return (np.array_equal(cf[COLOUR].to_numpy(), x[COLOUR].to_numpy())
            and cf["age"].iloc[0] >= x["age"].iloc[0] and cf["edu"].iloc[0] >= x["edu"].iloc[0])


def assert_shaped_like(cf: pd.DataFrame, x: pd.DataFrame) -> None:
    assert isinstance(cf, pd.DataFrame) and len(cf) == 1
    assert list(cf.columns) == list(x.columns)
    assert cf.dtypes.equals(x.dtypes)
    assert list(cf.index) == list(x.index)


# ---------------------------------------------------------------------------- MO

@pytest.mark.parametrize("mname", ["lr", "rf"])
def test_mo_returns_closest_feasible_candidate(problem, mname):
    X, y, models = problem
    model = models[mname]
    cand, _ = make_data(seed=1, n=200)  # a "test set" to pick from
    mo = MinimumObservable(candidates=cand)
    mo.fit(model, X, y, SCHEMA, 1)
    dist = feature_distance(SCHEMA)
    for x in factuals(model, X):
        r = mo.explain(x)
        assert isinstance(r, PeerResult) and r.seconds >= 0
        assert r.counterfactual is not None, r.message
        cf = r.counterfactual
        assert_shaped_like(cf, x)
        assert model.predict(cf)[0] == 1
        assert respects_actionability(x, cf)
        # brute force: nothing feasible among the candidates is closer
        ok = (model.predict(cand) == 1) & np.array(
            [respects_actionability(x, cand.iloc[[i]]) for i in range(len(cand))])
        best = dist(x, cand[ok]).min()
        assert dist(x, cf)[0] == pytest.approx(best)


def test_mo_without_feasible_candidate_gives_message(problem):
    X, y, models = problem
    model = models["lr"]
    x = factuals(model, X, 1)[0]
    # candidates that all have another colour than x: the immutable colour rules them out
    other = X[(X[COLOUR].to_numpy() != x[COLOUR].to_numpy()).any(axis=1)]
    mo = MinimumObservable(candidates=other)
    mo.fit(model, X, y, SCHEMA, 1)
    r = mo.explain(x)
    assert r.counterfactual is None and r.message


def test_feature_distance_per_feature_changes():
    X, _ = make_data(n=5)
    x = X.iloc[[0]].copy()
    c = x.copy()
    c["age"] += 13            # 13 / 52
    c["income"] += 12         # 12 / 120
    c[COLOUR] = [0, 0, 0]
    c["colour_blue" if x["colour_blue"].iloc[0] == 0 else "colour_red"] = 1   # 1
    c["edu"] = 3 if x["edu"].iloc[0] == 0 else 0                              # k / 3
    k = abs(int(c["edu"].iloc[0]) - int(x["edu"].iloc[0]))
    per = [13 / 52, 12 / 120, 1.0, k / 3]
    assert feature_distance(SCHEMA)(x, c)[0] == pytest.approx(sum(per))
    assert feature_distance(SCHEMA, "l0")(x, c)[0] == pytest.approx(4)
    assert feature_distance(SCHEMA, "linf")(x, c)[0] == pytest.approx(max(per))
    assert feature_distance(SCHEMA)(x, x)[0] == 0


# ---------------------------------------------------------------------------- DiCE codec

def test_dice_codec_round_trip():
    X, _ = make_data()
    codec = _DiceCodec(_features(SCHEMA, list(X.columns)), X)
    assert codec.continuous == ["age", "income", "edu"] and codec.categorical == ["colour"]
    d = codec.to_dice(X)
    assert list(d.columns) == ["age", "income", "colour", "edu"]
    assert set(d["colour"]) <= {"red", "green", "blue"}
    back = codec.from_dice(d)
    pd.testing.assert_frame_equal(back, X)
    x = X.iloc[[0]]
    pr = codec.permitted_range(x)
    assert pr["age"] == [int(x["age"].iloc[0]), 70]          # increase only
    assert pr["edu"] == [int(x["edu"].iloc[0]), 3]
    assert pr["income"] == [0.0, 120.0]
    assert len(pr["colour"]) == 1                              # immutable: its own level


def test_dice_rejects_unknown_method():
    with pytest.raises(ValueError):
        DicePeer("gradient")


# ---------------------------------------------------------------------------- registry

def test_peer_status_names_every_peer():
    status = peer_status()
    assert set(status) == {"mo", *PEERS}
    for name, text in status.items():
        assert text.startswith("ok") or text.startswith("unavailable: "), (name, text)
    assert set(available_peers()) == {n for n, t in status.items() if t.startswith("ok")}
    assert "mo" in available_peers()


# ---------------------------------------------------------------------------- peers

@pytest.mark.parametrize("mname", ["lr", "rf"])
@pytest.mark.parametrize("name", PEERS)
def test_peer_returns_frame_or_message(problem, name, mname):
    peers = available_peers()
    if name not in peers:
        pytest.skip(f"{name}: {peer_status()[name]}")
    X, y, models = problem
    model = models[mname]
    peer = peers[name]()
    peer.fit(model, X, y, SCHEMA, 1)
    found = 0
    for x in factuals(model, X, 2):
        r = peer.explain(x)
        assert isinstance(r, PeerResult) and r.seconds >= 0
        if r.counterfactual is None:
            assert r.message, f"{name} returned neither a counterfactual nor a message"
            continue
        found += 1
        assert_shaped_like(r.counterfactual, x)
        # the adapter must pass the immutable colour and the directions on to the tool
        assert respects_actionability(x, r.counterfactual), (name, x, r.counterfactual)
    if name == "ar" and mname == "rf":
        assert found == 0  # linear models only: reported as a message
    if name == "ocean" and mname == "lr":
        assert found == 0  # tree ensembles only


def _in_child(test: str) -> bool:
    """Re-run ``test`` in a fresh interpreter; True in the parent (the child did the work).

    python-mip's CBC and OR-Tools' Osi/Clp cannot both load in one process (whichever loads
    first breaks the other), and other test files load OR-Tools: AR tests run apart."""
    if os.environ.get("MIPCF_AR_CHILD"):
        return False
    env = {**os.environ, "MIPCF_AR_CHILD": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{__file__}::{test}"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return True


@pytest.mark.skipif("ar" not in available_peers(), reason="actionable-recourse not installed")
def test_ar_leaves_numpy_alone(problem):
    if _in_child("test_ar_leaves_numpy_alone"):
        return
    X, y, models = problem
    peer = available_peers()["ar"]()
    peer.fit(models["lr"], X, y, SCHEMA, 1)
    r = peer.explain(factuals(models["lr"], X, 1)[0])
    assert r.counterfactual is not None, r.message
    if int(np.__version__.split(".")[0]) >= 2:
        assert "float_" not in vars(np)


@pytest.mark.skipif("ar" not in available_peers(), reason="actionable-recourse not installed")
def test_ar_answers_on_adult_despite_tied_costs():
    """Adult's capital_gain (0 for 92 % of rows) gives tied percentile costs, which the tool's
    own self-check rejected with a bare AssertionError for every person."""
    from benchmarks import datasets

    if not datasets.available(name="adult"):
        pytest.skip("raw Adult data not found")
    if _in_child("test_ar_answers_on_adult_despite_tied_costs"):
        return
    ds = datasets.load_dataset("adult")
    lr = LogisticRegression(max_iter=300).fit(ds.X_train, ds.y_train)
    denied = ds.X_test[lr.predict(ds.X_test) != ds.favourable].iloc[:2]
    peer = available_peers()["ar"]()
    peer.fit(lr, ds.X_train, ds.y_train, ds.schema, ds.favourable)
    for i in range(len(denied)):
        r = peer.explain(denied.iloc[[i]])
        assert r.counterfactual is not None, r.message
        assert lr.predict(r.counterfactual)[0] == ds.favourable


# ---------------------------------------------------------------------------- OCEAN's objective

def test_raw_scale_makes_mipcf_cost_ocean_l1(problem):
    """benchmarks.ocean compares optimal costs: mipcf's l1 under raw_scale must be OCEAN's L1."""
    import mipcf
    from benchmarks.ocean import ocean_l1, raw_scale

    X, _, models = problem
    schema = {**SCHEMA, "features": [{**f, "actionability": "actionable"} for f in SCHEMA["features"]]}
    rec = mipcf.Recourse(models["rf"], mipcf.Schema.from_dict(schema), cost="l1", scale=raw_scale(schema))
    moved = 0
    for x in factuals(models["rf"], X, k=3):
        ex = rec.explain(x, desired_class=1)
        assert ex.status == "optimal"
        cf = ex.counterfactual[x.columns]
        assert ocean_l1(schema, x, cf) == pytest.approx(ex.cost, rel=1e-6, abs=1e-6)
        moved += int((cf[COLOUR].to_numpy() != x[COLOUR].to_numpy()).any() or cf.edu.iloc[0] != x.edu.iloc[0])
    assert moved  # a colour or edu move was priced, not just the unit-scaled numerics
    # the hand value: one colour change is 1, two ordinal steps are 2
    x = X.iloc[[0]].copy()
    y = x.copy()
    y[COLOUR] = np.roll(x[COLOUR].to_numpy(), 1, axis=1)
    y["edu"] = (x.edu + 2) % 4
    assert ocean_l1(schema, x, y) == pytest.approx(1 + abs(int(y.edu.iloc[0]) - int(x.edu.iloc[0])))
