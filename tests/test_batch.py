"""Batches: joblib and Dask give the serial answers; files grow as people finish; resume."""


import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

import mipcf
from mipcf import report
from mipcf.batch import Progress, explain_to_file, iter_explain
from mipcf.demo import credit_data, credit_schema


@pytest.fixture(scope="module")
def setup():
    X, y = credit_data(n=300)
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    schema = credit_schema(X)
    denied = X[model.predict(X) == 0].head(8)
    # a person the schema rejects (NaN income) and a person already approved
    bad = denied.iloc[[0]].copy()
    bad["income"] = np.nan
    approved = X[model.predict(X) == 1].head(1)
    people = pd.concat([denied, bad, approved])
    people.index = [f"p{i}" for i in range(len(people))][::-1]  # labels not in order: ids must follow them
    return model, schema, people


def _rec(setup):
    model, schema, _ = setup
    return mipcf.Recourse(model, schema, cost="l1", time_limit=30)


@pytest.fixture(scope="module")
def serial(setup):
    """The oracle: rec.explain person by person, without the batch code."""
    model, schema, people = setup
    rec = _rec(setup)
    out = {}
    for i in range(len(people)):
        row = people.iloc[[i]]
        try:
            ex = rec.explain(row, desired_class=1)
            out[people.index[i]] = (ex.status, ex.cost)
        except ValueError as exc:
            out[people.index[i]] = ("error", str(exc))
    return out


def _check_against_serial(frame, setup, serial):
    model, _, people = setup
    assert list(frame.index) == list(people.index)  # input labels, input order
    assert frame.loc["p0", "status"] == "optimal" and frame.loc["p0", "cost"] == 0.0  # already approved
    assert frame.loc["p1", "status"] == "error" and "income" in frame.loc["p1", "message"]
    for id_, (status, cost) in serial.items():
        assert frame.loc[id_, "status"] == status, id_
        if status == "optimal":
            assert frame.loc[id_, "cost"] == pytest.approx(cost, rel=1e-7, abs=1e-9), id_
            cf = frame.loc[[id_], people.columns].astype(people.dtypes.to_dict())
            assert model.predict(cf)[0] == 1, id_


def test_serial_frame_matches_person_by_person(setup, serial):
    frame = _rec(setup).explain_many(setup[2], desired_class=1)
    _check_against_serial(frame, setup, serial)
    assert sum(s == "optimal" for s, _ in serial.values()) == 9


def test_joblib_two_workers_equal_serial(setup, serial):
    frame = _rec(setup).explain_many(setup[2], desired_class=1, n_jobs=2)
    _check_against_serial(frame, setup, serial)


def test_dask_local_cluster_equals_serial(setup, serial):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        frame = _rec(setup).explain_many(setup[2], desired_class=1, backend="dask", scheduler=client)
        # every worker thread compiled its own copy: the caller's object stays unloaded
    _check_against_serial(frame, setup, serial)


@pytest.mark.slow
def test_dask_starts_its_own_process_cluster(setup, serial):
    pytest.importorskip("dask.distributed")
    frame = _rec(setup).explain_many(setup[2], desired_class=1, backend="dask", n_jobs=2)
    _check_against_serial(frame, setup, serial)


def test_iter_yields_each_person_once(setup):
    _, _, people = setup
    seen = [pos for pos, _, _ in iter_explain(_rec(setup), people, 1, n_jobs=2)]
    assert sorted(seen) == list(range(len(people)))


def test_unknown_backend(setup):
    with pytest.raises(ValueError, match="backend 'spark'"):
        _rec(setup).explain_many(setup[2], backend="spark")


def _lines(path):
    return path.read_text().count("\n")


def test_csv_grows_as_people_finish(setup, serial, tmp_path):
    _, _, people = setup
    out = tmp_path / "res.csv"
    sizes = []
    records = explain_to_file(_rec(setup), people, out, desired_class=1,
                              on_record=lambda r: sizes.append(_lines(out)))
    assert sizes == list(range(2, len(people) + 2))  # header + one flushed line per finished person
    assert [r["id"] for r in records] == list(people.index)
    back = pd.read_csv(out)
    assert list(back["id"]) == list(people.index)
    assert list(back["status"]) == [serial[i][0] for i in people.index]


def _stop_after(n):
    count = [0]

    def hook(_):
        count[0] += 1
        if count[0] == n:
            raise KeyboardInterrupt

    return hook


