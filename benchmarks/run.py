"""The benchmark: MACE's protocol on Adult, COMPAS and Credit, mipcf side by side with peers.

``python -m benchmarks run [--quick] [--n 100] [--datasets adult,compas] ...`` trains the models
with fixed seeds, explains the first N test rows predicted unfavourable under each norm, and
writes ``rows.csv`` (one line per individual x method) and ``report.md`` (tables, plots) into
``--out`` (default ``benchmarks/results/<date>``).

Every method's answer is checked here with the model's own ``predict``; distances are computed
here with one function (MACE normalisation: each norm divided by the number of features), so
the methods are compared on the same ruler.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .datasets import NAMES, available, load_dataset, realistic_schema

SEED = 0
NORMS = ("l0", "l1", "linf")
# MACE (Karimi et al. 2020), published mean seconds per individual, eps 1e-5, cluster CPU
QUICK_TIME_LIMIT = 3.0  # --quick is a smoke run (9.3 min on 2 cores at 5 s), not the measurement
MACE_SECONDS = {"lr": "0.7-25", "dt": "9-35", "rf10": "17-108", "mlp": "100-44470"}


def _models() -> dict[str, Callable[[], Any]]:
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    return {
        "lr": lambda: LogisticRegression(max_iter=2000, random_state=SEED),
        "dt": lambda: DecisionTreeClassifier(random_state=SEED),
        "rf10": lambda: RandomForestClassifier(n_estimators=10, random_state=SEED),
        "rf100": lambda: RandomForestClassifier(n_estimators=100, max_depth=6, random_state=SEED),
        "gb100": lambda: GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=SEED),
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=(10, 10), max_iter=1000, random_state=SEED),
    }


@dataclass
class Config:
    datasets: Sequence[str] = NAMES
    models: Sequence[str] = ("lr", "dt", "rf10", "rf100", "gb100", "mlp")
    norms: Sequence[str] = NORMS
    scenarios: Sequence[str] = ("unconstrained", "realistic")
    peers: Sequence[str] = ("mo", "dice-random", "dice-genetic", "dice-kdtree", "ar", "ocean")
    n: int = 500
    peer_n: int | None = None  # individuals given to peers other than MO (None: n)
    skip: int = 0  # start at the (skip+1)-th denied person: one long cell split over machines
    time_limit: float = 120.0
    jobs: int = 1  # parallel workers over the individuals of a cell (joblib processes)
    solve: bool = True  # False: peers only, to be merged ('report') with an earlier run's mipcf rows
    data_dir: str | None = None
    out: Path | None = None


def mace_distance(schema: dict, norm: str) -> Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]:
    from .peers import feature_distance

    base = feature_distance(schema, norm)
    n = len(schema["features"])
    return lambda x, C: base(x, C) / n


def _denied(model, X: pd.DataFrame, favourable: int, n: int) -> pd.DataFrame:
    pred = model.predict(X)
    return X[pred != favourable].iloc[:n]


def _row(base: dict, method: str, norm: str, cf: pd.DataFrame | None, x: pd.DataFrame, model,
         favourable: int, dist, seconds: float, **extra) -> dict:
    valid = cf is not None and model.predict(cf[x.columns])[0] == favourable
    d = float(dist(x, cf[x.columns])[0]) if cf is not None else np.nan
    return {**base, "method": method, "norm": norm, "found": cf is not None, "valid": bool(valid),
            "distance": d, "seconds": seconds, **extra}


def _run_mipcf(model, schema_obj, ds, X_denied, norm, cfg, base, dist, first: int = 0) -> list[dict]:
    import mipcf
    from mipcf.batch import iter_explain

    rec = mipcf.Recourse(model, schema_obj, cost=norm, normalize="mace", time_limit=cfg.time_limit,
                         data=ds.X_train)
    t0 = time.perf_counter()
    _ = rec.problem, rec._backend()  # the one-time build is reported separately
    build = time.perf_counter() - t0
    rows = []
    # each worker times its own people (one solver thread each), so cfg.jobs <= cores keeps
    # the per-person times honest while the cell finishes sooner
    for i, r, cf in iter_explain(rec, X_denied, ds.favourable, n_jobs=cfg.jobs):
        x = X_denied.iloc[[i]]
        cf = None if cf is None else pd.DataFrame([cf], index=x.index)[x.columns].astype(x.dtypes)
        rows.append(_row({**base, "individual": first + i}, "mipcf", norm, cf, x, model, ds.favourable, dist,
                         r["wall_time"], status=r["status"], cost=r["cost"], gap=r["gap"],
                         solver_seconds=r["solve_time"], build_seconds=build, message=r["message"]))
    return sorted(rows, key=lambda row: row["individual"])


def _run_peer(name, factory, model, ds, schema_dict, X_denied, norms, base, first: int = 0) -> list[dict]:
    kwargs = {"candidates": ds.X_test} if name == "mo" else {}
    rows = []
    for norm in norms if name == "mo" else norms[:1]:
        dist = mace_distance(schema_dict, norm)
        if name == "mo":
            kwargs["distance"] = dist
        peer = factory(**kwargs)
        try:
            peer.fit(model, ds.X_train, ds.y_train, schema_dict, ds.favourable)
        except Exception as exc:  # a peer that cannot handle this model is a row, not a crash
            return [{**base, "method": name, "norm": n, "found": False, "valid": False,
                     "distance": np.nan, "seconds": np.nan, "message": f"fit failed: {exc}"[:200]}
                    for n in norms]
        for i in range(len(X_denied)):
            x = X_denied.iloc[[i]]
            res = peer.explain(x)
            # peers other than MO do not optimise a norm: one answer, measured under every norm
            for n in ([norm] if name == "mo" else norms):
                rows.append(_row({**base, "individual": first + i}, name, n, res.counterfactual, x, model,
                                 ds.favourable, mace_distance(schema_dict, n), res.seconds,
                                 message=res.message))
    return rows


def _peer_applies(name: str, model_key: str) -> bool:
    if name == "ar":
        return model_key == "lr"
    if name == "ocean":
        return model_key in ("dt", "rf10", "rf100")
    return True


def run(cfg: Config, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run the benchmark; returns every row (also written to ``cfg.out / 'rows.csv'``)."""
    import mipcf
    from encoders import UnsupportedModelError

    from .peers import available_peers

    peers = {k: v for k, v in available_peers().items() if k in cfg.peers}
    models = _models()
    rows: list[dict] = []
    for name in cfg.datasets:
        ds = load_dataset(name, cfg.data_dir)
        for mkey in cfg.models:
            model = models[mkey]().fit(ds.X_train, ds.y_train)
            acc = float((model.predict(ds.X_test) == ds.y_test).mean())
            X_denied = _denied(model, ds.X_test, ds.favourable, cfg.skip + cfg.n).iloc[cfg.skip:]
            for scenario in cfg.scenarios:
                sd = ds.schema if scenario == "unconstrained" else realistic_schema(name, ds.schema)
                schema_obj = mipcf.Schema.from_dict(sd)
                base = {"dataset": name, "model": mkey, "scenario": scenario, "accuracy": acc}
                for norm in cfg.norms if cfg.solve else ():
                    log(f"{name} {mkey} {scenario} {norm}: mipcf on {len(X_denied)} individuals")
                    try:
                        rows += _run_mipcf(model, schema_obj, ds, X_denied, norm, cfg, base,
                                           mace_distance(sd, norm), cfg.skip)
                    except UnsupportedModelError as exc:
                        log(f"  skipped: {exc}")
                        break
                for pname, factory in peers.items():
                    if _peer_applies(pname, mkey):
                        log(f"{name} {mkey} {scenario}: {pname}")
                        some = X_denied if pname == "mo" or cfg.peer_n is None else X_denied.iloc[:cfg.peer_n]
                        rows += _run_peer(pname, factory, model, ds, sd, some, list(cfg.norms), base, cfg.skip)
            if cfg.out is not None:  # a long run that is stopped keeps what it finished
                cfg.out.mkdir(parents=True, exist_ok=True)
                pd.DataFrame(rows).to_csv(cfg.out / "rows.csv", index=False)
    df = pd.DataFrame(rows)
    if cfg.out is not None:
        cfg.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(cfg.out / "rows.csv", index=False)
        _plots(df, cfg.out)
        (cfg.out / "report.md").write_text(report(df, cfg))
    return df


