"""How exact ReLU-network counterfactuals scale with depth and width, with and without LP bounds.

``python -m benchmarks.relu_scaling --n 50 --time-limit 120`` trains MLPClassifiers on Adult
(MACE protocol split, see :mod:`benchmarks.datasets`): depth 1..5 at width 10 and width
10, 20, 50, 100 at depth 2. For each network it explains the first N test rows predicted
unfavourable under the l1 cost (MACE normalisation), once with LP-based bound tightening and
once with interval bounds only, and reports per configuration: coverage (share proven
optimal), median and p90 wall time per person, median and p90 branch-and-bound nodes, the
one-time build time (LP tightening included), the number of binaries (unstable neurons) and
the decision margin. Every counterfactual is checked with the model's ``predict`` (Recourse
does that; the script checks again). The table goes to ``benchmarks/results/relu_scaling.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

DEPTHS = (1, 2, 3, 4, 5)
WIDTHS = (10, 20, 50, 100)
OUT = Path(__file__).parent / "results" / "relu_scaling.md"


def configs(depths: Sequence[int] = DEPTHS, widths: Sequence[int] = WIDTHS) -> list[tuple[int, ...]]:
    """Hidden-layer sizes: every depth at width 10, then every other width at depth 2."""
    out = [(10,) * d for d in depths]
    out += [(w, w) for w in widths if (w, w) not in out]
    return out


def _train(hidden: tuple[int, ...], ds, seed: int = 0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden, max_iter=300, random_state=seed).fit(ds.X_train, ds.y_train)


def run_config(model, ds, X: pd.DataFrame, tightening: str, time_limit: float,
               prune: bool = True, journal: Path | None = None) -> tuple[dict, list[dict]]:
    """Explain every row of ``X``; returns (build facts, one record per person).

    With ``prune`` (the default, as in ``python -m benchmarks run``) Recourse gets the training
    data, starts from a repaired training point and tightens the network over its cost box.
    With ``journal`` every person's record is appended to that CSV as soon as it is known, and
    people already there are not solved again (a 100x100 configuration takes hours).
    """
    import mipcf

    schema = mipcf.Schema.from_dict(ds.schema)
    rec = mipcf.Recourse(model, schema, cost="l1", normalize="mace", time_limit=time_limit,
                         encoder_options={"bound_tightening": tightening}, data=ds.X_train if prune else None)
    t0 = time.perf_counter()
    problem = rec.problem
    rec._backend()
    build = time.perf_counter() - t0
    tight = problem.encoding.tighten
    layers = tight.layers if tight is not None else []
    facts = {"build s": build, "binaries": int(sum((ly.state < 0).sum() for ly in layers)),
             "stable": int(sum((ly.state >= 0).sum() for ly in layers)),
             "LPs": getattr(tight, "lp_solves", 0), "margin": problem.encoding.margin}
    rows = _journal_rows(journal)
    for i in range(len(rows), len(X)):
        x = X.iloc[[i]]
        ex = rec.explain(x, desired_class=ds.favourable)
        valid = ex.counterfactual is not None and model.predict(ex.counterfactual[x.columns])[0] == ds.favourable
        rows.append({"status": ex.status, "seconds": ex.wall_time, "nodes": ex.extra.get("nodes", np.nan),
                     "cost": ex.cost, "gap": ex.gap, "valid": bool(valid), "fixed": getattr(tight, "fixed_last", 0)})
        if journal is not None:
            pd.DataFrame(rows[-1:]).to_csv(journal, mode="a", header=i == 0, index=False)
    return facts, rows


def _journal_rows(journal: Path | None) -> list[dict]:
    if journal is None or not journal.exists():
        return []
    return pd.read_csv(journal).to_dict("records")


def summarise(hidden: tuple[int, ...], tightening: str, accuracy: float, facts: dict, rows: list[dict]) -> dict:
    df = pd.DataFrame(rows)
    found = df[df.status.isin(["optimal", "feasible"])]
    return {"hidden": "x".join(map(str, hidden)), "depth": len(hidden), "width": hidden[0],
            "bounds": tightening, "accuracy": round(accuracy, 3), "n": len(df),
            "optimal %": 100 * (df.status == "optimal").mean(), "valid %": 100 * df.valid.mean(),
            "invalid found": int((~found.valid).sum()) if len(found) else 0,
            "median s": df.seconds.median(), "p90 s": df.seconds.quantile(0.9),
            "median nodes": df.nodes.median(), "p90 nodes": df.nodes.quantile(0.9),
            # at the time limit nodes are not reported: the gap left says what the bounds bought
            "median gap %": 100 * df.gap.median() if "gap" in df else np.nan, **facts}


def to_markdown(table: pd.DataFrame, n: int, time_limit: float, prune: bool = True) -> str:
    cols = ["hidden", "bounds", "accuracy", "n", "optimal %", "valid %", "median s", "p90 s", "median nodes",
            "p90 nodes", "median gap %", "build s", "binaries", "stable", "LPs", "margin"]
    t = table.reindex(columns=cols).copy()
    for c in ("median s", "p90 s", "build s"):
        t[c] = t[c].map(lambda v: f"{v:.2f}")
    for c in ("optimal %", "valid %", "median nodes", "p90 nodes"):
        t[c] = t[c].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    t["median gap %"] = t["median gap %"].map(lambda v: "" if pd.isna(v) else f"{v:.3g}")
    t["margin"] = t["margin"].map(lambda v: f"{v:.1e}")
    head = "| " + " | ".join(cols) + " |"
    sep = "|" + "---|" * len(cols)
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in t.itertuples(index=False)]
    return "\n".join([
        "# ReLU network scaling on Adult (l1 cost, MACE normalisation)", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}; "
        f"HiGHS, 1 thread, time limit {time_limit:g} s per person; first {n} test rows predicted unfavourable; "
        "MLPClassifier(hidden, max_iter=300, random_state=0) on the MACE split; incumbent pruning "
        + ("on (training data given to Recourse)." if prune else "off."), "",
        "`optimal %` = coverage proven optimal; `valid %` = counterfactual returned and accepted by "
        "`model.predict`; times are wall seconds per person (solve, decode, verification); nodes are "
        "HiGHS branch-and-bound nodes (not reported at the time limit: `median gap %` is the relative gap "
        "left, 0 when proven); `binaries` = unstable neurons over the feature box (one binary each), "
        "`stable` = neurons that need none; `build s` includes LP bound tightening (`LPs` = LPs solved).", "",
        head, sep, *body, ""])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.relu_scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50, help="individuals per network")
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--bounds", default="lp,interval", help="bound tightening modes to compare")
    p.add_argument("--no-prune", action="store_true", help="no incumbent / cost-box tightening (no data)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    from .datasets import available, load_dataset

    if not available(a.data_dir, "adult"):
        print("raw Adult data not found: pass --data-dir (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    ds = load_dataset("adult", a.data_dir)
    out = Path(a.out)
    csv = out.with_suffix(".csv")
    # a long study is resumable: configurations already in the CSV (same n and limit) are kept
    results = _earlier(csv, a.n, a.time_limit)
    done = {(r["hidden"], r["bounds"]) for r in results}
    for hidden in configs([int(d) for d in a.depths.split(",") if d], [int(w) for w in a.widths.split(",") if w]):
        modes = [m for m in a.bounds.split(",") if ("x".join(map(str, hidden)), m) not in done]
        if not modes:
            continue
        model = _train(hidden, ds)
        accuracy = float((model.predict(ds.X_test) == ds.y_test).mean())
        X = ds.X_test[model.predict(ds.X_test) != ds.favourable].iloc[:a.n]
        for mode in modes:
            journal = _journal_path(out, hidden, mode, a.n, a.time_limit)
            facts, rows = run_config(model, ds, X, mode, a.time_limit, prune=not a.no_prune, journal=journal)
            results.append(summarise(hidden, mode, accuracy, facts, rows) | {"time limit": a.time_limit})
            r = results[-1]
            print(f"{r['hidden']:>8} {mode:>8}: optimal {r['optimal %']:.0f}%  median {r['median s']:.2f}s  "
                  f"p90 {r['p90 s']:.2f}s  nodes {r['median nodes']}  build {r['build s']:.2f}s",
                  file=sys.stderr, flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            table = pd.DataFrame(results)
            table.to_csv(csv, index=False)  # partial results survive, and a rerun continues from them
            out.write_text(to_markdown(table, a.n, a.time_limit, not a.no_prune))
            journal.unlink()  # the configuration's summary row now holds it
    print(out)
    return 0


def _journal_path(out: Path, hidden: tuple[int, ...], mode: str, n: int, time_limit: float) -> Path:
    """Per-person records of one unfinished configuration, beside the report."""
    return out.with_name(f"{out.stem}.{'x'.join(map(str, hidden))}-{mode}-n{n}-t{time_limit:g}.partial.csv")


def _earlier(csv: Path, n: int, time_limit: float) -> list[dict]:
    """Rows of an earlier run of the same study (same n and time limit), else none."""
    if not csv.exists():
        return []
    df = pd.read_csv(csv, dtype={"hidden": str})
    same = df[(df["n"] == n) & (df.get("time limit", np.nan) == time_limit)]
    return same.to_dict("records")


if __name__ == "__main__":
    raise SystemExit(main())
