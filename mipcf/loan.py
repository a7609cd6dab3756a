"""The built-in causal demo: semi-synthetic loan applications generated from an SCM.

After the loan example of Karimi, von Kügelgen, Schölkopf & Valera (2020, "Algorithmic
recourse under imperfect causal knowledge"): gender and age are immutable; education, loan
amount, duration, income and savings follow the structural equations in ``data/loan.json``
(linear or piecewise linear once gender and age are fixed). Everything is generated
deterministically from a seed, so the demo and its figures are reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .causal import SCM
from .schema import Schema

SPEC = Path(__file__).resolve().parents[1] / "data" / "loan.json"

# the bank's (hidden) approval rule the model is trained to imitate
_LABEL = {"income": 0.08, "savings": 0.12, "loan_amount": -0.10, "duration": -0.04, "education": 0.4}


def loan_spec(path: str | Path = SPEC) -> tuple[Schema, SCM, dict[str, Any]]:
    """The loan schema, its SCM and the noise distributions, read from ``data/loan.json``."""
    d = json.loads(Path(path).read_text())
    return Schema.from_dict(d["schema"]), SCM.from_dict(d["scm"]), dict(d["noise"])


def _noise(spec: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
    if "bernoulli" in spec:
        return (rng.random(n) < float(spec["bernoulli"])).astype(float)
    if "normal" in spec:
        return rng.normal(0.0, float(spec["normal"]), n)
    if "gamma" in spec:
        shape, scale = spec["gamma"]
        return rng.gamma(float(shape), float(scale), n) + float(spec.get("shift", 0.0))
    raise ValueError(f"unknown noise distribution {spec!r}")


def loan_data(n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Applicants sampled from the SCM (``x = f(parents) + u``, rounded and clipped to the
    schema) and the bank's decisions (1 = approved)."""
    schema, scm, noise = loan_spec()
    rng = np.random.default_rng(seed)
    u = {v: _noise(noise[v], n, rng) for v in scm.variables}
    out: dict[str, np.ndarray] = {}
    for v in scm.order:  # the implied noise of a rounded or clipped value is x - f(parents)
        f = schema[v]
        x = np.asarray(scm.equations[v].value(out) if v in scm.equations else 0.0) + u[v]
        x = np.clip(np.round(x) if f.type != "real" else np.round(x, 2), f.lower, f.upper)
        out[v] = np.broadcast_to(x, (n,)).astype(float)
    X = pd.DataFrame({f.name: out[f.name] for f in schema.features})
    for f in schema.features:
        if f.type != "real":
            X[f.name] = X[f.name].astype(int)
    score = sum(w * X[c].to_numpy(float) for c, w in _LABEL.items()) + rng.normal(0.0, 0.5, n)
    y = (score > np.median(score)).astype(int)
    return X, y


def loan_model(X: pd.DataFrame, y: np.ndarray):
    """The bank's model: a logistic regression on the raw features."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=5000).fit(X, y)


def compare(model, X: pd.DataFrame, people: pd.DataFrame, cost: str = "l1", scale: str = "range",
            intervention: str = "hard") -> pd.DataFrame:
    """Per person: the causal answer (cheapest interventions) and the nearest counterfactual
    that ignores causality, both costs, and whether the latter, executed as interventions on
    the features it changes, is still approved."""
    from .recourse import Recourse

    schema, scm, _ = loan_spec()
    causal = Recourse(model, schema, cost=cost, scale=scale, scm=scm, intervention=intervention)
    blind = Recourse(model, schema, cost=cost, scale=scale)
    rows = []
    for i in range(len(people)):
        row = people.iloc[[i]]
        ec, eb = causal.explain(row, 1), blind.explain(row, 1)
        blind_ok = None
        if eb.counterfactual is not None:
            before, after = row.iloc[0], eb.counterfactual.iloc[0]
            do = {c: float(after[c]) for c in row.columns if before[c] != after[c]}
            world = scm.propagate(before.to_dict(), do=do)
            blind_ok = bool(model.predict(pd.DataFrame([world])[row.columns])[0] == 1)
        rows.append({"id": row.index[0], "causal_status": ec.status, "causal_cost": ec.cost,
                     "interventions": _text(ec.interventions), "causal_world": _text(ec.changes),
                     "nearest_cost": eb.cost,
                     "nearest_changes": _text(eb.changes), "nearest_executed_approved": blind_ok})
    return pd.DataFrame(rows).set_index("id")


def _text(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return ""
    return "; ".join(f"{r.feature}: {_fmt(r.before)} -> {_fmt(r.after)}" for r in frame.itertuples())


def _fmt(v: Any) -> str:
    return f"{float(v):.4g}"


def run_causal_demo(n_people: int = 4, seed: int = 0) -> pd.DataFrame:
    """Print, for a few denied applicants, the causal answer next to the nearest counterfactual."""
    schema, scm, _ = loan_spec()
    X, y = loan_data(seed=seed)
    model = loan_model(X, y)
    denied = X[model.predict(X) == 0].head(n_people)
    print(f"causal demo: {len(X)} semi-synthetic loan applicants (SCM in {SPEC.name}), "
          f"LogisticRegression (train accuracy {model.score(X, y):.3f}); l1 cost scaled by range")
    print("structural equations (x := f(parents) + u):")
    for v in scm.order:
        if v in scm.equations:
            print(f"  {v} := {scm.equations[v].text} + u")
    table = compare(model, X, denied)
    for pid, r in table.iterrows():
        print(f"\napplicant {pid}: " + ", ".join(f"{c}={_fmt(X.loc[pid, c])}" for c in X.columns))
        print(f"  causal ({r.causal_status}), cost {r.causal_cost:.4f}: {r.interventions}")
        print(f"    which leads to: {r.causal_world}")
        ok = {True: "approved", False: "REJECTED", None: "-"}[r.nearest_executed_approved]
        print(f"  nearest counterfactual, cost {r.nearest_cost:.4f}: {r.nearest_changes} "
              f"(done as interventions: {ok})")
    return table


__all__ = ["loan_spec", "loan_data", "loan_model", "compare", "run_causal_demo", "SPEC"]
