"""Command line: ``mipcf explain``, ``mipcf demo``, ``mipcf schema infer``.

Exit codes: 0 every row solved (optimal, or feasible within the time limit), 1 some rows
infeasible, or in error (status ``error`` with a message), 2 usage or input error (nothing
was computed), 130 interrupted (finished rows are kept in ``--out``; rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import pandas as pd

from .batch import explain_to_file, iter_explain, records_frame
from .report import format_of

EXAMPLES = """examples:
  mipcf demo                                   # synthetic credit data, forest model, denied applicants
  mipcf schema infer applicants.csv > schema.json
  mipcf explain --model model.skops --data applicants.csv --schema schema.json --cost l1 --out results.csv
  mipcf explain --model model.pkl --trust-pickle --data applicants.csv --desired-class 1
  mipcf explain --model model.skops --data applicants.csv --schema schema.json --jobs 2 --out report.html
  mipcf explain ... --out results.csv --resume      # after a crash / Ctrl-C: skip ids already written
  mipcf explain ... --backend dask --jobs 4         # a Dask LocalCluster of 4 workers
  mipcf explain ... --dask-scheduler tcp://10.0.0.5:8786 --out results.json

outputs (--out, format from the suffix or --format):
  csv   one row per person: id, status, cost, bound, gap, solve_time, wall_time, n_changes,
        changed, changes, message, before.<feature>, after.<feature> (filled where it changed)
  json  {"format": "mipcf.results/1", "created", "model", "options", "results": [...]}
  html  self-contained report: status counts, cost histogram, median/p90 times, a plot per person
  Rows are written as each person finishes (json/html: to <out>.partial.csv, rendered at the end);
  --resume skips the ids (input row numbers) already in the output. Final order = input order.

exit codes: 0 all rows solved (optimal or feasible), 1 some rows infeasible or in error,
  2 usage/input error (nothing computed), 130 interrupted (finished rows kept; use --resume)