# ---- report ------------------------------------------------------------------------------

def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One line per dataset x model x scenario x norm x method."""
    keys = ["dataset", "model", "scenario", "norm", "method"]
    mo = df[df.method == "mo"].set_index(keys[:-1] + ["individual"])["distance"]

    def agg(key: tuple, g: pd.DataFrame) -> dict:
        ok = g[g.valid]
        out = dict(zip(keys, key))
        out |= {"n": len(g), "coverage %": 100 * g.found.mean(), "valid %": 100 * g.valid.mean(),
               "median s": g.seconds.median(), "p90 s": g.seconds.quantile(0.9),
               "median dist": ok.distance.median()}
        if out["method"] == "mipcf":
            out["optimal %"] = 100 * (g.status == "optimal").mean()
            out["solver share %"] = 100 * g.solver_seconds.sum() / g.seconds.sum()
        if out["method"] == "mipcf":
            out["beaten"] = _beaten(df, key, ok)
        idx = pd.MultiIndex.from_frame(ok[keys[:-1] + ["individual"]])
        ref = mo.reindex(idx).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 1 - ok.distance.to_numpy() / ref
        gain = gain[np.isfinite(gain)]
        out["vs MO %"] = 100 * np.mean(gain) if gain.size else np.nan
        return out

    return pd.DataFrame([agg(k, g) for k, g in df.groupby(keys, sort=False)])


def _beaten(df: pd.DataFrame, key: tuple, ours: pd.DataFrame) -> int:
    """Individuals where some peer's valid answer is cheaper than our proven optimum (a bug)."""
    dataset, model, scenario, norm, _ = key
    peers = df[(df.dataset == dataset) & (df.model == model) & (df.scenario == scenario) & (df.norm == norm)
               & (df.method != "mipcf") & df.valid]
    best = peers.groupby("individual").distance.min()
    opt = ours[ours.status == "optimal"].set_index("individual").distance
    common = best.index.intersection(opt.index)
    return int((best[common] < opt[common] - 1e-9 * (1 + opt[common].abs())).sum())


