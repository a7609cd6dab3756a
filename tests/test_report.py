"""Results files: CSV / JSON round trips, the versioned JSON schema, the HTML report in Chromium."""

import base64
import csv
import io
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from mipcf import report
from mipcf.demo import credit_data, credit_schema
from mipcf.explanation import Explanation

FEATURES = ["age", "sex", "education", "income", "debt", "late_payments", "years_employed", "housing"]


def _records():
    rng = np.random.default_rng(3)
    out = []
    for i in range(6):
        income = float(rng.uniform(0, 20000))
        out.append({"id": i, "status": "optimal", "cost": float(rng.random()) / 7, "bound": 0.1 + 0.2,
                    "gap": 0.0, "solve_time": float(rng.random()), "wall_time": 1e-300 * (i + 1),
                    "n_changes": 2,
                    "changes": [{"feature": "income", "before": income, "after": income + 1 / 3},
                                {"feature": "housing", "before": "rent", "after": "own"}],
                    "message": ""})
    out.append({"id": 6, "status": "infeasible", "cost": math.nan, "bound": math.nan, "gap": math.nan,
                "solve_time": 0.5, "wall_time": 0.6, "n_changes": 0, "changes": [],
                "message": 'no counterfactual, "quoted", with, commas\nand a new line'})
    out.append({"id": 7, "status": "error", "cost": math.nan, "bound": math.nan, "gap": math.nan,
                "solve_time": 0.0, "wall_time": 0.0, "n_changes": 0, "changes": [],
                "message": "</script><script>alert(1)</script>"})
    out.append({"id": 8, "status": "feasible", "cost": 0.25, "bound": 0.125, "gap": 0.5, "solve_time": 60.0,
                "wall_time": 60.1, "n_changes": 1, "changes": [{"feature": "education", "before": 1, "after": 3}],
                "message": "time limit"})
    return out


