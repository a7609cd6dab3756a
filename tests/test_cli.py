"""The command line: demo, explain on files, exit codes, safe loading."""

import pickle

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