@pytest.mark.parametrize("fmt", ["csv", "json", pytest.param("html", marks=pytest.mark.slow)])
def test_interrupt_then_resume_equals_one_run(setup, serial, tmp_path, fmt):
    _, _, people = setup
    out = tmp_path / f"res.{fmt}"
    with pytest.raises(KeyboardInterrupt):
        explain_to_file(_rec(setup), people, out, desired_class=1, on_record=_stop_after(4))
    partial = out if fmt == "csv" else tmp_path / f"res.{fmt}.partial.csv"
    kept = report.read_csv_records(partial)
    assert len(kept) == 4
    if fmt != "csv":
        assert not out.exists()  # rendered only at the end
    new = []
    records = explain_to_file(_rec(setup), people, out, desired_class=1, resume=True, on_record=new.append)
    assert len(new) == len(people) - 4  # the finished ones were not recomputed
    assert not {r["id"] for r in new} & {r["id"] for r in kept}
    back = report.read_records(out)
    assert [r["id"] for r in back] == list(people.index)  # no duplicates, input order
    assert [r["status"] for r in back] == [serial[i][0] for i in people.index]
    for r in back:
        if r["status"] == "optimal":
            assert r["cost"] == pytest.approx(serial[r["id"]][1], rel=1e-7, abs=1e-9)
    assert [r["id"] for r in records] == list(people.index)
    assert not partial.exists() or fmt == "csv"


def test_resume_after_a_cut_line(setup, tmp_path):
    """A crash in the middle of writing a line: the torn line is dropped and that person redone."""
    _, _, people = setup
    out = tmp_path / "res.csv"
    explain_to_file(_rec(setup), people.head(4), out, desired_class=1)
    text = out.read_text()
    out.write_text(text[:-7])  # the last record loses its tail and its line end
    new = []
    explain_to_file(_rec(setup), people, out, desired_class=1, resume=True, on_record=new.append)
    assert [r["id"] for r in new] == list(people.index[3:])
    assert list(pd.read_csv(out)["id"]) == list(people.index)


def test_resume_refuses_a_foreign_file(setup, tmp_path):
    _, _, people = setup
    out = tmp_path / "res.csv"
    other = people.head(2).copy()
    other.index = ["x", "y"]
    explain_to_file(_rec(setup), other, out, desired_class=1)
    with pytest.raises(report.ResultsFileError, match="not in the input"):
        explain_to_file(_rec(setup), people, out, desired_class=1, resume=True)


def test_without_resume_starts_afresh(setup, tmp_path):
    _, _, people = setup
    out = tmp_path / "res.csv"
    explain_to_file(_rec(setup), people.head(3), out, desired_class=1)
    new = []
    explain_to_file(_rec(setup), people.head(3), out, desired_class=1, on_record=new.append)
    assert len(new) == 3 and len(pd.read_csv(out)) == 3


def test_repeated_ids_refused(setup, tmp_path):
    _, _, people = setup
    dup = people.head(3).copy()
    dup.index = ["a", "a", "b"]
    with pytest.raises(ValueError, match="repeats ids"):
        explain_to_file(_rec(setup), dup, tmp_path / "r.csv")


def test_progress_counter_only_when_enabled():
    import io

    s = io.StringIO()
    p = Progress(3, enabled=True, stream=s)
    for status in ("optimal", "infeasible", "optimal"):
        p.update(status)
    p.close()
    assert s.getvalue().rstrip().endswith("3/3 people (infeasible 1, optimal 2)")
    quiet = io.StringIO()  # not a terminal: nothing written by default
    q = Progress(2, stream=quiet)
    q.update("optimal")
    q.close()
    assert quiet.getvalue() == ""


def test_worker_copy_caps_threads(setup):
    from mipcf.batch import _worker_copy
    import os

    rec = _rec(setup)
    rec.threads = None
    shipped = _worker_copy(rec, n_workers=2)
    assert shipped.threads == max(1, (os.cpu_count() or 1) // 2)
    assert rec.threads is None and shipped is not rec
    rec.threads = 1
    assert _worker_copy(rec, 1).threads == 1


def test_worker_compiles_once_per_batch(setup):
    """Each task arrives with a fresh unpickled Recourse; the worker keeps the first one it compiled."""
    import pickle

    from mipcf import batch

    _, _, people = setup
    rec = _rec(setup)
    first = batch._worker_task(0, people.iloc[[0]], "tok-a", pickle.loads(pickle.dumps(rec)), 1)
    cached = batch._LOCAL.cache["tok-a"]
    assert cached._problem is not None and cached._solver is not None
    again = batch._worker_task(1, people.iloc[[1]], "tok-a", pickle.loads(pickle.dumps(rec)), 1)
    assert batch._LOCAL.cache["tok-a"] is cached and first[0] == 0 and again[0] == 1
    batch._worker_task(0, people.iloc[[0]], "tok-b", rec, 1)  # a new batch replaces the old model
    assert list(batch._LOCAL.cache) == ["tok-b"] and batch._LOCAL.cache["tok-b"] is not rec
