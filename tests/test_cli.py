"""The command line: demo, explain on files, exit codes, safe loading."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mipcf.cli import main
from mipcf.demo import credit_data, credit_model, credit_schema
from mipcf.io import save_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    X, y = credit_data(n=300)
    model = credit_model(X, y)
    save_model(model, d / "m.skops")
    with open(d / "m.pkl", "wb") as fh:
        pickle.dump(model, fh)
    X[model.predict(X) == 0].head(3).to_csv(d / "denied.csv", index=False)
    X.to_csv(d / "train.csv", index=False)
    credit_schema(X).to_json(d / "schema.json")
    return d


def test_demo_runs(capsys):
    assert main(["demo", "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "optimal" in out and "2 rows" in out


def test_explain_writes_results(files, capsys):
    out = files / "res.csv"
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--desired-class", "1", "--out", str(out)])
    assert code == 0
    res = pd.read_csv(out)
    assert list(res["status"]) == ["optimal"] * 3
    assert {"id", "cost", "gap", "changes"} <= set(res.columns)


def test_pickle_refused_without_trust(files, capsys):
    code = main(["explain", "--model", str(files / "m.pkl"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json")])
    assert code == 2
    assert "--trust-pickle" in capsys.readouterr().err


def test_pickle_accepted_with_trust(files):
    code = main(["explain", "--model", str(files / "m.pkl"), "--trust-pickle", "--data",
                 str(files / "denied.csv"), "--schema", str(files / "schema.json"), "--desired-class", "1"])
    assert code == 0


def test_missing_column_is_input_error(files, capsys):
    df = pd.read_csv(files / "denied.csv").drop(columns=["income"])
    df.to_csv(files / "bad.csv", index=False)
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "bad.csv"),
                 "--schema", str(files / "schema.json")])
    assert code == 2
    assert "income" in capsys.readouterr().err


def test_unsupported_model_names_type(files, capsys, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier
    X, y = credit_data(n=100)
    save_model(KNeighborsClassifier().fit(X, y), tmp_path / "knn.skops")
    code = main(["explain", "--model", str(tmp_path / "knn.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "KNeighborsClassifier" in err and "RandomForestClassifier" in err


def test_bad_row_reported_others_solved(files, capsys):
    df = pd.read_csv(files / "denied.csv")
    df.loc[1, "income"] = None
    df.to_csv(files / "nan.csv", index=False)
    out = files / "nan_res.csv"
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "nan.csv"),
                 "--schema", str(files / "schema.json"), "--desired-class", "1", "--out", str(out)])
    assert code == 1
    res = pd.read_csv(out)
    assert list(res["status"]) == ["optimal", "error", "optimal"]
    assert "income" in res.loc[1, "message"]


def test_unreadable_model_file(tmp_path, files, capsys):
    bad = tmp_path / "broken.skops"
    bad.write_bytes(b"not a zip")
    code = main(["explain", "--model", str(bad), "--data", str(files / "denied.csv")])
    assert code == 2
    assert "broken.skops" in capsys.readouterr().err


def test_not_a_classifier(tmp_path, files, capsys):
    from sklearn.linear_model import LinearRegression
    X, y = credit_data(n=100)
    save_model(LinearRegression().fit(X, y), tmp_path / "reg.skops")
    code = main(["explain", "--model", str(tmp_path / "reg.skops"), "--data", str(files / "denied.csv")])
    assert code == 2
    assert "not a classifier" in capsys.readouterr().err


def test_schema_infer(files, capsys):
    assert main(["schema", "infer", str(files / "denied.csv"), "--immutable", "sex"]) == 0
    out = capsys.readouterr().out
    assert '"immutable"' in out and "mipcf.schema/1" in out


# ---- batches from the command line: formats, resume after a crash, usage errors ----------
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mipcf import report

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """30 denied applicants and a small forest (a few hundredths of a second per person)."""
    from sklearn.ensemble import RandomForestClassifier

    d = tmp_path_factory.mktemp("batch")
    X, y = credit_data(n=300)
    model = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    save_model(model, d / "m.skops")
    X[model.predict(X) == 0].head(30).to_csv(d / "people.csv", index=False)
    credit_schema(X).to_json(d / "schema.json")
    args = ["explain", "--model", str(d / "m.skops"), "--data", str(d / "people.csv"),
            "--schema", str(d / "schema.json"), "--desired-class", "1"]
    assert main(args + ["--out", str(d / "reference.csv")]) == 0  # the uninterrupted run
    return d, args, model


def _same_results(got, reference):
    ref = pd.read_csv(reference)
    assert list(got["id"]) == list(range(30)) == list(ref["id"])  # every id once, input order
    assert list(got["status"]) == list(ref["status"])
    assert np.allclose(got["cost"], ref["cost"], rtol=1e-7, atol=1e-9)
    assert list(got["n_changes"]) == list(ref["n_changes"])


def _start_and_kill(args, out, sig, poll, after_rows=3):
    """Run the CLI in a subprocess and send ``sig`` once ``poll`` holds ``after_rows`` results."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "mipcf", *args, "--out", str(out)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not (poll.exists() and poll.read_text().count("\n") > after_rows):
            time.sleep(0.01)
        assert proc.poll() is None, "the batch finished before it could be interrupted"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_sigkill_then_resume_equals_one_run(batch):
    d, args, _ = batch
    out = d / "killed.csv"
    code, _ = _start_and_kill(args, out, signal.SIGKILL, poll=out)
    assert code == -signal.SIGKILL
    kept = report.read_csv_records(out)  # a line torn by the kill is dropped
    assert 3 <= len(kept) < 30
    assert main(args + ["--out", str(out), "--resume"]) == 0
    _same_results(pd.read_csv(out), d / "reference.csv")


