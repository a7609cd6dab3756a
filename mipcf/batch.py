"""Many individuals: serially, in parallel through joblib, or on a Dask cluster.

Every backend yields one finished person at a time (in completion order), so callers can
append results to disk as they arrive; :func:`explain_to_file` does that, with ``resume``
skipping people already in the output. Workers compile the MILP once each: the Recourse
object is shipped without its loaded solver (``Recourse.__getstate__``) and cached per worker
thread under a token naming this batch.
"""

from __future__ import annotations

import copy
import logging
import os
import pickle
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

from . import report

BACKENDS = ("joblib", "dask")

_LOCAL = threading.local()  # per worker thread: {batch token: Recourse}


# ---- one person ----------------------------------------------------------------------
def _explain_one(rec, row: pd.DataFrame, desired_class: Any) -> tuple[dict, dict | None]:
    """Record (and counterfactual values) of one person; a failure becomes an ``error`` record."""
    id_ = row.index[0]
    try:
        ex = rec.explain(row, desired_class)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad person must not stop the batch
        msg = str(exc) if isinstance(exc, (ValueError, TypeError)) else f"{type(exc).__name__}: {exc}"
        return report.error_record(id_, msg), None
    cf = ex.counterfactual.iloc[0].to_dict() if ex.counterfactual is not None else None
    return report.make_record(id_, ex, rec.schema), cf


def _worker_task(pos: int, row: pd.DataFrame, token: str, rec, desired_class: Any):
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    if token not in cache:
        cache.clear()  # one batch per worker at a time: do not keep old models alive
        # a private copy: in-process workers (threads) would otherwise share one solver
        cache[token] = pickle.loads(pickle.dumps(rec))
    return (pos, *_explain_one(cache[token], row, desired_class))


# ---- progress ------------------------------------------------------------------------
class Progress:
    """``done/total`` counter on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, total: int, enabled: bool | None = None, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done = total, 0
        self.counts: dict[str, int] = {}

    def update(self, status: str) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.enabled:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            self.stream.write(f"\rmipcf: {self.done}/{self.total} people ({detail})")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


# ---- the backends --------------------------------------------------------------------
def _worker_copy(rec, n_workers: int):
    """The Recourse shipped to workers: solver threads capped so workers do not oversubscribe."""
    cap = max(1, (os.cpu_count() or 1) // max(n_workers, 1))
    shipped = copy.copy(rec)
    shipped._problem = shipped._solver = shipped._pruner = None
    shipped.threads = cap if rec.threads is None else min(rec.threads, cap)
    return shipped


def iter_explain(rec, X: pd.DataFrame, desired_class: Any = None, *, n_jobs: int = 1,
                 backend: str = "joblib", scheduler: Any = None,
                 progress: bool | None = None) -> Iterator[tuple[int, dict, dict | None]]:
    """Explain every row of ``X``; yield ``(position, record, counterfactual)`` as each finishes.

    ``backend="joblib"`` runs ``n_jobs`` local processes (``n_jobs=1``: in this process, reusing
    ``rec``'s compiled problem). ``backend="dask"`` uses ``scheduler`` (an address such as
    ``"tcp://host:8786"`` or a ``distributed.Client``) or, without one, starts a LocalCluster
    of ``n_jobs`` single-threaded worker processes for the duration of the batch.
    ``progress``: a counter on stderr (default: only when stderr is a terminal).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    bar = Progress(len(X), progress)
    if backend == "dask":
        gen = _iter_dask(rec, X, desired_class, n_jobs, scheduler)
    elif len(X) < 2 or _n_workers(n_jobs) == 1:
        gen = ((i, *_explain_one(rec, X.iloc[[i]], desired_class)) for i in range(len(X)))
    else:
        gen = _iter_joblib(rec, X, desired_class, n_jobs)
    try:
        for item in gen:
            bar.update(item[1]["status"])
            yield item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()  # stops the workers on an interrupt or an abandoned iteration
        bar.close()


def _n_workers(n_jobs: int) -> int:
    from joblib import effective_n_jobs

    return effective_n_jobs(n_jobs)


def _iter_joblib(rec, X, desired_class, n_jobs):
    from joblib import Parallel, delayed

    token = uuid.uuid4().hex
    shipped = _worker_copy(rec, _n_workers(n_jobs))
    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from par(delayed(_worker_task)(i, X.iloc[[i]], token, shipped, desired_class) for i in range(len(X)))


