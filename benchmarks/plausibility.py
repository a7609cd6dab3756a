"""What plausibility costs: nearest counterfactuals with and without data-manifold constraints.

``python -m benchmarks.plausibility [--n 100] [--datasets adult,compas,credit] [--models rf100,mlp]``
trains the models of :mod:`benchmarks.run` (same seeds, MACE split), explains the first N test
rows predicted unfavourable under the l1 cost (MACE normalisation, realistic actionability)
several ways -- plain, with :class:`mipcf.IsolationForestConstraint`, with
:class:`mipcf.SupportConstraint` and (tree models only) with :class:`mipcf.LeafSupportConstraint`
-- and writes ``benchmarks/results/plausibility.md`` (and the
per-individual rows as CSV next to it).

Measured per individual and method: status, cost, wall seconds, and the plausibility measures
of :mod:`mipcf.plausibility` computed here on the returned point: inlier under the isolation
forest that the constrained run used (fitted on the desired-class training rows), inlier under
LocalOutlierFactor(novelty=True) fitted on the same rows, cost to the nearest desired-class
training row.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import available, load_dataset, realistic_schema
from .run import _markdown, _models

OUT = Path(__file__).resolve().parent / "results" / "plausibility.md"


def _relu_available() -> bool:
    try:
        import encoders.relu  # noqa: F401
    except ImportError:
        return False
    return True


def run(datasets, models, n: int, time_limit: float, iforest_trees: int, iforest_samples: int,
        support_radius: float, support_k: int, log=print, only=None, leaf_min_samples: int = 1) -> pd.DataFrame:
    import mipcf
    from mipcf.plausibility import lof_scores, nearest_distance

    factories = _models()
    rows = []
    for dname in datasets:
        ds = load_dataset(dname)
        schema = mipcf.Schema.from_dict(realistic_schema(dname, ds.schema))
        for mkey in models:
            if mkey == "mlp" and not _relu_available():
                log(f"{dname} {mkey}: skipped (encoders.relu is not available)")
                continue
            model = factories[mkey]().fit(ds.X_train, ds.y_train)
            fav = ds.favourable
            denied = ds.X_test[model.predict(ds.X_test) != fav].iloc[:n]
            pool = ds.X_train[model.predict(ds.X_train) == fav]
            methods = {
                "plain": None,
                "iforest": mipcf.IsolationForestConstraint(n_estimators=iforest_trees, max_samples=iforest_samples,
                                                           random_state=0, desired_class=fav),
            }
            if support_radius > 0:
                methods["support"] = mipcf.SupportConstraint(k=support_k, radius=support_radius)
            if leaf_min_samples > 0:
                methods["leafbox"] = mipcf.LeafSupportConstraint(min_samples=leaf_min_samples)
            keep = set(only or methods) | {"iforest"}  # the iforest run's forest scores every method
            methods = {m: pl for m, pl in methods.items() if m in keep}
            recs = {m: mipcf.Recourse(model, schema, cost="l1", normalize="mace", time_limit=time_limit,
                                      data=ds.X_train, plausibility=pl) for m, pl in methods.items()}
            build = {}
            for m, rec in list(recs.items()):
                t0 = time.perf_counter()
                try:
                    _ = rec.problem, rec._backend()
                except ValueError as exc:
                    if m != "leafbox":
                        raise
                    log(f"{dname} {mkey} {m}: skipped ({exc})")  # a model without tree leaves (mlp, lr)
                    del recs[m]
                    continue
                build[m] = time.perf_counter() - t0
            forest = recs["iforest"]._plaus.forests[fav][0]
            for m, rec in recs.items():
                if only and m not in only:
                    continue
                log(f"{dname} {mkey} {m}: {len(denied)} individuals (build {build[m]:.1f} s)")
                for i in range(len(denied)):
                    x = denied.iloc[[i]]
                    ex = rec.explain(x, desired_class=fav)
                    row = {"dataset": dname, "model": mkey, "method": m, "individual": i, "status": ex.status,
                           "cost": ex.cost if ex.ok else np.nan, "seconds": ex.wall_time,
                           "build_seconds": build[m], "message": ex.message}
                    if ex.ok:
                        cf = ex.counterfactual[ds.X_train.columns]
                        row["valid"] = bool(model.predict(cf)[0] == fav)
                        row["iforest_inlier"] = bool(forest.predict(cf)[0] == 1)
                        row["iforest_score"] = float(forest.decision_function(cf)[0])
                        row["lof_inlier"] = bool(lof_scores(cf, pool)[1][0])
                        row["nearest"] = float(nearest_distance(cf, pool, schema, rec.cost_spec)[0])
                    rows.append(row)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (d, m), g in df.groupby(["dataset", "model"], sort=False):
        plain = g[g.method == "plain"].set_index("individual")
        for meth, h in g.groupby("method", sort=False):
            h = h.set_index("individual")
            ok = h[h.status.isin(["optimal", "feasible"])]
            both = ok.index.intersection(plain[plain.status.isin(["optimal", "feasible"])].index)
            inc = (ok.cost[both] - plain.cost[both]) / plain.cost[both].where(plain.cost[both] > 0)
            slow = h.seconds / plain.seconds.reindex(h.index)
            out.append({"dataset": d, "model": m, "method": meth, "n": len(h),
                        "optimal %": 100 * (h.status == "optimal").mean(),
                        "feasible %": 100 * (h.status == "feasible").mean(),
                        "infeasible %": 100 * (h.status == "infeasible").mean(),
                        "no answer %": 100 * (h.status == "error").mean(),
                        "valid %": 100 * ok.valid.mean() if len(ok) else np.nan,
                        "median cost": ok.cost.median(),
                        "median cost increase %": 100 * inc.median() if len(inc) else np.nan,
                        "median s": h.seconds.median(), "p90 s": h.seconds.quantile(0.9),
                        "median time ratio": slow.median(),
                        "iforest inlier %": 100 * ok.iforest_inlier.mean() if len(ok) else np.nan,
                        "LOF inlier %": 100 * ok.lof_inlier.mean() if len(ok) else np.nan,
                        "median nearest": ok.nearest.median() if len(ok) else np.nan,
                        "build s": h.build_seconds.iloc[0]})
    return pd.DataFrame(out)


def report(df: pd.DataFrame, args) -> str:
    s = summary(df)
    lines = ["# Plausibility: cost and time of data-manifold constraints", "",
             f"Generated by `python -m benchmarks.plausibility --n {args.n} --datasets {args.datasets} "
             f"--models {args.models}` on {platform.node()} ({os.cpu_count()} CPUs, shared), "
             f"time limit {args.time_limit:g} s per individual.", "",
             "Cost: l1 with MACE normalisation, realistic actionability; N = first test rows predicted "
             "unfavourable. Methods: `plain` (no plausibility), `iforest` "
             f"(IsolationForestConstraint, {args.iforest_trees} trees, max_samples {args.iforest_samples}, "
             "fitted on the training rows the model gives the favourable class)"
             + (f", `support` (SupportConstraint k={args.support_k}, radius={args.support_radius:g} in the same "
                "cost)" if args.support_radius > 0 else "")
             + (f", `leafbox` (LeafSupportConstraint min_samples={args.leaf_min_samples}: every tree's leaf is "
                "reached by that many favourable-class training rows; tree models only)"
                if getattr(args, "leaf_min_samples", 0) > 0 else "") + ".",
             "Inlier shares are measured on the returned points with that same isolation forest and with "
             "LocalOutlierFactor(novelty=True, 20 neighbours) on the same rows; `median nearest` is the cost "
             "to the nearest favourable-class training row. Cost increase and time ratio are per "
             "individual against `plain` (medians); `median s` / `p90 s` are wall seconds per individual "
             "(the one-time build is in `build s`). Status shares: `optimal` proven; `feasible` = time "
             "limit (verified answer, not proven) or, for support, optimal over the kept candidates only; "
             "`infeasible` certified (no plausible counterfactual under the actionability constraints); "
             "`no answer` = time limit before any answer. Medians of cost are over the answers found.", ""]
    lines.append(_markdown(s, ".3g"))
    bad = df[(df.status == "error")]
    lines += ["", f"Errors: {len(bad)}" + ("" if bad.empty else " -- " + "; ".join(bad.message.astype(str).unique()[:3]))]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.plausibility", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--datasets", default="adult,compas,credit")
    ap.add_argument("--models", default="rf100,mlp")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--iforest-trees", type=int, default=20)
    ap.add_argument("--iforest-samples", type=int, default=64)
    ap.add_argument("--support-radius", type=float, default=0.02, help="0 skips the support constraint")
    ap.add_argument("--support-k", type=int, default=1)
    ap.add_argument("--leaf-min-samples", type=int, default=1, help="0 skips the leafbox method")
    ap.add_argument("--methods", default="", help="comma list of methods to run (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the CSV of an earlier run")
    args = ap.parse_args(argv)
    if args.report_only:
        args.out.write_text(report(pd.read_csv(args.out.with_suffix(".csv")), args))
        print(args.out.read_text())
        return 0
    names = [d for d in args.datasets.split(",") if d]
    missing = [d for d in names if not available(name=d)]
    if missing:
        print(f"raw data not found for {missing}")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for d in names:  # the report is rewritten after each dataset: a long run leaves partial results
        for m in [m for m in args.models.split(",") if m]:
            parts.append(run([d], [m], args.n, args.time_limit, args.iforest_trees, args.iforest_samples,
                             args.support_radius, args.support_k, log=lambda msg: print(msg, flush=True),
                             only=[x for x in args.methods.split(",") if x] or None,
                             leaf_min_samples=args.leaf_min_samples))
            df = pd.concat(parts, ignore_index=True)
            if df.empty:
                continue
            df.to_csv(args.out.with_suffix(".csv"), index=False)
            args.out.write_text(report(df, args))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