def _same(a, b):
    """Records equal, NaN equal to NaN, floats bit for bit."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for k in x:
            if isinstance(x[k], float) and math.isnan(x[k]):
                assert isinstance(y[k], float) and math.isnan(y[k]), k
            else:
                assert x[k] == y[k] and type(x[k]) is type(y[k]), (k, x[k], y[k])


def test_feature_changes_reads_one_hot_groups():
    X, _ = credit_data(n=50)
    schema = credit_schema(X)
    before = X.iloc[[0]].copy()
    before[["housing_rent", "housing_mortgage", "housing_own"]] = [1, 0, 0]
    after = before.copy()
    after[["housing_rent", "housing_own"]] = [0, 1]
    after["income"] = before["income"] + 250.0
    ex = Explanation("optimal", before, 1, counterfactual=after, cost=0.1, bound=0.1, gap=0.0)
    rec = report.make_record(5, ex, schema)
    assert rec["changes"] == [{"feature": "income", "before": float(before["income"].iloc[0]),
                               "after": float(before["income"].iloc[0]) + 250.0},
                              {"feature": "housing", "before": "rent", "after": "own"}]
    assert rec["n_changes"] == 2 and rec["id"] == 5 and type(rec["id"]) is int


def test_csv_round_trip_exact(tmp_path):
    recs = _records()
    path = tmp_path / "r.csv"
    report.write_csv(recs, path, FEATURES)
    _same(report.read_csv_records(path), recs)
    # an independent reader sees the same numbers and the sparse before/after columns
    df = pd.read_csv(path)
    assert list(df["id"]) == list(range(9))
    assert df.loc[0, "after.income"] == recs[0]["changes"][0]["after"]
    assert df.loc[0, "after.housing"] == "own" and pd.isna(df.loc[0, "after.age"])
    assert df.loc[6, "message"] == recs[6]["message"]
    assert df.loc[0, "changes"] == f"income: {recs[0]['changes'][0]['before']} -> " \
                                   f"{recs[0]['changes'][0]['after']}; housing: rent -> own"


def test_text_that_looks_like_numbers_stays_text(tmp_path):
    recs = [{**_records()[8], "id": id_, "changes": [{"feature": "housing", "before": "007", "after": "1.50"}]}
            for id_ in ("007", "1.50", "x")]
    path = tmp_path / "r.csv"
    report.write_csv(recs, path, FEATURES)
    _same(report.read_csv_records(path), recs)


def test_appender_flushes_every_row(tmp_path):
    path = tmp_path / "r.csv"
    recs = _records()
    with report.CSVAppender(path, FEATURES) as sink:
        for i, r in enumerate(recs[:3]):
            sink.write(r)
            with open(path, newline="") as fh:  # another reader, while the file is still open
                assert len(list(csv.reader(fh))) == i + 2
    with report.CSVAppender(path, FEATURES) as sink:  # reopening appends under the same header
        sink.write(recs[3])
    _same(report.read_csv_records(path), recs[:4])
    with pytest.raises(report.ResultsFileError, match="other columns"):
        report.CSVAppender(path, FEATURES[:-1])


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "r.csv"
    report.write_csv(_records()[:3], path, FEATURES)
    text = path.read_text()
    path.write_text(text[:-20])
    _same(report.read_csv_records(path), _records()[:2])
    path.write_text("id,status\n1,optimal\n")
    with pytest.raises(report.ResultsFileError, match="not a mipcf results CSV"):
        report.read_csv_records(path)


def test_json_validates_and_round_trips(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    recs = _records()
    doc = report.results_document(recs, model={"type": "RandomForestClassifier", "classes": [np.int64(0), 1]},
                                  options={"cost": "l1", "time_limit": 60.0})
    jsonschema.validate(doc, report.RESULTS_JSON_SCHEMA)  # the published schema, an independent validator
    report.validate_document(doc)
    path = tmp_path / "r.json"
    report.write_json(doc, path)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["format"] == "mipcf.results/1"
    assert json.loads(text)["model"]["classes"] == [0, 1]
    _same(report.read_records(path), recs)
    assert json.loads(text)["results"][6]["cost"] is None


def _mutations():
    def drop(key):
        return lambda d: d.pop(key)

    def set_result(i, key, value):
        return lambda d: d["results"][i].__setitem__(key, value)

    # (mutation, also rejected by the JSON Schema?)
    return {
        "other version": (lambda d: d.__setitem__("format", "mipcf.results/2"), True),
        "no results": (drop("results"), True),
        "no created": (drop("created"), True),
        "unknown status": (set_result(0, "status", "maybe"), True),
        "cost as text": (set_result(0, "cost", "0.1"), True),
        "unknown key": (set_result(0, "colour", "red"), True),
        "count disagrees": (set_result(0, "n_changes", 5), False),
        "repeated id": (set_result(1, "id", 0), False),
        "infeasible with changes": (set_result(0, "status", "infeasible"), False),
    }


@pytest.mark.parametrize("name", list(_mutations()))
def test_validation_rejects_broken_documents(name):
    jsonschema = pytest.importorskip("jsonschema")
    mutate, schema_sees_it = _mutations()[name]
    doc = report.results_document(_records())
    mutate(doc)
    with pytest.raises(ValueError):
        report.validate_document(doc)
    if schema_sees_it:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, report.RESULTS_JSON_SCHEMA)


def test_normalised_positions_follow_the_schema():
    X, _ = credit_data(n=50)
    norm = report._normaliser(credit_schema(X))  # income bounds (0, 20000); education levels 0..3
    assert norm["income"](5000.0) == pytest.approx(0.25)
    assert norm["education"](2) == pytest.approx(2 / 3)
    assert "housing" not in norm  # categorical: no order, drawn 0 -> 1


def _html(tmp_path):
    X, _ = credit_data(n=50)
    doc = report.results_document(_records(), model={"type": "RandomForestClassifier"}, options={"cost": "l1"})
    path = tmp_path / "report.html"
    report.write_html(doc, path, credit_schema(X))
    return path


def test_html_is_self_contained(tmp_path):
    import matplotlib.image as mpimg

    path = _html(tmp_path)
    text = path.read_text()
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # nothing loaded from outside
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1 + 7  # cost histogram + one plot per person with changes
    for b64 in images:
        img = mpimg.imread(io.BytesIO(base64.b64decode(b64)), format="png")
        assert img.shape[0] > 20 and img.shape[1] > 20 and img.std() > 0
    assert "<script>alert(1)</script>" not in text  # the message is escaped everywhere
    _same(report.read_records(path), _records())  # the embedded document reads back exactly
    assert re.search(r'<td class="optimal">6</td><td class="feasible">1</td>'
                     r'<td class="infeasible">1</td><td class="error">1</td>', text)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path, page, *mode):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900", "--enable-logging=stderr",
           "--v=0", *mode, page.as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return run, console


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_opens_in_headless_chromium(tmp_path):
    import matplotlib.image as mpimg

    # the console check can fail: a page with a script error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>")
    _, console = _chromium(tmp_path, bad, "--dump-dom")
    assert any("undefinedFunction" in line for line in console)

    page, shot = _html(tmp_path), tmp_path / "shot.png"
    run, console = _chromium(tmp_path, page, f"--screenshot={shot}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console == []
    img = mpimg.imread(shot)
    assert img.shape[:2] == (900, 1200) and img.std() > 0.01  # something was drawn


def test_cut_inside_a_multiline_message_is_dropped(tmp_path):
    path = tmp_path / "r.csv"
    recs = _records()[:7]  # the last one has a quoted message with a line break
    report.write_csv(recs, path, FEATURES)
    text = path.read_text()
    path.write_text(text[:text.index("and a new line")])  # ends right after the line break inside quotes
    _same(report.read_csv_records(path), recs[:6])