def report(df: pd.DataFrame, cfg: Config) -> str:
    s = summary(df)
    cols = ["dataset", "model", "scenario", "norm", "method", "n", "coverage %", "valid %",
            "optimal %", "beaten", "median s", "p90 s", "solver share %", "median dist", "vs MO %"]
    s = s[[c for c in cols if c in s]].round(4)
    # MACE's own per-individual time beside ours, on mipcf's rows (the paper reports no other model)
    s["MACE mean s"] = np.where(s.method == "mipcf", s.model.map(MACE_SECONDS).fillna(""), "")
    lines = [f"# mipcf benchmark, {_dt.date.today().isoformat()}", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{platform.system()}. Individuals per cell: up to {cfg.n} (first test rows predicted "
             f"unfavourable); mipcf time limit {cfg.time_limit:g} s, 1 solver thread"
             + (f", {cfg.jobs} workers over individuals" if cfg.jobs > 1 else "") + ".", "",
             "Distances use MACE's normalisation (each norm divided by the number of features); "
             "validity is checked here with the model's own predict; `vs MO %` is the mean "
             "distance reduction relative to the minimum-observable baseline (MACE Table 2.3); `beaten` "
             "counts individuals where a peer's valid answer was cheaper than mipcf's proven optimum "
             "(must be 0).", "",
             "`MACE mean s` is MACE's published mean seconds per individual for that model "
             "(range over datasets and norms, cluster CPU; ../shared/DESIGN.md section 9).", "",
             _markdown(s), ""]
    if cfg.out is not None and (cfg.out / "distance.png").exists():
        lines += ["![distances](distance.png)", "", "![times](time.png)", ""]
    return "\n".join(lines)


def merge_reports(paths: Sequence[str], out: Path, note: str = "", time_limit: float = 120.0) -> int:
    """One report from the rows of several runs (e.g. run side by side, one per model family).

    A person's row in a later file replaces the same person's row (same dataset, model,
    scenario, norm and method) from an earlier one, so a rerun of some cells supersedes them.
    """
    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    df = df.drop_duplicates(["dataset", "model", "scenario", "norm", "method", "individual"], keep="last")
    cfg = Config(datasets=sorted(df.dataset.unique()), models=sorted(df.model.unique()),
                 n=int(df.groupby(["dataset", "model", "scenario", "norm", "method"]).size().max()),
                 time_limit=time_limit, out=out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "rows.csv", index=False)
    _plots(df, out)
    text = report(df, cfg)
    if note:
        head, rest = text.split("\n", 1)
        text = f"{head}\n\n{note}\n{rest}"
    (out / "report.md").write_text(text)
    print(out / "report.md")
    return 0


def _markdown(df: pd.DataFrame, float_format: str | None = None) -> str:
    """A markdown table; ``float_format`` (e.g. ``".3g"``) formats the float columns, NaN as blank."""
    if float_format:
        df = df.copy()
        for c in df.columns:
            if df[c].dtype.kind == "f":
                df[c] = df[c].map(lambda v: v if pd.isna(v) else format(v, float_format))
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _plots(df: pd.DataFrame, out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    for column, fname, log in (("distance", "distance.png", False), ("seconds", "time.png", True)):
        methods = [m for m in df.method.unique()]
        data = [df.loc[(df.method == m) & df[column].notna() & (df.valid | (column == "seconds")), column]
                for m in methods]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.boxplot([d.to_numpy() for d in data], showfliers=False)
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=20)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(column)
        ax.set_title(f"{column} per individual, all datasets, models and norms")
        fig.tight_layout()
        fig.savefig(out / fname, dpi=100)
        plt.close(fig)


# ---- command line ------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the benchmark and write the report")
    r.add_argument("--quick", action="store_true",
                   help="smoke run: 20 individuals (peers 5), 3 s limit, a worker per core, no DiCE genetic/kdtree")
    r.add_argument("--n", type=int, default=None, help="individuals per cell (default 500, quick 20)")
    r.add_argument("--datasets", default=",".join(NAMES))
    r.add_argument("--models", default=",".join(Config.models))
    r.add_argument("--norms", default=",".join(NORMS))
    r.add_argument("--scenarios", default="unconstrained,realistic")
    r.add_argument("--peers", default=",".join(Config.peers))
    r.add_argument("--peer-n", type=int, default=None, help="individuals for peers other than MO (default: --n)")
    r.add_argument("--skip", type=int, default=0,
                   help="skip the first K denied people (split a long cell over runs; merge with 'report')")
    r.add_argument("--peers-only", action="store_true",
                   help="run the peers but not mipcf (merge with an earlier run's rows with 'report')")
    r.add_argument("--time-limit", type=float, default=None, help="seconds per person (default 120, quick 3)")
    r.add_argument("--jobs", type=int, default=None,
                   help="parallel workers over individuals (joblib); keep <= cores for honest times")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--out", default=None)
    rp = sub.add_parser("report", help="merge rows.csv files of several runs into one report")
    rp.add_argument("rows", nargs="+", help="rows.csv files written by 'run' (a later file's rows replace an earlier's)")
    rp.add_argument("--out", required=True, help="folder for the merged rows.csv, report.md and plots")
    rp.add_argument("--note", default="", help="a paragraph to put under the heading (e.g. machine load)")
    rp.add_argument("--time-limit", type=float, default=120.0, help="the runs' mipcf time limit, for the text")
    a = p.parse_args(argv)
    if a.command == "report":
        return merge_reports(a.rows, Path(a.out), a.note, a.time_limit)
    datasets = a.datasets.split(",")
    if not all(available(a.data_dir, name) for name in datasets):
        print(f"raw data for {datasets} not found: pass --data-dir (see ../shared/data/README.md)",
              file=sys.stderr)
        return 2
    peers = a.peers.split(",") if a.peers else []
    if a.quick and a.peers == r.get_default("peers"):
        peers = [q for q in peers if q not in ("dice-genetic", "dice-kdtree")]
    out = Path(a.out) if a.out else Path(__file__).parent / "results" / _dt.date.today().isoformat()
    cfg = Config(datasets=datasets, models=a.models.split(","), norms=a.norms.split(","),
                 scenarios=a.scenarios.split(","), peers=peers, n=a.n or (20 if a.quick else 500),
                 peer_n=a.peer_n or (5 if a.quick else None), skip=a.skip,
                 time_limit=a.time_limit or (QUICK_TIME_LIMIT if a.quick else 120.0),
                 jobs=a.jobs or ((os.cpu_count() or 1) if a.quick else 1), data_dir=a.data_dir, out=out,
                 solve=not a.peers_only)
    run(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(out / "report.md")
    return 0