def _iter_dask(rec, X, desired_class, n_jobs, scheduler):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the dask backend needs dask.distributed: pip install 'mipcf[dask]'") from exc
    cluster = None
    if isinstance(scheduler, Client):
        client, own_client = scheduler, False
    elif scheduler:
        client, own_client = Client(scheduler), True
    else:
        cluster = LocalCluster(n_workers=max(1, _n_workers(n_jobs)), threads_per_worker=1,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client, own_client = Client(cluster), True
    futures = []
    try:
        n_threads = sum(client.nthreads().values()) or 1
        token = uuid.uuid4().hex
        # one copy of the model per worker, not one per person
        shipped = client.scatter(_worker_copy(rec, n_threads), broadcast=True)
        rows = [X.iloc[[i]] for i in range(len(X))]
        futures = client.map(_worker_task, list(range(len(X))), rows, token=token, rec=shipped,
                             desired_class=desired_class, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if futures:
            client.cancel(futures)
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


# ---- frames and files ----------------------------------------------------------------
def explain_frame(rec, X: pd.DataFrame, desired_class: Any = None, n_jobs: int = 1, backend: str = "joblib",
                  scheduler: Any = None, progress: bool | None = None) -> pd.DataFrame:
    """One output row per input row, same index and order: counterfactual columns plus status columns.

    The counterfactual columns are NaN where there is no counterfactual (infeasible, error);
    ``changes`` lists the changed features as text, ``n_changes`` counts them.
    """
    recs: dict[int, tuple[dict, dict | None]] = {}
    for pos, record, cf in iter_explain(rec, X, desired_class, n_jobs=n_jobs, backend=backend,
                                        scheduler=scheduler, progress=progress):
        recs[pos] = (record, cf)
    rows = []
    for pos in range(len(X)):
        record, cf = recs[pos]
        row = {c: (cf or {}).get(c, float("nan")) for c in X.columns}
        row.update({k: record[k] for k in ("status", *report.NUMBER_FIELDS, "n_changes")})
        row.update(solver=rec.solver, changes=report.changes_text(record["changes"]), message=record["message"])
        rows.append(row)
    return pd.DataFrame(rows, index=X.index)


def check_ids(X: pd.DataFrame) -> list[str]:
    """The input index as ids (text), which must be unique to resume by id."""
    ids = [str(report.plain(i)) for i in X.index]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"the input index repeats ids {dup}; ids must be unique")
    return ids


def explain_to_file(rec, X: pd.DataFrame, out: str | Path, fmt: str | None = None, *,
                    desired_class: Any = None, n_jobs: int = 1, backend: str = "joblib",
                    scheduler: Any = None, resume: bool = False, progress: bool | None = None,
                    model_info: Mapping | None = None, options_info: Mapping | None = None,
                    on_record: Callable[[dict], None] | None = None) -> list[dict]:
    """Explain ``X`` into ``out`` (``csv`` | ``json`` | ``html``), appending as people finish.

    CSV rows are appended to ``out`` itself; JSON and HTML are rendered at the end from a
    sidecar ``<out>.partial.csv`` written as people finish (removed once ``out`` is written).
    With ``resume=True`` the ids (input index labels) already in the sidecar or in ``out`` are
    skipped, so an interrupted run continues where it stopped. At the end ``out`` holds one
    record per input row, in input order, and the records are returned in that order.
    """
    fmt = fmt or report.format_of(out)
    if fmt not in report.FORMATS:
        raise report.ResultsFileError(f"unknown format {fmt!r}; expected one of {report.FORMATS}")
    out = Path(out)
    features = rec.schema.names
    ids = check_ids(X)
    sidecar = out if fmt == "csv" else Path(f"{out}.partial.csv")
    done: dict[str, dict] = {}
    if resume:
        source = sidecar if sidecar.exists() else out if out.exists() else None
        if source is not None:
            if source == sidecar:
                report.check_csv_header(source, features)
            for r in report.read_records(source, "csv" if source == sidecar else fmt):
                done[str(r["id"])] = r
        stray = sorted(set(done) - set(ids))
        if stray:
            raise report.ResultsFileError(f"{source} holds ids {stray[:5]} that are not in the input; "
                             "resume with the same input file, or write to another --out")
    # start the sidecar from exactly the finished records (drops a line cut off by a crash)
    report.write_csv(done.values(), sidecar, features)
    todo = [i for i, id_ in enumerate(ids) if id_ not in done]
    with report.CSVAppender(sidecar, features) as sink:
        for _, record, _ in iter_explain(rec, X.iloc[todo], desired_class, n_jobs=n_jobs, backend=backend,
                                         scheduler=scheduler, progress=progress):
            sink.write(record)
            done[str(record["id"])] = record
            if on_record is not None:
                on_record(record)
    ordered = [done[i] for i in ids]
    report.write_results(ordered, out, fmt, features, schema=rec.schema, model=model_info, options=options_info)
    if sidecar != out:
        sidecar.unlink()
    return ordered


def records_frame(records: list[dict], index: pd.Index | None = None) -> pd.DataFrame:
    """Records as a frame (``changes`` as text), indexed by id or by ``index``."""
    rows = [{**{k: r[k] for k in ("status", *report.NUMBER_FIELDS, "n_changes", "message")},
             "changes": report.changes_text(r["changes"])} for r in records]
    frame = pd.DataFrame(rows, index=index if index is not None else [r["id"] for r in records])
    frame.index.name = "id"
    return frame


__all__ = ["iter_explain", "explain_frame", "explain_to_file", "records_frame", "check_ids", "Progress",
           "BACKENDS"]