"""


class InputError(Exception):
    """Bad command-line input: reported on stderr with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mipcf", description="Provably nearest actionable counterfactuals.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("explain", help="explain every row of a CSV", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", required=True, help=".skops file (safe) or .pkl/.joblib with --trust-pickle")
    e.add_argument("--data", required=True, help="CSV of individuals, one per row")
    e.add_argument("--schema", help="schema JSON (default: inferred from the CSV, see 'schema infer')")
    _solver_args(e)
    e.add_argument("--train", help="CSV of training rows (same columns): MAD scales, and for tree models "
                   "a verified starting point that prunes the search (much faster, still exact)")
    e.add_argument("--desired-class", help="class to reach (default: the other class of a binary model)")
    e.add_argument("--out", help="write results to this file (.csv, .json or .html), row by row as they finish")
    e.add_argument("--format", choices=["csv", "json", "html"],
                   help="output format (default: from the --out suffix)")
    e.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: skip ids already in --out (or its .partial.csv)")
    e.add_argument("--trust-pickle", action="store_true", help="allow pickle/joblib model files (runs their code)")
    e.add_argument("--jobs", type=int, default=1,
                   help="parallel workers (joblib processes, or Dask LocalCluster workers); -1 = all cores")
    e.add_argument("--backend", choices=["joblib", "dask"], default="joblib",
                   help="how to run workers (default joblib; dask starts a LocalCluster of --jobs workers)")
    e.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster, e.g. tcp://host:8786 (implies --backend dask)")
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress counter on stderr (default: only when stderr is a terminal)")

    a = sub.add_parser("audit", help="recourse audit of a population, per group (mipcf.audit)")
    a.add_argument("--model", required=True, help=".skops file (safe) or .pkl/.joblib with --trust-pickle")
    a.add_argument("--data", required=True, help="CSV of the population, one person per row")
    a.add_argument("--schema", help="schema JSON (default: inferred from the CSV)")
    a.add_argument("--group-by", help="column (or schema feature) defining the groups; a column outside "
                                      "the schema is used for grouping only")
    a.add_argument("--favorable-class", help="the favourable class (default: the second class of a binary model)")
    a.add_argument("--max-changes", type=int, help="at most this many features may change")
    a.add_argument("--out", help="write the audit as JSON to this file")
    a.add_argument("--trust-pickle", action="store_true", help="allow pickle/joblib model files (runs their code)")
    a.add_argument("--jobs", type=int, default=1, help="parallel workers (joblib)")
    _solver_args(a)

    d = sub.add_parser("demo", help="run the built-in demo end to end")
    d.add_argument("--causal", action="store_true", help="the causal (SCM) loan demo")
    d.add_argument("--rows", type=int, default=8, help="how many denied applicants to explain")
    _solver_args(d)

    s = sub.add_parser("schema", help="schema tools")
    s_sub = s.add_subparsers(dest="schema_command", required=True)
    si = s_sub.add_parser("infer", help="print a schema JSON inferred from a CSV",
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          epilog="examples:\n  mipcf schema infer applicants.csv > schema.json\n"
                                 "  mipcf schema infer applicants.csv --immutable sex,age "
                                 "--increase-only education > schema.json\n\n"
                                 "Bounds come from the data's min/max and types from the values; "
                                 "edit the JSON to refine them.")
    si.add_argument("csv")
    si.add_argument("--immutable", default="", help="comma-separated features")
    si.add_argument("--increase-only", default="", help="comma-separated features")
    si.add_argument("--decrease-only", default="", help="comma-separated features")
    return p


def _solver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cost", default="l1", choices=["l0", "l1", "linf"])
    p.add_argument("--scale", default="range", choices=["range", "mad", "none"])
    p.add_argument("--solver", default="highs", choices=["highs", "ortools"])
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds per individual")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "demo":
            return cmd_demo(args)
        return cmd_schema_infer(args)
    except InputError as exc:
        print(f"mipcf: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mipcf: interrupted", file=sys.stderr)
        return 130


def _read_csv(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read CSV {path!r}: {exc}") from exc


def cmd_explain(args: argparse.Namespace) -> int:
    import mipcf
    from encoders import UnsupportedModelError
    from mipcf.io import ModelLoadError, load_model

    _check_batch_args(args)
    try:
        model = load_model(args.model, trust_pickle=args.trust_pickle)
    except ModelLoadError as exc:
        raise InputError(str(exc)) from exc
    data = _read_csv(args.data)
    train = _read_csv(args.train) if args.train else None
    try:
        schema = mipcf.Schema.from_json(args.schema) if args.schema else mipcf.Schema.from_frame(data)
        _check_columns(schema, data)
        if train is not None:
            _check_columns(schema, train, what="--train CSV")
            schema.validate_frame(train[schema.columns], check_bounds=False)
        elif args.scale == "mad":
            train = data  # MAD needs a distribution; the individuals are the only one given
        rec = mipcf.Recourse(model, schema, cost=args.cost, scale=args.scale, solver=args.solver,
                             time_limit=args.time_limit, data=train)
        rec.problem  # compile now, so an unsupported model is an input error, before any row runs
    except (mipcf.SchemaError, UnsupportedModelError, OSError) as exc:
        raise InputError(str(exc)) from exc
    desired = _parse_class(args.desired_class, model)
    backend = "dask" if args.dask_scheduler else args.backend
    kw = dict(desired_class=desired, n_jobs=args.jobs, backend=backend, scheduler=args.dask_scheduler,
              progress=args.progress)
    try:
        if args.out:
            records = _explain_to_out(args, rec, model, data, kw)
        else:
            done = {pos: r for pos, r, _ in iter_explain(rec, data, **kw)}
            records = [done[i] for i in range(len(data))]
    except ImportError as exc:
        raise InputError(str(exc)) from exc
    except OSError as exc:  # an unwritable --out, an unreachable scheduler
        raise InputError(str(exc)) from exc
    return _report(records_frame(records))


def _check_batch_args(args: argparse.Namespace) -> None:
    if args.jobs == 0 or args.jobs < -1:
        raise InputError(f"--jobs must be a positive number of workers or -1 (all cores), got {args.jobs}")
    if not args.out and (args.resume or args.format):
        raise InputError("--resume and --format need --out")
    if args.out and not args.format:
        try:
            format_of(args.out)
        except ValueError as exc:
            raise InputError(str(exc)) from exc


def _explain_to_out(args: argparse.Namespace, rec, model, data: pd.DataFrame, kw: dict) -> list[dict]:
    from .report import ResultsFileError, plain

    model_info = {"type": type(model).__name__, "file": str(args.model),
                  "classes": [plain(c) for c in getattr(model, "classes_", [])]}
    options = {"data": str(args.data), "schema": args.schema, "cost": args.cost, "scale": args.scale,
               "solver": args.solver, "time_limit": args.time_limit, "desired_class": args.desired_class,
               "rows": len(data)}
    try:
        return explain_to_file(rec, data, args.out, args.format, resume=args.resume, model_info=model_info,
                               options_info=options, **kw)
    except ResultsFileError as exc:
        raise InputError(str(exc)) from exc
    except KeyboardInterrupt:
        print(f"mipcf: finished rows are in {_partial(args)}; rerun with --resume to continue",
              file=sys.stderr)
        raise


def _partial(args: argparse.Namespace) -> str:
    fmt = args.format or format_of(args.out)
    return args.out if fmt == "csv" else f"{args.out}.partial.csv"


def _check_columns(schema, data: pd.DataFrame, what: str = "the CSV") -> None:
    missing = [c for c in schema.columns if c not in data.columns]
    extra = [c for c in data.columns if c not in schema.columns]
    if missing:
        raise InputError(f"{what} lacks schema columns {missing}")
    if extra:
        raise InputError(f"{what} has columns {extra} that are not in the schema")


def _parse_class(text: str | None, model) -> object:
    if text is None:
        return None
    for c in model.classes_:
        if str(c) == text:
            return c
    raise InputError(f"--desired-class {text!r} is not one of the model's classes {list(model.classes_)}")


def _report(results: pd.DataFrame) -> int:
    table = results[["status", "cost", "gap", "solve_time", "changes"]].copy()
    with pd.option_context("display.max_colwidth", 90, "display.width", 160):
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    counts = results["status"].value_counts().to_dict()
    print(f"\n{len(results)} rows: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bad = results[results["status"] == "error"]
    for idx, msg in zip(bad.index[:5], bad["message"][:5]):
        print(f"row {idx}: {msg}", file=sys.stderr)
    solved = results["status"].isin(["optimal", "feasible"]).all()
    return 0 if solved else 1


def cmd_audit(args: argparse.Namespace) -> int:
    """Exit 0 when every denied person got recourse or a certificate, 1 when some are unresolved."""
    import mipcf
    from encoders import UnsupportedModelError
    from mipcf.io import ModelLoadError, load_model

    try:
        model = load_model(args.model, trust_pickle=args.trust_pickle)
    except ModelLoadError as exc:
        raise InputError(str(exc)) from exc
    data = _read_csv(args.data)
    try:
        schema = mipcf.Schema.from_json(args.schema) if args.schema else None
        group = args.group_by
        if group is not None and schema is not None and group in data.columns and group not in schema.columns:
            group = data.pop(group)  # a group label the model does not see (e.g. a protected attribute)
            group.name = args.group_by
        schema = schema or mipcf.Schema.from_frame(data)
        _check_columns(schema, data)
        if isinstance(group, str) and group not in data.columns and group not in schema.names:
            raise InputError(f"--group-by {group!r} is neither a CSV column nor a schema feature")
        rec = mipcf.Recourse(model, schema, cost=args.cost, scale=args.scale, solver=args.solver,
                             time_limit=args.time_limit, data=data, max_changes=args.max_changes)
        rec.problem
        result = rec.audit(data, group_by=group, favorable_class=_parse_class(args.favorable_class, model),
                           n_jobs=args.jobs)
    except (mipcf.SchemaError, UnsupportedModelError, OSError, ValueError) as exc:
        raise InputError(str(exc)) from exc
    if not isinstance(group, str) and group is not None:
        result.group_by = args.group_by
        result.table.index.name = args.group_by
    with pd.option_context("display.width", 200):
        print(result.table.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"\ncost gap between groups: {result.cost_gap:.4g}; recourse-share gap: {result.recourse_share_gap:.4g}")
    if args.out:
        try:
            result.to_json(args.out)
        except OSError as exc:
            raise InputError(f"cannot write {args.out!r}: {exc}") from exc
    from mipcf.audit import ALL
    return 1 if int(result.table.loc[ALL, "n_unresolved"]) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.causal:
        from .loan import run_causal_demo
        run_causal_demo()
        return 0
    from .demo import credit_data, credit_model, credit_schema
    from .io import save_model

    X, y = credit_data()
    model = credit_model(X, y)
    denied = X[model.predict(X) == 0].head(args.rows)
    with tempfile.TemporaryDirectory(prefix="mipcf-demo-") as tmp:
        model_path, data_path, schema_path = Path(tmp, "model.skops"), Path(tmp, "denied.csv"), Path(tmp, "schema.json")
        train_path = Path(tmp, "train.csv")
        save_model(model, model_path)
        denied.to_csv(data_path, index=False)
        X.to_csv(train_path, index=False)
        credit_schema(X).to_json(schema_path)
        print(f"demo: {len(X)} synthetic applicants, RandomForest(20 trees, depth 5); "
              f"explaining {len(denied)} denied applicants (files in {tmp})\n")
        argv = ["explain", "--model", str(model_path), "--data", str(data_path), "--schema", str(schema_path),
                "--train", str(train_path), "--cost", args.cost, "--scale", args.scale, "--solver", args.solver,
                "--time-limit", str(args.time_limit), "--desired-class", "1"]
        code = main(argv)
    return code


def cmd_schema_infer(args: argparse.Namespace) -> int:
    import mipcf

    data = _read_csv(args.csv)
    split = lambda s: [v.strip() for v in s.split(",") if v.strip()]  # noqa: E731
    try:
        schema = mipcf.Schema.from_frame(data, immutable=split(args.immutable),
                                         increase_only=split(args.increase_only),
                                         decrease_only=split(args.decrease_only))
    except mipcf.SchemaError as exc:
        raise InputError(str(exc)) from exc
    print(schema.to_json())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