@pytest.mark.slow  # a second subprocess start-up (~10 s on a loaded machine); SIGKILL above runs by default
def test_ctrl_c_on_json_keeps_rows_and_resumes(batch, capsys):
    d, args, _ = batch
    out = d / "interrupted.json"
    partial = d / "interrupted.json.partial.csv"
    code, err = _start_and_kill(args, out, signal.SIGINT, poll=partial)
    assert code == 130
    assert "interrupted" in err and "--resume" in err and str(partial) in err
    assert not out.exists() and 3 <= len(report.read_csv_records(partial)) < 30
    assert main(args + ["--out", str(out), "--resume"]) == 0
    got = pd.DataFrame(report.read_records(out))
    _same_results(got, d / "reference.csv")
    assert not partial.exists()


def test_json_output_validates_and_round_trips(batch, capsys):
    d, args, model = batch
    out = d / "res.json"
    assert main(args + ["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    report.validate_document(doc)
    assert doc["format"] == "mipcf.results/1" and doc["model"]["type"] == "RandomForestClassifier"
    assert [r["id"] for r in doc["results"]] == list(range(30))
    ref = pd.read_csv(d / "reference.csv")
    assert np.allclose([r["cost"] for r in doc["results"]], ref["cost"], rtol=1e-7, atol=1e-9)
    # the changes applied to each person are a counterfactual the model accepts
    people = pd.read_csv(d / "people.csv")
    for r in doc["results"]:
        row = people.iloc[[r["id"]]].copy()
        for c in r["changes"]:
            if c["feature"] == "housing":
                for lv in ("rent", "mortgage", "own"):
                    row[f"housing_{lv}"] = int(lv == c["after"])
            else:
                row[c["feature"]] = c["after"]
        assert model.predict(row)[0] == 1, r
    assert not (d / "res.json.partial.csv").exists()


@pytest.mark.slow  # HTML rendering is covered in test_report.py; this is the CLI wiring
def test_html_output_from_cli(files, capsys):
    out = files / "res.html"
    assert main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--desired-class", "1", "--out", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 4  # costs + 3 people
    assert [r["status"] for r in report.read_records(out)] == ["optimal"] * 3


@pytest.mark.parametrize("extra, needle", [
    (["--resume"], "--out"),
    (["--format", "json"], "--out"),
    (["--jobs", "0"], "--jobs"),
    (["--out", "results.txt"], "--format"),
])
def test_batch_usage_errors(files, capsys, extra, needle):
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), *extra])
    assert code == 2
    assert needle in capsys.readouterr().err


def test_resume_refuses_other_columns(files, tmp_path, capsys):
    out = tmp_path / "res.csv"
    out.write_text("id,status,something_else\n0,optimal,1\n")
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--out", str(out), "--resume"])
    assert code == 2
    assert "res.csv" in capsys.readouterr().err


def test_help_lists_exit_codes_and_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["explain", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for text in ("exit codes", "--resume", "--dask-scheduler", "mipcf.results/1", "130", "schema infer"):
        assert text in out


def test_skops_with_untrusted_type_refused(tmp_path):
    import math

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from mipcf.io import ModelLoadError, load_model

    path = tmp_path / "sneaky.skops"
    save_model(make_pipeline(FunctionTransformer(math.log1p), LogisticRegression()), path)
    with pytest.raises(ModelLoadError, match="not on the trusted list"):
        load_model(path)


def test_progress_counter_on_request(files, capsys):
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--desired-class", "1", "--progress"])
    assert code == 0
    assert "3/3 people (optimal 3)" in capsys.readouterr().err


@pytest.mark.slow  # starts a LocalCluster of worker processes
def test_dask_backend_from_cli(files, tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "res.csv"
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--desired-class", "1", "--backend", "dask",
                 "--jobs", "2", "--out", str(out)])
    assert code == 0
    assert list(pd.read_csv(out)["status"]) == ["optimal"] * 3


def test_train_rows_prune_but_do_not_change_the_optimum(files):
    """--train gives the search a verified starting point; the proven optimum must not move."""
    costs = {}
    for extra in ([], ["--train", str(files / "train.csv")]):
        out = files / f"res{len(extra)}.csv"
        code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                     "--schema", str(files / "schema.json"), "--desired-class", "1", "--out", str(out), *extra])
        assert code == 0
        res = pd.read_csv(out)
        assert (res.status == "optimal").all()
        costs[len(extra)] = res.cost.to_numpy()
    assert costs[0] == pytest.approx(costs[2], rel=1e-6)


def test_train_with_wrong_columns_is_input_error(files, tmp_path, capsys):
    pd.read_csv(files / "train.csv").drop(columns=["debt"]).to_csv(tmp_path / "t.csv", index=False)
    code = main(["explain", "--model", str(files / "m.skops"), "--data", str(files / "denied.csv"),
                 "--schema", str(files / "schema.json"), "--train", str(tmp_path / "t.csv")])
    assert code == 2 and "--train CSV lacks schema columns ['debt']" in capsys.readouterr().err
