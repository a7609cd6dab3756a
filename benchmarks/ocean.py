"""mipcf and OCEAN side by side, on OCEAN's own objective.

``python -m benchmarks.ocean [--n 30] [--datasets adult,compas,credit] [--models rf10]``
needs ``oceanpy`` (Python >= 3.12; see ``requirements-bench.txt``). It trains the benchmark's
forests (same seeds and split as :mod:`benchmarks.run`), takes the first N test rows predicted
unfavourable and solves each twice:

* OCEAN (``ocean.ConstraintProgrammingExplainer``, OR-Tools CP-SAT, one worker) with its L1
  objective, through the adapter of :mod:`benchmarks.peers`;
* mipcf on the *same* objective: l1 in raw units (``scale`` 1 per unit; an ordinal code is a
  unit, as OCEAN counts it; a one-hot categorical change costs 1, as OCEAN's halved one-hot
  sum does), one HiGHS thread.

So the optimal costs must agree. Both answers are checked here with the model's ``predict`` and
costed here with one function (:func:`ocean_l1`), independent of either solver. Output:
``benchmarks/results/ocean.md`` and the per-individual rows as ``ocean.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .datasets import available, load_dataset, realistic_schema
from .run import _denied, _markdown, _models

OUT = Path(__file__).resolve().parent / "results" / "ocean.md"
TOL = 1e-6  # relative cost agreement


def raw_scale(schema: dict) -> dict[str, float]:
    """mipcf weights that make its l1 equal OCEAN's: ordinal k of K levels costs k, not k/(K-1)."""
    return {f["name"]: float(len(f["levels"]) - 1) if f["type"] == "ordinal" else 1.0
            for f in schema["features"]}


def ocean_l1(schema: dict, x: pd.DataFrame, cf: pd.DataFrame) -> float:
    """OCEAN's L1: raw |change| of each single-column feature, 1 per categorical level change."""
    total = 0.0
    for f in schema["features"]:
        cols = f.get("columns")
        if cols:
            cols = list(cols.values())
            total += float(np.abs(cf[cols].to_numpy(float) - x[cols].to_numpy(float)).sum()) / 2.0
        else:
            total += abs(float(cf[f["name"]].iloc[0]) - float(x[f["name"]].iloc[0]))
    return total


def run(datasets, models, scenarios, n: int, time_limit: float, log=print) -> pd.DataFrame:
    import mipcf

    from .peers import OceanPeer

    factories = _models()
    rows = []
    for dname in datasets:
        ds = load_dataset(dname)
        for mkey in models:
            model = factories[mkey]().fit(ds.X_train, ds.y_train)
            denied = _denied(model, ds.X_test, ds.favourable, n)
            for scenario in scenarios:
                sd = ds.schema if scenario == "unconstrained" else realistic_schema(dname, ds.schema)
                rec = mipcf.Recourse(model, mipcf.Schema.from_dict(sd), cost="l1", scale=raw_scale(sd),
                                     time_limit=time_limit, data=ds.X_train)
                peer = OceanPeer(max_time=int(time_limit), num_workers=1)
                t0 = time.perf_counter()
                peer.fit(model, ds.X_train, ds.y_train, sd, ds.favourable)
                build = {"ocean": time.perf_counter() - t0}
                t0 = time.perf_counter()
                _ = rec.problem, rec._backend()
                build["mipcf"] = time.perf_counter() - t0
                log(f"{dname} {mkey} {scenario}: {len(denied)} individuals "
                    f"(build: ocean {build['ocean']:.1f} s, mipcf {build['mipcf']:.1f} s)")
                for i in range(len(denied)):
                    x = denied.iloc[[i]]
                    base = {"dataset": dname, "model": mkey, "scenario": scenario, "individual": i}
                    ex = rec.explain(x, desired_class=ds.favourable)
                    cf = ex.counterfactual[x.columns].astype(x.dtypes) if ex.ok else None
                    rows.append(_row(base, "mipcf", sd, x, cf, model, ds.favourable, ex.wall_time,
                                     ex.status, ex.message, build["mipcf"], solver_cost=ex.cost if ex.ok else None,
                                     solver_seconds=ex.solve_time))
                    res = peer.explain(x)
                    ocf = None if res.counterfactual is None else res.counterfactual[x.columns]
                    rows.append(_row(base, "ocean", sd, x, ocf, model, ds.favourable, res.seconds,
                                     "found" if ocf is not None else "none", res.message, build["ocean"]))
                    m, o = rows[-2], rows[-1]
                    log(f"  {i}: mipcf {m['status']} {m['cost']:.6g} {m['seconds']:.2f}s | "
                        f"ocean {'valid' if o['valid'] else 'INVALID' if o['found'] else 'none'} "
                        f"{o['cost']:.6g} {o['seconds']:.2f}s")
    return pd.DataFrame(rows)


