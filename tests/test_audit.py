"""Population audit: every figure against a hand loop with a brute-force grid oracle."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mipcf
from mipcf.cli import main
from mipcf.io import save_model

HI = 3


def _population():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.integers(0, HI + 1, size=(120, 3)), columns=["a", "b", "c"])
    X["g"] = rng.integers(0, 2, size=len(X))
    X.iloc[0, :3] = 0
    X.iloc[1, :3] = HI
    y = ((X["a"] + X["b"] + 0.7 * X["c"] + 1.5 * X["g"] + rng.normal(0, 0.7, len(X))) > 4.5).astype(int)
    model = LogisticRegression(max_iter=2000).fit(X, y)
    schema = mipcf.Schema.from_frame(X, integer=["a", "b", "c"], immutable=["g"])
    return X, model, schema


X, MODEL, SCHEMA = _population()
GRID = np.array(list(itertools.product(range(HI + 1), repeat=3)), dtype=float)


def _oracle_cost(x: np.ndarray) -> float | None:
    """Cheapest l1 move to class 1 changing at most one of a, b, c (g is immutable)."""
    pts = GRID[(GRID != x[:3]).sum(axis=1) <= 1]
    frame = pd.DataFrame(np.c_[pts, np.full(len(pts), x[3])].astype(int), columns=list(X.columns))
    ok = MODEL.predict(frame) == 1
    return float(np.abs(pts[ok] - x[:3]).sum(axis=1).min()) if ok.any() else None


def _hand_table(X: pd.DataFrame) -> dict:
    out = {}
    for g, part in [(0, X[X["g"] == 0]), (1, X[X["g"] == 1]), ("(all)", X)]:
        denied = [r for _, r in part.iterrows() if MODEL.predict(r.to_frame().T.astype(int))[0] == 0]
        costs = [c for c in (_oracle_cost(r.to_numpy(dtype=float)) for r in denied) if c is not None]
        out[g] = {"n": len(part), "n_denied": len(denied), "n_recourse": len(costs),
                  "n_certified_none": len(denied) - len(costs),
                  "recourse_share": len(costs) / len(denied), "cost_mean": float(np.mean(costs)),
                  "cost_median": float(np.median(costs)), "cost_p90": float(np.percentile(costs, 90))}
    return out


def test_audit_matches_hand_loop_over_individuals():
    rec = mipcf.Recourse(MODEL, SCHEMA, cost="l1", scale="none", max_changes=1)
    res = rec.audit(X, group_by="g")
    hand = _hand_table(X)
    t = res.table
    assert list(t.index) == [0, 1, "(all)"]
    assert hand["(all)"]["n_certified_none"] > 0 and hand["(all)"]["n_recourse"] > 0  # both kinds occur
    for g, want in hand.items():
        for k, v in want.items():
            assert t.loc[g, k] == pytest.approx(v, abs=1e-9), (g, k)
        assert t.loc[g, "n_unresolved"] == 0
        assert t.loc[g, "n_optimal"] == want["n_recourse"]
        assert t.loc[g, "denied_share"] == pytest.approx(want["n_denied"] / want["n"])
    assert res.cost_gap == pytest.approx(abs(hand[0]["cost_mean"] - hand[1]["cost_mean"]))
    assert res.recourse_share_gap == pytest.approx(abs(hand[0]["recourse_share"] - hand[1]["recourse_share"]))
    d = json.loads(res.to_json())
    assert d["group_by"] == "g" and [r["group"] for r in d["groups"]] == [0, 1, "(all)"]
    assert d["groups"][2]["n_recourse"] == hand["(all)"]["n_recourse"]


def test_audit_groups_from_labels_and_errors():
    rec = mipcf.Recourse(MODEL, SCHEMA, cost="l1", scale="none")
    part = X.head(30)
    labels = np.where(part["a"].to_numpy() > 1, "high", "low")
    res = rec.audit(part, group_by=labels)
    assert set(res.table.index) == {"high", "low", "(all)"}
    assert res.table.loc["(all)", "n"] == 30
    assert res.table.loc["high", "n"] + res.table.loc["low", "n"] == 30
    with pytest.raises(ValueError, match="group_by"):
        rec.audit(part, group_by="nope")
    with pytest.raises(ValueError, match="labels"):
        rec.audit(part, group_by=labels[:5])


def test_cli_audit_writes_json(tmp_path, capsys):
    save_model(MODEL, tmp_path / "m.skops")
    part = X.head(40)
    part.to_csv(tmp_path / "pop.csv", index=False)
    SCHEMA.to_json(tmp_path / "schema.json")
    out = tmp_path / "audit.json"
    code = main(["audit", "--model", str(tmp_path / "m.skops"), "--data", str(tmp_path / "pop.csv"),
                 "--schema", str(tmp_path / "schema.json"), "--group-by", "g", "--scale", "none",
                 "--max-changes", "1", "--out", str(out)])
    assert code == 0
    assert "cost gap between groups" in capsys.readouterr().out
    d = json.loads(out.read_text())
    want = mipcf.Recourse(MODEL, SCHEMA, scale="none", max_changes=1).audit(part, group_by="g")
    assert d["cost_gap"] == pytest.approx(want.cost_gap)
    got = {r["group"]: r for r in d["groups"]}
    for g in (0, 1, "(all)"):
        assert got[g]["n_recourse"] == want.table.loc[g, "n_recourse"]
        assert got[g]["cost_mean"] == pytest.approx(want.table.loc[g, "cost_mean"])
    # a group column the model does not see is used for grouping only
    part.assign(region=np.where(part["b"] > 1, "n", "s")).to_csv(tmp_path / "pop2.csv", index=False)
    code = main(["audit", "--model", str(tmp_path / "m.skops"), "--data", str(tmp_path / "pop2.csv"),
                 "--schema", str(tmp_path / "schema.json"), "--group-by", "region", "--out", str(out)])
    assert code == 0
    assert {r["group"] for r in json.loads(out.read_text())["groups"]} == {"n", "s", "(all)"}
    code = main(["audit", "--model", str(tmp_path / "m.skops"), "--data", str(tmp_path / "pop.csv"),
                 "--schema", str(tmp_path / "schema.json"), "--group-by", "zzz"])
    assert code == 2