def _row(base, method, schema, x, cf, model, fav, seconds, status, message, build, **extra) -> dict:
    found = cf is not None
    return {**base, "method": method, "status": status, "found": found,
            "valid": bool(found and model.predict(cf)[0] == fav),
            "cost": ocean_l1(schema, x, cf) if found else np.nan, "seconds": seconds,
            "build_seconds": build, "message": str(message or "")[:200], **extra}


def summary(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for key, g in df.groupby(["dataset", "model", "scenario"], sort=False):
        m = g[g.method == "mipcf"].set_index("individual")
        o = g[g.method == "ocean"].set_index("individual")
        both = m.index[m.valid & o.reindex(m.index).valid.fillna(False).astype(bool)]
        cm, co = m.cost[both], o.cost[both]
        scale = np.maximum(1.0, np.abs(co))
        ratio = m.seconds / o.seconds.reindex(m.index)
        out.append({"dataset": key[0], "model": key[1], "scenario": key[2], "n": len(m),
                    "mipcf optimal %": 100 * (m.status == "optimal").mean(),
                    "mipcf valid %": 100 * m.valid.mean(),
                    "ocean found %": 100 * o.found.mean(), "ocean valid %": 100 * o.valid.mean(),
                    "same cost %": 100 * (np.abs(cm - co) <= TOL * scale).mean() if len(both) else np.nan,
                    "mipcf cheaper": int((cm < co - TOL * scale).sum()),
                    "ocean cheaper": int((co < cm - TOL * scale).sum()),
                    "mipcf median s": m.seconds.median(), "mipcf p90 s": m.seconds.quantile(0.9),
                    "ocean median s": o.seconds.median(), "ocean p90 s": o.seconds.quantile(0.9),
                    "median time ratio": ratio.median(), "p90 time ratio": ratio.quantile(0.9),
                    "total speed-up": o.seconds.sum() / m.seconds.sum()})
    return pd.DataFrame(out)


def report(df: pd.DataFrame, args) -> str:
    s = summary(df)
    lines = ["# mipcf vs OCEAN on OCEAN's objective", "",
             f"Generated by `python -m benchmarks.ocean --n {args.n} --datasets {args.datasets} --models "
             f"{args.models} --scenarios {args.scenarios} --time-limit {args.time_limit:g}` on {platform.node()} "
             f"({os.cpu_count()} CPUs), Python {platform.python_version()}, time limit "
             f"{args.time_limit:g} s per individual for both.", "",
             "Both solve min L1 in raw units (one-hot level change = 1, ordinal code = 1 per step) for the "
             "first N test rows the model denies; OCEAN is `ConstraintProgrammingExplainer` (OR-Tools CP-SAT, "
             "1 worker) through `benchmarks/peers.py`, mipcf is HiGHS with 1 thread. Costs are recomputed "
             "here from the returned points; `valid` is the model's own `predict`. `same cost %` is over the "
             "people where both answers are valid (relative tolerance 1e-6); `time ratio` is mipcf seconds / "
             "OCEAN seconds per person (below 1: mipcf faster); `total speed-up` is OCEAN's total time over "
             "mipcf's. Build times (one per cell) are excluded from both.", ""]
    lines.append(_markdown(s, ".3g"))
    bad = df[(df.method == "ocean") & df.found & ~df.valid]
    if len(bad):
        lines += ["", f"OCEAN answers rejected by `predict`: {len(bad)}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ocean", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--datasets", default="adult,compas,credit")
    ap.add_argument("--models", default="rf10")
    ap.add_argument("--scenarios", default="unconstrained")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the CSV(s) given")
    ap.add_argument("csv", nargs="*", help="with --report-only: CSVs to merge (default: --out's CSV)")
    args = ap.parse_args(argv)
    if args.report_only:
        df = pd.concat([pd.read_csv(p) for p in (args.csv or [args.out.with_suffix(".csv")])], ignore_index=True)
        args.out.write_text(report(df, args))
        print(args.out.read_text())
        return 0
    if sys.version_info < (3, 12):
        print("oceanpy needs Python >= 3.12 (see requirements-bench.txt)")
        return 2
    names = [d for d in args.datasets.split(",") if d]
    missing = [d for d in names if not available(name=d)]
    if missing:
        print(f"raw data not found for {missing}")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for d in names:  # rewritten after each dataset: a stopped run keeps what it finished
        parts.append(run([d], [m for m in args.models.split(",") if m],
                         [s for s in args.scenarios.split(",") if s], args.n, args.time_limit,
                         log=lambda msg: print(msg, flush=True)))
        df = pd.concat(parts, ignore_index=True)
        df.to_csv(args.out.with_suffix(".csv"), index=False)
        args.out.write_text(report(df, args))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
